package history

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Order is an order as the system holds it once the run is over and the
// system has recovered (read through the API).
type Order struct {
	ID     string
	User   string
	Status string
	Lines  []Line
	// Released is true when the stock of a cancelled or expired order was
	// given back (the order's released_at is set).
	Released bool
	// CreatedAt is when the order was placed, UpdatedAt when it last
	// changed, by the system's clock.
	CreatedAt, UpdatedAt time.Time
}

// Stock is where the units of one product are once the system has
// recovered, and how many were stocked before the run.
type Stock struct {
	ProductID string
	Initial   int // units stocked before the run (no orders held any)
	Available int
	Reserved  int
	Sold      int
}

// Final is the state the system ended in.
type Final struct {
	// Orders are every order the system holds: at least all orders of the
	// users of the history, and every order of the products in Stock.
	Orders []Order
	// Stock lists the products whose stock is checked.
	Stock []Stock
	// FaultEnd is when the last injected fault ended (the killed process was
	// restarted, the paused one resumed); zero when there was none.
	FaultEnd time.Time
}

// Report is what Check found. Every slice lists violations; a valid run has
// them all empty.
type Report struct {
	Ops          int            // completed client operations (reads included)
	Unknown      int            // operations whose outcome the client could not tell (info)
	Acknowledged int            // distinct orders acknowledged to a client (202 or 200)
	Orders       int            // orders the system holds
	Unconfirmed  int            // orders the system holds whose placing had an unknown outcome (allowed)
	Statuses     map[string]int // the orders the system holds, by status

	Lost         []string // acknowledged orders the system does not know
	Stuck        []string // orders not settled after recovery: pending, or cancelled/expired without their stock released
	Duplicated   []string // one key → several orders, or orders no request accounts for
	Illegal      []string // unknown statuses, transitions the life cycle forbids, orders that differ from what was asked
	Conservation []string // products whose units stocked ≠ available + reserved + sold, or with a negative count
	Inconsistent []string // products whose reserved + sold ≠ units in confirmed orders

	// LastSettled is when the last order reached its final state (the
	// latest UpdatedAt of the settled orders); Recovery is the time from
	// Final.FaultEnd to it (0 when everything settled before the fault
	// ended, or there was no fault). Recovery includes orders placed after
	// the fault; Backlog counts only those placed before it ended (by
	// CreatedAt): how long the system took to catch up with what the fault
	// held up.
	LastSettled time.Time
	Recovery    time.Duration
	Backlog     time.Duration
}

// Valid reports whether the run broke no invariant.
func (r Report) Valid() bool { return len(r.Violations()) == 0 }

// Violations lists every violation, each prefixed with its category.
func (r Report) Violations() []string {
	var out []string
	for _, c := range []struct {
		name string
		list []string
	}{
		{"lost", r.Lost}, {"stuck", r.Stuck}, {"duplicated", r.Duplicated}, {"illegal", r.Illegal},
		{"conservation", r.Conservation}, {"inconsistent", r.Inconsistent},
	} {
		for _, v := range c.list {
			out = append(out, c.name+": "+v)
		}
	}
	return out
}

// Summary is a one-line account of the run named scenario.
func (r Report) Summary(scenario string) string {
	return fmt.Sprintf("%s: orders %d, lost %d, duplicated %d, stuck %d, recovery %.1fs "+
		"(backlog %.1fs; acknowledged %d, unknown outcomes %d, unconfirmed %d; confirmed %d, rejected %d, cancelled %d, expired %d; "+
		"illegal %d, conservation %d, inconsistent %d)",
		scenario, r.Orders, len(r.Lost), len(r.Duplicated), len(r.Stuck), r.Recovery.Seconds(), r.Backlog.Seconds(),
		r.Acknowledged, r.Unknown, r.Unconfirmed, r.Statuses[Confirmed], r.Statuses[Rejected], r.Statuses[Cancelled], r.Statuses[Expired],
		len(r.Illegal), len(r.Conservation), len(r.Inconsistent))
}

// knownStatus reports whether s is a status of the life cycle.
func knownStatus(s string) bool {
	switch s {
	case Pending, Confirmed, Rejected, Expired, Cancelled:
		return true
	}
	return false
}

