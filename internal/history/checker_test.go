package history

import (
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// builder writes a synthetic history on a clock that advances 10 ms per entry.
type builder struct {
	h   *History
	now time.Time
}

func newBuilder() *builder {
	b := &builder{now: t0}
	b.h = NewWithClock(func() time.Time { b.now = b.now.Add(10 * time.Millisecond); return b.now })
	return b
}

func (b *builder) place(p int, user, key string, lines []Line, outcome Type, orderID, status string) {
	c := b.h.Invoke(p, Op{Kind: Place, User: user, Key: key, Lines: lines})
	b.complete(c, outcome, orderID, status)
}

func (b *builder) cancel(p int, user, orderID string, outcome Type, status string) {
	c := b.h.Invoke(p, Op{Kind: Cancel, User: user, OrderID: orderID})
	b.complete(c, outcome, orderID, status)
}

func (b *builder) read(p int, user, orderID, status string) {
	c := b.h.Invoke(p, Op{Kind: Read, User: user, OrderID: orderID})
	c.OK(orderID, status, 200)
}

func (b *builder) complete(c *Call, outcome Type, orderID, status string) {
	switch outcome {
	case OK:
		code := 202
		if status != Pending {
			code = 200
		}
		c.OK(orderID, status, code)
	case Fail:
		c.Fail(409, "illegal-transition")
	case Info:
		c.Info(0, "context deadline exceeded")
	}
}

func lines(l ...any) []Line {
	var out []Line
	for i := 0; i+1 < len(l); i += 2 {
		out = append(out, Line{ProductID: l[i].(string), Quantity: l[i+1].(int)})
	}
	return out
}

// scenario is a history with the state the system ended in.
type scenario struct {
	b     *builder
	final Final
}

func (s *scenario) order(id string) *Order {
	for i := range s.final.Orders {
		if s.final.Orders[i].ID == id {
			return &s.final.Orders[i]
		}
	}
	panic("no order " + id)
}

func (s *scenario) stock(id string) *Stock {
	for i := range s.final.Stock {
		if s.final.Stock[i].ProductID == id {
			return &s.final.Stock[i]
		}
	}
	panic("no product " + id)
}

func (s *scenario) drop(id string) {
	for i := range s.final.Orders {
		if s.final.Orders[i].ID == id {
			s.final.Orders = append(s.final.Orders[:i], s.final.Orders[i+1:]...)
			return
		}
	}
}

// clean is a valid run: products A (10 units) and B (5); u1 and u2 place five
// orders, one retried after a timeout, one given up after a timeout (it was
// created all the same), one cancelled; B's last units are still reserved
// for a confirmed order (products has not yet turned them into a sale).
func clean() *scenario {
	b := newBuilder()
	b.place(1, "u1", "k1", lines("A", 2), OK, "o1", Pending)
	b.place(2, "u2", "k3", lines("A", 1), OK, "o3", Pending)
	b.place(1, "u1", "k2", lines("B", 1), Info, "", "")
	b.read(3, "u1", "o1", Pending)
	b.place(1, "u1", "k2", lines("B", 1), OK, "o2", Rejected)
	b.cancel(2, "u2", "o3", OK, Cancelled)
	b.place(2, "u2", "k4", lines("B", 5), OK, "o4", Pending)
	b.place(2, "u2", "k5", lines("A", 1), Info, "", "")
	b.cancel(2, "u2", "o2", Fail, "")
	b.read(3, "u1", "o1", Confirmed)
	b.read(3, "u2", "o4", Confirmed)
	fault := b.now
	b.now = b.now.Add(time.Second)
	at := func(d time.Duration) time.Time { return fault.Add(d) }
	return &scenario{b: b, final: Final{
		FaultEnd: fault,
		Orders: []Order{
			{ID: "o1", User: "u1", Status: Confirmed, Lines: lines("A", 2), UpdatedAt: at(-time.Second)},
			{ID: "o2", User: "u1", Status: Rejected, Lines: lines("B", 1), UpdatedAt: at(500 * time.Millisecond)},
			{ID: "o3", User: "u2", Status: Cancelled, Lines: lines("A", 1), Released: true, UpdatedAt: at(1500 * time.Millisecond)},
			{ID: "o4", User: "u2", Status: Confirmed, Lines: lines("B", 5), UpdatedAt: at(-time.Millisecond)},
			{ID: "o5", User: "u2", Status: Confirmed, Lines: lines("A", 1), CreatedAt: at(200 * time.Millisecond), UpdatedAt: at(time.Second)},
		},
		Stock: []Stock{
			{ProductID: "A", Initial: 10, Available: 7, Reserved: 0, Sold: 3},
			{ProductID: "B", Initial: 5, Available: 0, Reserved: 1, Sold: 4},
		},
	}}
}

func TestCleanHistoryPasses(t *testing.T) {
	s := clean()
	r := Check(s.b.h.Ops(), s.final)
	if v := r.Violations(); len(v) > 0 {
		t.Fatalf("violations in a clean history:\n%s", strings.Join(v, "\n"))
	}
	if r.Acknowledged != 4 || r.Orders != 5 || r.Unconfirmed != 1 || r.Unknown != 2 {
		t.Errorf("acknowledged %d, orders %d, unconfirmed %d, unknown %d; want 4, 5, 1, 2", r.Acknowledged, r.Orders, r.Unconfirmed, r.Unknown)
	}
	if r.Statuses[Confirmed] != 3 || r.Statuses[Rejected] != 1 || r.Statuses[Cancelled] != 1 {
		t.Errorf("statuses = %v", r.Statuses)
	}
	if r.Recovery != 1500*time.Millisecond || !r.LastSettled.Equal(s.final.FaultEnd.Add(1500*time.Millisecond)) {
		t.Errorf("recovery = %v (last settled %v), want 1.5s", r.Recovery, r.LastSettled)
	}
	// o3 (placed before the fault ended) settled last among those: 1.5 s;
	// o5, placed after, does not count.
	if r.Backlog != 1500*time.Millisecond {
		t.Errorf("backlog = %v, want 1.5s", r.Backlog)
	}
	sum := r.Summary("clean")
	if !strings.HasPrefix(sum, "clean: orders 5, lost 0, duplicated 0, stuck 0, recovery 1.5s") {
		t.Errorf("summary = %q", sum)
	}
	if !r.Valid() {
		t.Error("Valid() = false")
	}
}

// TestAllowedHistories are runs that look odd but break nothing.
func TestAllowedHistories(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*scenario)
	}{
		{"an unknown outcome that created nothing", func(s *scenario) {
			s.drop("o5")
			a := s.stock("A")
			a.Available, a.Sold = 8, 2
		}},
		{"two unknown outcomes with the same lines, two orders", func(s *scenario) {
			s.b.place(4, "u2", "k6", lines("A", 1), Info, "", "")
			s.final.Orders = append(s.final.Orders, Order{ID: "o6", User: "u2", Status: Rejected, Lines: lines("A", 1)})
		}},
		{"an invocation that never completed, its order created", func(s *scenario) {
			s.b.h.Invoke(5, Op{Kind: Place, User: "u1", Key: "k7", Lines: lines("B", 2)})
			s.final.Orders = append(s.final.Orders, Order{ID: "o7", User: "u1", Status: Expired, Released: true, Lines: lines("B", 2)})
		}},
		{"an unknown cancel that did not happen", func(s *scenario) {
			s.b.cancel(4, "u1", "o1", Info, "")
		}},
		{"a replay seeing the final status", func(s *scenario) {
			s.b.place(4, "u2", "k4", lines("B", 5), OK, "o4", Confirmed)
		}},
		{"overlapping reads in either order", func(s *scenario) {
			c1 := s.b.h.Invoke(6, Op{Kind: Read, User: "u2", OrderID: "o5"})
			c2 := s.b.h.Invoke(7, Op{Kind: Read, User: "u2", OrderID: "o5"})
			c1.OK("o5", Confirmed, 200)
			c2.OK("o5", Pending, 200)
		}},
		{"orders of other users are not accounted for", func(s *scenario) {
			s.final.Orders = append(s.final.Orders, Order{ID: "x1", User: "someone", Status: Rejected, Lines: lines("A", 1)})
		}},
		{"no fault: no recovery time", func(s *scenario) { s.final.FaultEnd = time.Time{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clean()
			tc.mutate(s)
			r := Check(s.b.h.Ops(), s.final)
			if v := r.Violations(); len(v) > 0 {
				t.Fatalf("violations:\n%s", strings.Join(v, "\n"))
			}
		})
	}
}

