package main

// Crash tests of the checkout saga: real processes (startSystem's services
// mode), a burst of concurrent checkouts with idempotency keys, a fault
// injected into one process mid-burst, then the history checker
// (internal/history) on what the customers were told and what the system
// ended with. docs/reliability.md describes each scenario.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/history"
	"github.com/microshop/microshop/internal/platform/broker"
)

// standardBurst is the workload of the crash tests: 4 customers × 25 orders
// over 5 s, of 1 or 2 products, 1 to 3 units each; every 5th acknowledged
// order is cancelled right away.
var standardBurst = burst{perCustomer: 25, duration: 5 * time.Second, maxQty: 3, cancelEvery: 5}

// standardStock is enough for most orders of the burst, not all: some are rejected.
var standardStock = []int{80, 80, 40}

// faultAfter is when, into the burst, the fault is injected.
const faultAfter = 1500 * time.Millisecond

// crash runs the standard burst against a fresh system, calls fault
// faultAfter into it (fault returns when the fault ended), and checks the
// outcome.
func crash(t *testing.T, scenario string, fault func(s *shop) time.Time) history.Report {
	s := openShop(t, scenario, standardStock, 4)
	started, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		s.run(standardBurst, started)
	}()
	<-started
	time.Sleep(faultAfter)
	faultEnd := fault(s)
	<-done
	r, _ := s.check(scenario, faultEnd)
	return r
}

// kill SIGKILLs the named process and waits until the supervisor has
// restarted it and it serves again.
func kill(name string) func(s *shop) time.Time {
	return func(s *shop) time.Time {
		pid := s.signal(name, syscall.SIGKILL)
		return s.awaitRestart(name, pid)
	}
}

// TestCrashProducts kills the products process mid-burst. While it is down,
// checkouts get a 503 (orders reads the prices from products) and are
// retried with their keys; the events for products wait in the ORDERS stream
// and are handled once the supervisor has restarted it.
func TestCrashProducts(t *testing.T) {
	crash(t, "crash-products", kill("products"))
}

// TestCrashOrders kills the orders process mid-burst: requests in flight get
// no answer (the customers retry them with the same key), and some orders
// are caught between the commit of pending+outbox and the relay's publish.
func TestCrashOrders(t *testing.T) {
	crash(t, "crash-orders", kill("orders"))
}

// TestCrashOrdersBetweenCommitAndPublish hits the window between the commit
// and the publish deterministically: the broker is frozen (SIGSTOP) so that
// the relay cannot publish, orders are placed (committed as pending with
// their orders.placed in the outbox), orders is killed, and the broker
// resumes. The restarted orders must publish what its outbox holds.
func TestCrashOrdersBetweenCommitAndPublish(t *testing.T) {
	needsBrokerProcess(t)
	s := openShop(t, "commit-publish", []int{50}, 1)
	c := s.customers[0]
	natsPID := s.signal("nats", syscall.SIGSTOP)
	resumed := false
	defer func() {
		if !resumed {
			syscall.Kill(natsPID, syscall.SIGCONT)
		}
	}()
	var ids []string
	for i := range 5 {
		id := s.place(0, c, fmt.Sprintf("commit-publish-%d", i), []map[string]any{{"product_id": s.products[0].ID, "quantity": 1 + i}})
		if id == "" {
			t.Fatalf("order %d was not accepted with the broker frozen", i)
		}
		ids = append(ids, id)
	}
	time.Sleep(300 * time.Millisecond)
	for _, id := range ids { // nothing can have reached products
		var o apiOrder
		start := time.Now()
		expect(t, 200, call(t, "GET", s.api+"/orders/"+id, nil, c.auth...)).json(t, &o)
		s.h.Observe(s.readProc, c.ID, id, o.Status, start, time.Now())
		if o.Status != "pending" {
			t.Fatalf("order %s is %s with the broker frozen, want pending", id, o.Status)
		}
	}
	ordersPID := s.signal("orders", syscall.SIGKILL)
	s.signal("nats", syscall.SIGCONT)
	resumed = true
	faultEnd := s.awaitRestart("orders", ordersPID)
	r, stock := s.check("commit-publish", faultEnd)
	if r.Statuses[history.Confirmed] != 5 {
		t.Errorf("statuses = %v, want 5 confirmed", r.Statuses)
	}
	if len(stock) == 1 && stock[0].Available != 50-15 {
		t.Errorf("available = %d, want %d", stock[0].Available, 50-15)
	}
}

// TestCrashBroker kills the NATS process mid-burst. The supervisor restarts
// it on the same port and data directory (file store, fsync always): the
// streams, the consumers' positions and the duplicate window survive; the
// services reconnect; the relays publish what piled up in the outboxes.
func TestCrashBroker(t *testing.T) {
	needsBrokerProcess(t)
	crash(t, "crash-broker", kill("nats"))
}