// Reachable reports whether an order seen with status from may later be seen
// with status to: pending → anything; confirmed → cancelled; nothing leaves
// rejected, expired or cancelled.
func Reachable(from, to string) bool {
	return from == to || from == Pending || (from == Confirmed && to == Cancelled)
}

// settled reports whether o is done: confirmed or rejected, or cancelled or
// expired with its stock given back.
func settled(o Order) bool {
	switch o.Status {
	case Confirmed, Rejected:
		return true
	case Cancelled, Expired:
		return o.Released
	}
	return false
}

// call is an invocation with its completion (Type "" when it never completed,
// which counts as info).
type call struct {
	inv, done Op
}

func (c call) outcome() Type {
	if c.done.Type == "" {
		return Info
	}
	return c.done.Type
}

// pairs matches each invocation with the next completion of its process.
func pairs(ops []Op) []call {
	var calls []call
	open := map[int]int{} // process → index in calls
	for _, o := range ops {
		if o.Type == Invoke {
			// A process that invokes again without completing leaves its
			// earlier call incomplete: its outcome is unknown.
			open[o.Process] = len(calls)
			calls = append(calls, call{inv: o})
			continue
		}
		i, ok := open[o.Process]
		if !ok {
			continue // a completion without invocation: ignore
		}
		delete(open, o.Process)
		calls[i].done = o
	}
	return calls
}

// sameLines reports whether a and b ask for the same quantities of the same
// products, in any order.
func sameLines(a, b []Line) bool {
	if len(a) != len(b) {
		return false
	}
	sa, sb := sortedLines(a), sortedLines(b)
	return slices.Equal(sa, sb)
}

func sortedLines(l []Line) []Line {
	s := slices.Clone(l)
	slices.SortFunc(s, func(x, y Line) int {
		return cmp.Or(cmp.Compare(x.ProductID, y.ProductID), cmp.Compare(x.Quantity, y.Quantity))
	})
	return s
}