// TestViolationsDetected mutates the clean run into each kind of violation.
func TestViolationsDetected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*scenario)
		want   string // category: substring of the violation
	}{
		{"acknowledged order unknown", func(s *scenario) {
			s.drop("o1")
			a := s.stock("A")
			a.Available, a.Sold = 9, 1
		}, "lost: order o1 (key \"k1\" of user u1) was acknowledged"},
		{"pending after recovery", func(s *scenario) { s.order("o4").Status = Pending }, "stuck: order o4 is still pending"},
		{"cancelled but never released", func(s *scenario) { s.order("o3").Released = false }, "stuck: order o3 is cancelled but its stock was never released"},
		{"one key, two acknowledged orders", func(s *scenario) {
			s.b.place(1, "u1", "k1", lines("A", 2), OK, "o6", Pending)
			s.final.Orders = append(s.final.Orders, Order{ID: "o6", User: "u1", Status: Rejected, Lines: lines("A", 2)})
		}, "duplicated: key \"k1\" of user u1 acknowledged as 2 orders: o1, o6"},
		{"a retry after an unknown outcome made a second order", func(s *scenario) {
			s.final.Orders = append(s.final.Orders, Order{ID: "o7", User: "u1", Status: Rejected, Lines: lines("B", 1)})
		}, "duplicated: order o7 of user u1 ([B×1]) is a second order for key \"k2\""},
		{"an order nobody asked for", func(s *scenario) {
			s.final.Orders = append(s.final.Orders, Order{ID: "o8", User: "u1", Status: Rejected, Lines: lines("A", 9)})
		}, "duplicated: order o8 of user u1 ([A×9]) was asked for by no request"},
		{"one unknown outcome, two orders", func(s *scenario) {
			s.final.Orders = append(s.final.Orders, Order{ID: "o9", User: "u2", Status: Rejected, Lines: lines("A", 1)})
		}, "duplicated: order o9 of user u2 ([A×1]) is a second order for key \"k3\" or \"k5\""},
		{"confirmed, then rejected", func(s *scenario) { s.b.read(3, "u1", "o1", Rejected) }, "illegal: order o1 seen confirmed by read"},
		{"rejected, then ended confirmed", func(s *scenario) {
			s.order("o2").Status = Confirmed
			b := s.stock("B")
			b.Available, b.Sold = 0, 4
			b.Reserved = 2
			b.Initial = 6
		}, "illegal: order o2 seen rejected by place"},
		{"acknowledged cancel undone", func(s *scenario) {
			s.order("o3").Status = Confirmed
			a := s.stock("A")
			a.Available, a.Sold = 6, 4
		}, "illegal: order o3 seen cancelled by cancel"},
		{"cancel answered with another status", func(s *scenario) { s.b.cancel(2, "u2", "o4", OK, Confirmed) },
			"illegal: cancel of order o4 acknowledged with status \"confirmed\""},
		{"unknown status", func(s *scenario) { s.order("o1").Status = "shipped" }, "illegal: order o1 ended with unknown status \"shipped\""},
		{"lines changed", func(s *scenario) { s.order("o1").Lines = lines("A", 3) }, "illegal: order o1 has lines [A×3], key \"k1\" asked for [A×2]"},
		{"someone else's order", func(s *scenario) { s.order("o1").User = "u2" }, "illegal: order o1 belongs to u2, acknowledged to u1"},
		{"units created", func(s *scenario) { s.stock("A").Available = 8 }, "conservation: product A: stocked 10 ≠ available 8 + reserved 0 + sold 3 = 11"},
		{"units vanished", func(s *scenario) { s.stock("B").Reserved = 0 }, "conservation: product B: stocked 5 ≠ available 0 + reserved 0 + sold 4 = 4"},
		{"negative count", func(s *scenario) {
			a := s.stock("A")
			a.Available, a.Reserved = 8, -1
		}, "conservation: product A has a negative count"},
		{"held stock not matching confirmed orders", func(s *scenario) {
			a := s.stock("A")
			a.Available, a.Sold = 8, 2
		}, "inconsistent: product A: reserved 0 + sold 2 = 2, but confirmed orders hold 3"},
		{"cancelled order still holding stock", func(s *scenario) {
			a := s.stock("A")
			a.Available, a.Sold = 6, 4
		}, "inconsistent: product A: reserved 0 + sold 4 = 4, but confirmed orders hold 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clean()
			tc.mutate(s)
			r := Check(s.b.h.Ops(), s.final)
			v := r.Violations()
			found := false
			for _, x := range v {
				if strings.Contains(x, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("want a violation containing %q; got:\n%s", tc.want, strings.Join(v, "\n"))
			}
			if r.Valid() {
				t.Error("Valid() = true")
			}
		})
	}
}