// TestPauseService freezes products (SIGSTOP) for 5 s mid-burst, then lets
// it go on (SIGCONT): a process that hangs rather than dies.
func TestPauseService(t *testing.T) {
	crash(t, "pause-products", func(s *shop) time.Time {
		s.signal("products", syscall.SIGSTOP)
		time.Sleep(5 * time.Second)
		s.signal("products", syscall.SIGCONT)
		return time.Now()
	})
}

// TestLastUnits has 100 checkouts race for the last 10 units of a product:
// exactly 10 are confirmed, 90 rejected, nothing is left, nothing oversold.
func TestLastUnits(t *testing.T) {
	s := openShop(t, "last-units", []int{10}, 4)
	const buyers = 100
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() {
			s.place(i, s.customers[i%len(s.customers)], fmt.Sprintf("last-units-%d", i),
				[]map[string]any{{"product_id": s.products[0].ID, "quantity": 1}})
		})
	}
	wg.Wait()
	r, stock := s.check("last-units", time.Time{})
	if r.Statuses[history.Confirmed] != 10 || r.Statuses[history.Rejected] != buyers-10 || r.Orders != buyers {
		t.Errorf("orders %d, statuses %v; want %d: 10 confirmed, %d rejected", r.Orders, r.Statuses, buyers, buyers-10)
	}
	if len(stock) != 1 || stock[0].Available != 0 || stock[0].Reserved+stock[0].Sold != 10 {
		t.Errorf("stock = %+v, want 0 available and 10 reserved or sold", stock)
	}
}