func linesText(l []Line) string {
	parts := make([]string, len(l))
	for i, x := range sortedLines(l) {
		parts[i] = fmt.Sprintf("%s×%d", x.ProductID, x.Quantity)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// request is what one idempotency key (or one keyless place) asked for, and
// what its calls were told.
type request struct {
	user, key string
	lines     []Line
	acked     []string // distinct order ids acknowledged
	uncertain bool     // some call had an unknown outcome
}

// observation is a status an order had at some moment in [start, end].
type observation struct {
	status     string
	start, end time.Time
	what       string
}

// Check checks the history ops and the state the system ended in.
func Check(ops []Op, final Final) Report {
	r := Report{Statuses: map[string]int{}}
	calls := pairs(ops)

	byID := make(map[string]Order, len(final.Orders))
	for _, o := range final.Orders {
		byID[o.ID] = o
		r.Statuses[o.Status]++
	}
	r.Orders = len(final.Orders)

	// Requests: one per (user, key); a keyless place is a request of its own.
	var reqs []*request
	byKey := map[[2]string]*request{}
	observed := map[string][]observation{}
	users := map[string]bool{}
	for _, c := range calls {
		if c.done.Type != "" {
			r.Ops++
		}
		if c.outcome() == Info {
			r.Unknown++
		}
		if c.outcome() == OK && c.done.OrderID != "" && c.done.Status != "" {
			observed[c.done.OrderID] = append(observed[c.done.OrderID], observation{
				status: c.done.Status, start: c.inv.Time, end: c.done.Time, what: fmt.Sprintf("%s (op %d)", c.inv.Kind, c.inv.Index)})
		}
		if c.inv.Kind == Cancel && c.outcome() == OK && c.done.Status != Cancelled {
			r.Illegal = append(r.Illegal, fmt.Sprintf("cancel of order %s acknowledged with status %q (op %d)", c.done.OrderID, c.done.Status, c.done.Index))
		}
		if c.inv.Kind != Place {
			continue
		}
		users[c.inv.User] = true
		var q *request
		if c.inv.Key != "" {
			k := [2]string{c.inv.User, c.inv.Key}
			if q = byKey[k]; q == nil {
				q = &request{user: c.inv.User, key: c.inv.Key, lines: c.inv.Lines}
				byKey[k] = q
				reqs = append(reqs, q)
			}
		} else {
			q = &request{user: c.inv.User, lines: c.inv.Lines}
			reqs = append(reqs, q)
		}
		switch c.outcome() {
		case OK:
			if c.done.OrderID == "" {
				r.Illegal = append(r.Illegal, fmt.Sprintf("place acknowledged without an order id (op %d)", c.done.Index))
			} else if !slices.Contains(q.acked, c.done.OrderID) {
				q.acked = append(q.acked, c.done.OrderID)
			}
		case Info:
			q.uncertain = true
		}
	}

	// Acknowledged orders: known, as asked, and one per key.
	acked := map[string]*request{}
	for _, q := range reqs {
		if len(q.acked) > 1 {
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("key %q of user %s acknowledged as %d orders: %s",
				q.key, q.user, len(q.acked), strings.Join(q.acked, ", ")))
		}
		for _, id := range q.acked {
			if prev, ok := acked[id]; ok && prev != q {
				r.Illegal = append(r.Illegal, fmt.Sprintf("order %s acknowledged for two requests (keys %q and %q)", id, prev.key, q.key))
				continue
			}
			acked[id] = q
			o, ok := byID[id]
			if !ok {
				r.Lost = append(r.Lost, fmt.Sprintf("order %s (key %q of user %s) was acknowledged but the system does not know it", id, q.key, q.user))
				continue
			}
			if o.User != "" && q.user != "" && o.User != q.user {
				r.Illegal = append(r.Illegal, fmt.Sprintf("order %s belongs to %s, acknowledged to %s", id, o.User, q.user))
			}
			if !sameLines(o.Lines, q.lines) {
				r.Illegal = append(r.Illegal, fmt.Sprintf("order %s has lines %s, key %q asked for %s", id, linesText(o.Lines), q.key, linesText(q.lines)))
			}
		}
	}
	r.Acknowledged = len(acked)

	// Orders nobody was told about: each must be the one order of a request
	// whose outcome was unknown and which was never acknowledged.
	var extra []Order
	for _, o := range final.Orders {
		if _, ok := acked[o.ID]; !ok && users[o.User] {
			extra = append(extra, o)
		}
	}
	slices.SortFunc(extra, func(a, b Order) int { return cmp.Compare(a.ID, b.ID) })
	var slots []*request
	for _, q := range reqs {
		if len(q.acked) == 0 && q.uncertain {
			slots = append(slots, q)
		}
	}
	match := matchOrders(extra, slots)
	for i, o := range extra {
		if match[i] >= 0 {
			r.Unconfirmed++
			continue
		}
		var twins []string
		for _, q := range reqs {
			if q.user == o.User && sameLines(q.lines, o.Lines) && q.key != "" {
				twins = append(twins, fmt.Sprintf("%q", q.key))
			}
		}
		if len(twins) > 0 {
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("order %s of user %s (%s) is a second order for key %s",
				o.ID, o.User, linesText(o.Lines), strings.Join(twins, " or ")))
		} else {
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("order %s of user %s (%s) was asked for by no request", o.ID, o.User, linesText(o.Lines)))
		}
	}

	// Statuses: known, settled, and reached along the life cycle.
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	for id := range observed {
		if _, ok := byID[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		o, inFinal := byID[id]
		obs := observed[id]
		for _, ob := range obs {
			if !knownStatus(ob.status) {
				r.Illegal = append(r.Illegal, fmt.Sprintf("order %s seen with unknown status %q by %s", id, ob.status, ob.what))
			}
		}
		slices.SortStableFunc(obs, func(a, b observation) int { return a.start.Compare(b.start) })
		for i, a := range obs {
			for _, b := range obs[i+1:] {
				if a.end.Before(b.start) && knownStatus(a.status) && knownStatus(b.status) && !Reachable(a.status, b.status) {
					r.Illegal = append(r.Illegal, fmt.Sprintf("order %s seen %s by %s, then %s by %s", id, a.status, a.what, b.status, b.what))
				}
			}
		}
		if !inFinal {
			continue
		}
		if !knownStatus(o.Status) {
			r.Illegal = append(r.Illegal, fmt.Sprintf("order %s ended with unknown status %q", id, o.Status))
			continue
		}
		for _, ob := range obs {
			if knownStatus(ob.status) && !Reachable(ob.status, o.Status) {
				r.Illegal = append(r.Illegal, fmt.Sprintf("order %s seen %s by %s, but ended %s", id, ob.status, ob.what, o.Status))
			}
		}
		switch {
		case o.Status == Pending:
			r.Stuck = append(r.Stuck, fmt.Sprintf("order %s is still pending (last change %s)", id, o.UpdatedAt.Format(time.RFC3339Nano)))
		case !settled(o):
			r.Stuck = append(r.Stuck, fmt.Sprintf("order %s is %s but its stock was never released", id, o.Status))
		default:
			if o.UpdatedAt.After(r.LastSettled) {
				r.LastSettled = o.UpdatedAt
			}
			if !final.FaultEnd.IsZero() && o.CreatedAt.Before(final.FaultEnd) && o.UpdatedAt.Sub(final.FaultEnd) > r.Backlog {
				r.Backlog = o.UpdatedAt.Sub(final.FaultEnd)
			}
		}
	}
	if !final.FaultEnd.IsZero() && r.LastSettled.After(final.FaultEnd) {
		r.Recovery = r.LastSettled.Sub(final.FaultEnd)
	}

	// Stock: conserved, and held exactly by the confirmed orders.
	confirmed := map[string]int{}
	for _, o := range final.Orders {
		if o.Status == Confirmed {
			for _, l := range o.Lines {
				confirmed[l.ProductID] += l.Quantity
			}
		}
	}
	for _, s := range final.Stock {
		if s.Available < 0 || s.Reserved < 0 || s.Sold < 0 {
			r.Conservation = append(r.Conservation, fmt.Sprintf("product %s has a negative count: available %d, reserved %d, sold %d",
				s.ProductID, s.Available, s.Reserved, s.Sold))
		}
		if sum := s.Available + s.Reserved + s.Sold; sum != s.Initial {
			r.Conservation = append(r.Conservation, fmt.Sprintf("product %s: stocked %d ≠ available %d + reserved %d + sold %d = %d",
				s.ProductID, s.Initial, s.Available, s.Reserved, s.Sold, sum))
		}
		if held := s.Reserved + s.Sold; held != confirmed[s.ProductID] {
			r.Inconsistent = append(r.Inconsistent, fmt.Sprintf("product %s: reserved %d + sold %d = %d, but confirmed orders hold %d",
				s.ProductID, s.Reserved, s.Sold, held, confirmed[s.ProductID]))
		}
	}
	return r
}

// matchOrders assigns each order at most one request with the same user and
// lines, each request at most one order, as many orders as possible (a
// maximum bipartite matching, by augmenting paths). It returns, per order,
// the index of its request or -1.
func matchOrders(orders []Order, reqs []*request) []int {
	fits := make([][]int, len(orders))
	for i, o := range orders {
		for j, q := range reqs {
			if q.user == o.User && sameLines(q.lines, o.Lines) {
				fits[i] = append(fits[i], j)
			}
		}
	}
	orderOf := make([]int, len(reqs))
	for j := range orderOf {
		orderOf[j] = -1
	}
	var try func(i int, seen []bool) bool
	try = func(i int, seen []bool) bool {
		for _, j := range fits[i] {
			if seen[j] {
				continue
			}
			seen[j] = true
			if orderOf[j] < 0 || try(orderOf[j], seen) {
				orderOf[j] = i
				return true
			}
		}
		return false
	}
	for i := range orders {
		try(i, make([]bool, len(reqs)))
	}
	match := make([]int, len(orders))
	for i := range match {
		match[i] = -1
	}
	for j, i := range orderOf {
		if i >= 0 {
			match[i] = j
		}
	}
	return match
}
