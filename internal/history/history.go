// Package history records what clients asked of microshop's checkout and what
// they were told, and checks such a history, together with the state the
// system ends in, against the invariants of the checkout saga.
//
// It follows Jepsen's model of a history: every client operation is an
// invocation followed by a completion that is ok (it happened, and the client
// knows the result), fail (it did not happen) or info (the client cannot tell:
// a timeout, a reset connection, a 5xx from a proxy). Unlike Knossos it does not
// search for a linearization; it checks what the saga promises:
//
//   - every acknowledged order exists and reaches a final state (not lost, not stuck);
//   - one idempotency key makes at most one order, retries included (no duplicates);
//   - statuses only move along the life cycle, and an acknowledged cancel sticks;
//   - per product, units stocked = available + reserved + sold (conservation);
//   - reserved + sold = the units of the confirmed orders (consistency);
//
// and it measures how long the system took to settle after the last fault.
package history

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Type is the type of an entry of a history.
type Type string

// Entry types, as in Jepsen.
const (
	Invoke Type = "invoke" // a client starts an operation
	OK     Type = "ok"     // it happened; the client knows the result
	Fail   Type = "fail"   // it certainly did not happen
	Info   Type = "info"   // unknown outcome: it may or may not have happened
)

// Kind is what an operation does.
type Kind string

// Operation kinds.
const (
	Place  Kind = "place"  // POST /api/v1/orders
	Cancel Kind = "cancel" // POST /api/v1/orders/{id}/cancel
	Read   Kind = "read"   // GET /api/v1/orders/{id}, a listing, or an event stream
)

// Order statuses, as the orders API names them.
const (
	Pending   = "pending"
	Confirmed = "confirmed"
	Rejected  = "rejected"
	Expired   = "expired"
	Cancelled = "cancelled"
)

// Line is a quantity of one product.
type Line struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// Op is one entry of a history.
type Op struct {
	Index   int    // position in the history
	Process int    // the logical client: one operation in flight at a time
	Type    Type   // invoke, ok, fail or info
	Kind    Kind   // place, cancel or read
	User    string // whose order it is (the customer the client acts for)
	Key     string // place: the Idempotency-Key
	OrderID string // the order, when known: a place's ok; a cancel's and a read's target
	Lines   []Line // place: what was asked
	Status  string // ok: the order's status in the answer
	Code    int    // the HTTP status of the answer, 0 when none came
	Error   string // fail, info: what went wrong
	Time    time.Time
}

func (o Op) String() string {
	s := fmt.Sprintf("%d p%d %s %s", o.Index, o.Process, o.Type, o.Kind)
	if o.Key != "" {
		s += " key=" + o.Key
	}
	if o.OrderID != "" {
		s += " order=" + o.OrderID
	}
	if o.Status != "" {
		s += " status=" + o.Status
	}
	if o.Code != 0 {
		s += fmt.Sprintf(" code=%d", o.Code)
	}
	if o.Error != "" {
		s += " err=" + o.Error
	}
	return s
}

// History is a concurrency-safe recorder of operations.
type History struct {
	mu       sync.Mutex
	ops      []Op
	inFlight map[int]int // process → index of its pending invocation
	now      func() time.Time
}

// New returns an empty history that stamps entries with time.Now.
func New() *History { return NewWithClock(time.Now) }

// NewWithClock returns an empty history that stamps entries with now.
func NewWithClock(now func() time.Time) *History {
	return &History{inFlight: map[int]int{}, now: now}
}

// Call is an invoked operation waiting for its completion.
type Call struct {
	h   *History
	inv Op
}

// Invoke records that process starts op (its Type, Index, Process and Time
// are set here) and returns the call to complete. A process has one
// operation in flight at a time; invoking another before completing the
// first panics, as it is a bug in the client.
func (h *History) Invoke(process int, op Op) *Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i, ok := h.inFlight[process]; ok {
		panic(fmt.Sprintf("history: process %d invokes %s while %s is in flight", process, op.Kind, h.ops[i]))
	}
	op.Process, op.Type, op.Index, op.Time = process, Invoke, len(h.ops), h.now()
	op.Lines = slices.Clone(op.Lines)
	h.ops = append(h.ops, op)
	h.inFlight[process] = op.Index
	return &Call{h: h, inv: op}
}

// OK completes the call: it happened, the order is orderID and its status was
// status (code is the HTTP status).
func (c *Call) OK(orderID, status string, code int) {
	c.complete(OK, func(o *Op) { o.OrderID, o.Status, o.Code = orderID, status, code })
}

// Fail completes the call: it certainly did not happen.
func (c *Call) Fail(code int, err string) {
	c.complete(Fail, func(o *Op) { o.Code, o.Error = code, err })
}

// Info completes the call with an unknown outcome.
func (c *Call) Info(code int, err string) {
	c.complete(Info, func(o *Op) { o.Code, o.Error = code, err })
}

func (c *Call) complete(t Type, fill func(*Op)) {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if i, ok := h.inFlight[c.inv.Process]; !ok || i != c.inv.Index {
		panic(fmt.Sprintf("history: %s completed twice", c.inv))
	}
	delete(h.inFlight, c.inv.Process)
	op := c.inv
	op.Type, op.Index, op.Time = t, len(h.ops), h.now()
	op.Status, op.Code, op.Error = "", 0, ""
	fill(&op)
	h.ops = append(h.ops, op)
}

// Observe records a read that saw the order orderID of user with status at
// some moment between start and end (an invocation and an ok completion on
// process). It suits observations made in bulk, such as a listing.
func (h *History) Observe(process int, user, orderID, status string, start, end time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.inFlight[process]; ok {
		panic(fmt.Sprintf("history: process %d observes while an operation is in flight", process))
	}
	inv := Op{Index: len(h.ops), Process: process, Type: Invoke, Kind: Read, User: user, OrderID: orderID, Time: start}
	ok := inv
	ok.Index, ok.Type, ok.Status, ok.Code, ok.Time = inv.Index+1, OK, status, 200, end
	h.ops = append(h.ops, inv, ok)
}

// Ops returns a copy of the entries so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Op, len(h.ops))
	for i, o := range h.ops {
		o.Lines = slices.Clone(o.Lines)
		out[i] = o
	}
	return out
}

// Len is the number of entries so far.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}