func TestRecoveryIsZeroWhenEverythingSettledBeforeTheFaultEnded(t *testing.T) {
	s := clean()
	s.final.FaultEnd = s.final.FaultEnd.Add(time.Hour)
	if r := Check(s.b.h.Ops(), s.final); r.Recovery != 0 || r.Backlog != 0 {
		t.Errorf("recovery = %v, backlog %v, want 0", r.Recovery, r.Backlog)
	}
}

func TestBacklogCountsOrdersPlacedBeforeTheFaultEnded(t *testing.T) {
	s := clean()
	s.order("o3").CreatedAt = s.final.FaultEnd.Add(time.Millisecond) // placed after: o2 is the last of the backlog
	r := Check(s.b.h.Ops(), s.final)
	if r.Backlog != 500*time.Millisecond || r.Recovery != 1500*time.Millisecond {
		t.Errorf("backlog = %v, recovery %v; want 0.5s, 1.5s", r.Backlog, r.Recovery)
	}
}

func TestRecorder(t *testing.T) {
	h := New()
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for i := range 50 {
				c := h.Invoke(p, Op{Kind: Place, User: "u", Key: "k", Lines: lines("A", 1)})
				switch i % 3 {
				case 0:
					c.OK("o", Pending, 202)
				case 1:
					c.Fail(422, "no")
				default:
					c.Info(0, "timeout")
				}
			}
			h.Observe(p, "u", "o", Confirmed, time.Now(), time.Now())
		})
	}
	wg.Wait()
	ops := h.Ops()
	if len(ops) != 8*(100+2) || h.Len() != len(ops) {
		t.Fatalf("%d ops", len(ops))
	}
	for i, o := range ops {
		if o.Index != i {
			t.Fatalf("op %d has index %d", i, o.Index)
		}
	}
	calls := pairs(ops)
	if len(calls) != 8*51 {
		t.Fatalf("%d calls", len(calls))
	}
	for _, c := range calls {
		if c.done.Process != c.inv.Process || c.done.Index <= c.inv.Index || c.done.Kind != c.inv.Kind {
			t.Fatalf("bad pair %s / %s", c.inv, c.done)
		}
		if c.done.Type == OK && c.done.Code == 0 {
			t.Fatalf("ok without code: %s", c.done)
		}
	}
	// A process has one operation in flight; a call completes once.
	c := h.Invoke(100, Op{Kind: Read})
	mustPanic(t, "second invoke", func() { h.Invoke(100, Op{Kind: Read}) })
	c.OK("o", Pending, 200)
	mustPanic(t, "second completion", func() { c.OK("o", Pending, 200) })
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	fn()
}