// TestDuplicateAndOutOfOrderDelivery delivers events again and out of order
// behind the services' backs, straight into NATS:
//
//  1. copies of every event of the ORDERS and STOCK streams, with new
//     Nats-Msg-Ids (JetStream's deduplication lets them through) in shuffled
//     order: each consumer's inbox must drop them, so nothing changes and
//     nothing new is published;
//  2. answers that come too late: stock.reserved for a rejected and for a
//     cancelled order, stock.rejected for a confirmed one: statuses must not
//     change and the stock must stay accounted for;
//  3. poison on orders.placed (a body that is no event, and an event whose
//     payload is garbage): dead-lettered, and later orders still complete.
func TestDuplicateAndOutOfOrderDelivery(t *testing.T) {
	s := openShop(t, "redelivery", []int{100, 5}, 2)
	a, b := s.customers[0], s.customers[1]
	big, small := s.products[0].ID, s.products[1].ID
	line := func(p string, q int) []map[string]any { return []map[string]any{{"product_id": p, "quantity": q}} }

	// Some history: confirmed, rejected and cancelled orders.
	var confirmed []string
	for i := range 6 {
		confirmed = append(confirmed, s.place(0, a, fmt.Sprintf("redelivery-a-%d", i), line(big, 1+i%3)))
	}
	rejected := s.place(1, b, "redelivery-b-0", line(small, 6))
	cancelled := s.place(1, b, "redelivery-b-1", line(big, 2))
	s.cancel(1, b, cancelled)
	if slices.Contains(confirmed, "") || rejected == "" || cancelled == "" {
		t.Fatal("an order was refused")
	}
	before, _ := s.settle(60 * time.Second)
	status := map[string]string{}
	for _, o := range before {
		status[o.ID] = o.Status
	}
	if status[rejected] != history.Rejected || status[cancelled] != history.Cancelled || status[confirmed[0]] != history.Confirmed {
		t.Fatalf("statuses before the redelivery: rejected %s, cancelled %s, confirmed %s",
			status[rejected], status[cancelled], status[confirmed[0]])
	}

	ctx := t.Context()
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, js)

	// 1. Copies of everything, shuffled, with new Nats-Msg-Ids.
	last := map[string]uint64{}
	var copies []*nats.Msg
	for _, name := range []string{broker.StreamOrders, broker.StreamStock} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last[name] = info.State.LastSeq
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				t.Fatalf("%s #%d: %v", name, seq, err)
			}
			c := nats.NewMsg(m.Subject)
			for k, v := range m.Header {
				// The relay's publish conditions (Nats-Expected-Stream,
				// Nats-Expected-Last-Msg-Id) are stored with the event;
				// they held for the original, not for a copy.
				if !strings.HasPrefix(k, "Nats-Expected-") {
					c.Header[k] = slices.Clone(v)
				}
			}
			c.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
			c.Data = m.Data
			copies = append(copies, c)
		}
	}
	dlqBefore := streamLast(t, js, broker.StreamDLQ)
	rand.Shuffle(len(copies), func(i, j int) { copies[i], copies[j] = copies[j], copies[i] })
	for _, c := range copies {
		publish(t, js, c)
	}
	t.Logf("republished %d events (ORDERS up to #%d, STOCK up to #%d)", len(copies), last[broker.StreamOrders], last[broker.StreamStock])
	quiet(t, js)
	// The copies are in the streams; nothing else may be: a consumer that
	// applied a copy again would have answered it.
	got := streamLast(t, js, broker.StreamOrders) + streamLast(t, js, broker.StreamStock)
	if want := last[broker.StreamOrders] + last[broker.StreamStock] + uint64(len(copies)); got != want {
		t.Errorf("the streams hold %d events after the copies, want %d: a copy was applied again and answered", got, want)
	}
	if n := streamLast(t, js, broker.StreamDLQ); n != dlqBefore {
		t.Errorf("the copies sent %d messages to the dead-letter stream", n-dlqBefore)
	}
	after, _ := s.settle(10 * time.Second)
	for _, o := range after {
		if status[o.ID] != o.Status {
			t.Errorf("order %s went from %s to %s after the copies", o.ID, status[o.ID], o.Status)
		}
	}

	// 2. Answers that come too late.
	forge := func(typ, order string, data events.StockData) {
		e, err := broker.NewEvent(events.SourceProducts, typ, order, data)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, js, broker.Encode(e))
	}
	forge(events.StockReserved, rejected, events.StockData{OrderID: rejected, Lines: []events.Line{{ProductID: small, Quantity: 6}}})
	forge(events.StockReserved, cancelled, events.StockData{OrderID: cancelled, Lines: []events.Line{{ProductID: big, Quantity: 2}}})
	forge(events.StockRejected, confirmed[0], events.StockData{OrderID: confirmed[0], Reason: "insufficient stock"})
	quiet(t, js)
	after, _ = s.settle(30 * time.Second)
	for _, o := range after {
		if status[o.ID] != o.Status {
			t.Errorf("order %s went from %s to %s after a late answer", o.ID, status[o.ID], o.Status)
		}
	}

	// 3. Poison: no event at all, and an event with a garbage payload.
	garbage := nats.NewMsg(events.OrderPlaced)
	garbage.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
	garbage.Data = []byte("\x00\xffnot an event{")
	publish(t, js, garbage)
	bad, err := broker.NewEvent(events.SourceOrders, events.OrderPlaced, uuid.NewString(), map[string]any{"order_id": 42, "lines": "many"})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, broker.Encode(bad))
	faultEnd := time.Now()
	dlq := broker.DLQSubject(broker.StreamOrders, events.ProductsOnOrders)
	eventually(t, 20*time.Second, "both poison messages dead-lettered on "+dlq, func() bool {
		return countSubject(t, js, broker.StreamDLQ, dlq) >= 2
	})
	// Later orders still complete, well before their deadline.
	var later []string
	for i := range 3 {
		later = append(later, s.place(0, a, fmt.Sprintf("redelivery-later-%d", i), line(big, 1)))
	}
	r, _ := s.check("redelivery", faultEnd)
	final := map[string]bool{}
	for _, o := range s.h.Ops() {
		if o.Kind == history.Read && o.Type == history.OK && slices.Contains(later, o.OrderID) && o.Status == history.Confirmed {
			final[o.OrderID] = true
		}
	}
	if len(final) != len(later) {
		t.Errorf("later orders confirmed: %d of %d (statuses %v)", len(final), len(later), r.Statuses)
	}
}

func publish(t *testing.T, js jetstream.JetStream, m *nats.Msg) {
	t.Helper()
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatalf("publish %s: %v", m.Subject, err)
	}
	if ack.Duplicate {
		t.Fatalf("publish %s: JetStream dropped it as a duplicate", m.Subject)
	}
}

func streamLast(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// countSubject counts the messages of stream on subject.
func countSubject(t *testing.T, js jetstream.JetStream, stream, subject string) int {
	t.Helper()
	st, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subject])
}

// quiet waits until both saga consumers have nothing pending or in flight and
// the streams have stopped growing (the relays have published their answers).
func quiet(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := t.Context()
	var prev string
	stable := 0
	eventually(t, 60*time.Second, "the saga's consumers idle", func() bool {
		state := ""
		for _, c := range []struct{ stream, durable string }{
			{broker.StreamOrders, events.ProductsOnOrders}, {broker.StreamStock, events.OrdersOnStock},
		} {
			cons, err := js.Consumer(ctx, c.stream, c.durable)
			if err != nil {
				return false
			}
			info, err := cons.Info(ctx)
			if err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
				return false
			}
			state += fmt.Sprintf("%s:%d ", c.stream, streamLast(t, js, c.stream))
		}
		if state == prev {
			stable++
		} else {
			prev, stable = state, 0
		}
		return stable >= 5 // unchanged for 0.5 s
	})
}
