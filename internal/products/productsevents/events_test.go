package productsevents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsevents"
)

// The scenarios name products and orders. Every scenario has fresh
// products A (10 units) and B (5 units), X that does not exist, and fresh
// orders o1, o2, ...; an order named "raw:<id>" has that literal id.
const (
	stockA = 10
	stockB = 5
)

type line struct {
	product string
	qty     int
}

// step delivers one event to the handler: typ about order, with lines for
// orders.placed; or, when again > 0, the event of step again (1-based) once
// more, same id: a redelivery.
type step struct {
	typ   string
	order string
	lines []line
	again int
}

func place(order string, lines ...line) step {
	return step{typ: events.OrderPlaced, order: order, lines: lines}
}
func confirm(order string) step { return step{typ: events.OrderConfirmed, order: order} }
func cancel(order string) step  { return step{typ: events.OrderCancelled, order: order} }
func expire(order string) step  { return step{typ: events.OrderExpired, order: order} }
func reject(order string) step  { return step{typ: events.OrderRejected, order: order} }
func again(n int) step          { return step{again: n} }

// answer is an event products should emit.
type answer struct {
	typ       string
	order     string
	lines     []line
	reason    string
	shortages []shortage
}

type shortage struct {
	product              string
	requested, available int
}

func reserved(order string, lines ...line) answer {
	return answer{typ: events.StockReserved, order: order, lines: lines}
}

func released(order string, lines ...line) answer {
	return answer{typ: events.StockReleased, order: order, lines: lines}
}

func rejected(order, reason string, shortages ...shortage) answer {
	return answer{typ: events.StockRejected, order: order, reason: reason, shortages: shortages}
}

type scenario struct {
	name   string
	steps  []step
	want   []answer         // in the outbox, in order
	levels map[string]level // by product name, at the end
}

// full is the levels of a scenario where nothing is held or sold.
var full = map[string]level{"A": {stockA, 0, 0}, "B": {stockB, 0, 0}}

// names maps a scenario's names to ids.
type names map[string]string

func (n names) id(name string) string {
	if raw, ok := strings.CutPrefix(name, "raw:"); ok {
		return raw
	}
	if _, ok := n[name]; !ok {
		n[name] = newID()
	}
	return n[name]
}

func (n names) lines(ls []line) []events.Line {
	var out []events.Line
	for _, l := range ls {
		out = append(out, events.Line{ProductID: n.id(l.product), Quantity: l.qty})
	}
	return out
}

// run plays each scenario on each database through productsevents.Handler,
// calling it directly, then compares the outbox and the stock levels.
func run(t *testing.T, scenarios []scenario) {
	t.Helper()
	// Each scenario is played event by event (Handler), then, on a database
	// of its own, with all its events in one batch (BatchHandler): the
	// outcome is the same.
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			forEach(t, func(t *testing.T, db *sqldb.DB, svc *products.Service) {
				handle := productsevents.Handler(svc)
				var batch []broker.Event
				if batched {
					handle = func(_ context.Context, e broker.Event) error {
						batch = append(batch, e)
						return nil
					}
				}
				for _, sc := range scenarios {
					t.Run(sc.name, func(t *testing.T) {
						batch = nil
						playScenario(t, db, svc, sc, handle, func() {
							if batched {
								if err := productsevents.BatchHandler(svc)(t.Context(), batch); err != nil {
									t.Fatalf("batch of %d events: %v", len(batch), err)
								}
							}
						})
					})
				}
			})
		})
	}
}

// playScenario delivers sc's steps to handle, calls flush, and checks what
// was emitted and the stock levels.
func playScenario(t *testing.T, db *sqldb.DB, svc *products.Service, sc scenario, handle func(context.Context, broker.Event) error, flush func()) {
	ids := names{"A": create(t, svc, stockA).ID, "B": create(t, svc, stockB).ID}
	var delivered []broker.Event
	for i, s := range sc.steps {
		var e broker.Event
		switch {
		case s.again > 0:
			e = delivered[s.again-1]
		case s.typ == events.OrderPlaced:
			e = placed(t, ids.id(s.order), ids.lines(s.lines)...)
		default:
			e = orderEvent(t, s.typ, ids.id(s.order))
		}
		delivered = append(delivered, e)
		if err := handle(t.Context(), e); err != nil {
			t.Fatalf("step %d, %s about %s: %v", i+1, e.Type, e.Subject, err)
		}
	}
	flush()
	var want []emitted
	orders := map[string]bool{}
	for _, a := range sc.want {
		d := events.StockData{OrderID: ids.id(a.order), Lines: ids.lines(a.lines), Reason: a.reason}
		for _, s := range a.shortages {
			d.Shortages = append(d.Shortages, events.Shortage{ProductID: ids.id(s.product), Requested: s.requested, Available: s.available})
		}
		want = append(want, emitted{Type: a.typ, Source: events.SourceProducts, Subject: d.OrderID, Data: d})
	}
	for _, e := range delivered {
		orders[e.Subject] = true
	}
	if diff := cmp.Diff(want, outboxOf(t, db, slices.Sorted(maps.Keys(orders))...)); diff != "" {
		t.Errorf("events emitted (-want +got):\n%s", diff)
	}
	wantLevels(t, svc, ids, sc.levels)
}

func TestOrderEvents(t *testing.T) {
	a2b1 := []line{{"A", 2}, {"B", 1}}
	run(t, []scenario{
		{
			name:   "placed reserves every line",
			steps:  []step{place("o1", a2b1...)},
			want:   []answer{reserved("o1", a2b1...)},
			levels: map[string]level{"A": {8, 2, 0}, "B": {4, 1, 0}},
		},
		{
			name:   "placed short on one line holds nothing",
			steps:  []step{place("o1", line{"A", 2}, line{"B", 6})},
			want:   []answer{rejected("o1", products.ReasonInsufficientStock, shortage{"B", 6, 5})},
			levels: full,
		},
		{
			name:   "placed short on every line",
			steps:  []step{place("o1", line{"B", 6}, line{"A", 11})},
			want:   []answer{rejected("o1", products.ReasonInsufficientStock, shortage{"B", 6, 5}, shortage{"A", 11, 10})},
			levels: full,
		},
		{
			name:   "placed with an unknown product",
			steps:  []step{place("o1", line{"A", 1}, line{"X", 2})},
			want:   []answer{rejected("o1", products.ReasonUnknownProduct, shortage{"X", 2, 0})},
			levels: full,
		},
		{
			name:   "placed without lines",
			steps:  []step{place("o1")},
			want:   []answer{rejected("o1", "invalid order: lines must hold 1 to 50 lines")},
			levels: full,
		},
		{
			name:   "placed with a zero quantity",
			steps:  []step{place("o1", line{"A", 0})},
			want:   []answer{rejected("o1", "invalid order: quantity must be 1 to 1000")},
			levels: full,
		},
		{
			name:   "placed with one product twice",
			steps:  []step{place("o1", line{"A", 1}, line{"A", 1})},
			want:   []answer{rejected("o1", "invalid order: each product may appear in one line only")},
			levels: full,
		},
		{
			name:   "placed with a malformed order id",
			steps:  []step{place("raw:order-1", line{"A", 1})},
			want:   []answer{rejected("raw:order-1", "invalid order: order_id must be an order id (UUID)")},
			levels: full,
		},
		{
			name:   "placed again by another event: the reservation as it stands",
			steps:  []step{place("o1", line{"A", 2}), place("o1", line{"A", 3}, line{"B", 1})},
			want:   []answer{reserved("o1", line{"A", 2}), reserved("o1", line{"A", 2})},
			levels: map[string]level{"A": {8, 2, 0}, "B": {5, 0, 0}},
		},
		{
			name:   "a rejection leaves nothing behind: placed again may reserve",
			steps:  []step{place("o1", line{"A", 11}), place("o1", line{"A", 1})},
			want:   []answer{rejected("o1", products.ReasonInsufficientStock, shortage{"A", 11, 10}), reserved("o1", line{"A", 1})},
			levels: map[string]level{"A": {9, 1, 0}, "B": {5, 0, 0}},
		},
		{
			name:   "confirmed sells the reservation",
			steps:  []step{place("o1", a2b1...), confirm("o1")},
			want:   []answer{reserved("o1", a2b1...)},
			levels: map[string]level{"A": {8, 0, 2}, "B": {4, 0, 1}},
		},
		{
			name:   "confirmed again by another event changes nothing",
			steps:  []step{place("o1", a2b1...), confirm("o1"), confirm("o1")},
			want:   []answer{reserved("o1", a2b1...)},
			levels: map[string]level{"A": {8, 0, 2}, "B": {4, 0, 1}},
		},
		{
			name:   "placed again after the sale: what it bought",
			steps:  []step{place("o1", a2b1...), confirm("o1"), place("o1", line{"A", 5})},
			want:   []answer{reserved("o1", a2b1...), reserved("o1", a2b1...)},
			levels: map[string]level{"A": {8, 0, 2}, "B": {4, 0, 1}},
		},
		{
			name:   "cancelled releases the reservation",
			steps:  []step{place("o1", a2b1...), cancel("o1")},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...)},
			levels: full,
		},
		{
			name:   "expired releases the reservation",
			steps:  []step{place("o1", a2b1...), expire("o1")},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...)},
			levels: full,
		},
		{
			name:   "cancelled releases the sale",
			steps:  []step{place("o1", a2b1...), confirm("o1"), cancel("o1")},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...)},
			levels: full,
		},
		{
			name:   "expired releases the sale",
			steps:  []step{place("o1", a2b1...), confirm("o1"), expire("o1")},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...)},
			levels: full,
		},
		{
			name:   "cancelled again by another event releases nothing more",
			steps:  []step{place("o1", a2b1...), cancel("o1"), cancel("o1"), expire("o1")},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...), released("o1"), released("o1")},
			levels: full,
		},
		{
			name:   "cancelled after a rejection releases nothing",
			steps:  []step{place("o1", line{"B", 6}), cancel("o1")},
			want:   []answer{rejected("o1", products.ReasonInsufficientStock, shortage{"B", 6, 5}), released("o1")},
			levels: full,
		},
		{
			name:   "rejected does nothing",
			steps:  []step{place("o1", line{"A", 2}), reject("o1"), reject("o2")},
			want:   []answer{reserved("o1", line{"A", 2})},
			levels: map[string]level{"A": {8, 2, 0}, "B": {5, 0, 0}},
		},
		{
			name: "orders share the stock",
			steps: []step{
				place("o1", line{"A", 4}), place("o2", line{"A", 4}, line{"B", 5}), place("o3", line{"A", 3}),
				confirm("o2"), cancel("o1"), place("o4", line{"A", 3}), place("o5", line{"B", 1}),
			},
			want: []answer{
				reserved("o1", line{"A", 4}), reserved("o2", line{"A", 4}, line{"B", 5}),
				rejected("o3", products.ReasonInsufficientStock, shortage{"A", 3, 2}),
				released("o1", line{"A", 4}), reserved("o4", line{"A", 3}),
				rejected("o5", products.ReasonInsufficientStock, shortage{"B", 1, 0}),
			},
			levels: map[string]level{"A": {3, 3, 4}, "B": {0, 0, 5}},
		},
	})
}

// A redelivered event (the same id: a lost ack, a copy published after the
// broker's duplicate window) has no second effect and no second answer.
func TestRedelivery(t *testing.T) {
	a2b1 := []line{{"A", 2}, {"B", 1}}
	run(t, []scenario{
		{
			name:   "orders.placed",
			steps:  []step{place("o1", a2b1...), again(1), again(1)},
			want:   []answer{reserved("o1", a2b1...)},
			levels: map[string]level{"A": {8, 2, 0}, "B": {4, 1, 0}},
		},
		{
			name:   "orders.placed that was rejected",
			steps:  []step{place("o1", line{"A", 11}), again(1)},
			want:   []answer{rejected("o1", products.ReasonInsufficientStock, shortage{"A", 11, 10})},
			levels: full,
		},
		{
			name:   "orders.placed after its order was released",
			steps:  []step{place("o1", a2b1...), cancel("o1"), again(1)},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...)},
			levels: full,
		},
		{
			name:   "orders.confirmed",
			steps:  []step{place("o1", a2b1...), confirm("o1"), again(2)},
			want:   []answer{reserved("o1", a2b1...)},
			levels: map[string]level{"A": {8, 0, 2}, "B": {4, 0, 1}},
		},
		{
			name:   "orders.cancelled",
			steps:  []step{place("o1", a2b1...), cancel("o1"), again(2), again(2)},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...)},
			levels: full,
		},
		{
			name:   "orders.expired",
			steps:  []step{place("o1", a2b1...), confirm("o1"), expire("o1"), again(3)},
			want:   []answer{reserved("o1", a2b1...), released("o1", a2b1...)},
			levels: full,
		},
		{
			name:   "orders.rejected",
			steps:  []step{place("o1", line{"A", 1}), reject("o1"), again(2)},
			want:   []answer{reserved("o1", line{"A", 1})},
			levels: map[string]level{"A": {9, 1, 0}, "B": {5, 0, 0}},
		},
		{
			name: "every event twice, interleaved with another order",
			steps: []step{
				place("o1", a2b1...), place("o2", line{"A", 1}), again(1), again(2),
				confirm("o1"), again(5), expire("o2"), cancel("o1"), again(7), again(8), again(1),
			},
			want: []answer{
				reserved("o1", a2b1...), reserved("o2", line{"A", 1}),
				released("o2", line{"A", 1}), released("o1", a2b1...),
			},
			levels: full,
		},
	})
}

// Events of one order may arrive out of order (orders gave up on an order
// before its orders.placed was handled, or a bug). The stock stays right.
func TestOutOfOrder(t *testing.T) {
	run(t, []scenario{
		{
			name:   "cancelled before placed: the late placed is rejected",
			steps:  []step{cancel("o1"), place("o1", line{"A", 2})},
			want:   []answer{released("o1"), rejected("o1", products.ReasonReleased)},
			levels: full,
		},
		{
			name:   "expired before placed: the late placed is rejected",
			steps:  []step{expire("o1"), place("o1", line{"A", 2})},
			want:   []answer{released("o1"), rejected("o1", products.ReasonReleased)},
			levels: full,
		},
		{
			name:   "placed after a release of the reservation is rejected",
			steps:  []step{place("o1", line{"A", 2}), confirm("o1"), expire("o1"), place("o1", line{"A", 2})},
			want:   []answer{reserved("o1", line{"A", 2}), released("o1", line{"A", 2}), rejected("o1", products.ReasonReleased)},
			levels: full,
		},
		{
			// Harmless: nothing is sold; the placed that follows reserves,
			// and the units stay reserved until a release (or a confirmed).
			name:   "confirmed before placed does nothing; placed then reserves",
			steps:  []step{confirm("o1"), place("o1", line{"A", 2})},
			want:   []answer{reserved("o1", line{"A", 2})},
			levels: map[string]level{"A": {8, 2, 0}, "B": {5, 0, 0}},
		},
		{
			name:   "confirmed before placed, then expired",
			steps:  []step{confirm("o1"), place("o1", line{"A", 2}), expire("o1")},
			want:   []answer{reserved("o1", line{"A", 2}), released("o1", line{"A", 2})},
			levels: full,
		},
		{
			name:   "confirmed after cancelled sells nothing",
			steps:  []step{place("o1", line{"A", 2}), cancel("o1"), confirm("o1")},
			want:   []answer{reserved("o1", line{"A", 2}), released("o1", line{"A", 2})},
			levels: full,
		},
	})
}

// Events products cannot make sense of go to the dead-letter stream (an error
// wrapping broker.ErrPermanent) without any effect; events that are none of
// its business are acknowledged and ignored.
func TestUnusableEvents(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB, svc *products.Service) {
		handle := productsevents.Handler(svc)
		p := create(t, svc, stockA)
		raw := func(typ, subject, data string) broker.Event {
			return event(t, typ, subject, json.RawMessage(data))
		}
		order := newID()
		v2 := placed(t, order, events.Line{ProductID: p.ID, Quantity: 1})
		v2.DataSchemaVersion = "2"
		noID := placed(t, order, events.Line{ProductID: p.ID, Quantity: 1})
		noID.ID = ""
		tests := []struct {
			name      string
			e         broker.Event
			permanent bool
		}{
			{"placed with an order id of the wrong type", raw(events.OrderPlaced, order, `{"order_id":5}`), true},
			{"placed with lines of the wrong type", raw(events.OrderPlaced, order, `{"order_id":"`+order+`","lines":"two"}`), true},
			{"placed with a quantity of the wrong type", raw(events.OrderPlaced, order, `{"order_id":"`+order+`","lines":[{"product_id":"`+p.ID+`","quantity":"1"}]}`), true},
			{"placed without an order id", raw(events.OrderPlaced, order, `{"lines":[{"product_id":"`+p.ID+`","quantity":1}]}`), true},
			{"placed for another order than its subject", raw(events.OrderPlaced, order, `{"order_id":"`+newID()+`","lines":[{"product_id":"`+p.ID+`","quantity":1}]}`), true},
			{"placed of an unknown schema version", v2, true},
			{"placed without an event id", noID, true},
			{"confirmed for a malformed order id", orderEvent(t, events.OrderConfirmed, "order-1"), true},
			{"cancelled for a malformed order id", orderEvent(t, events.OrderCancelled, "order-1"), true},
			{"expired for a malformed order id", orderEvent(t, events.OrderExpired, "order-1"), true},
			{"cancelled for another order than its subject", raw(events.OrderCancelled, order, `{"order_id":"`+newID()+`"}`), true},
			{"rejected", orderEvent(t, events.OrderRejected, order), false},
			{"rejected with a body it does not read", raw(events.OrderRejected, order, `{"order_id":5}`), false},
			{"an event type products does not know", orderEvent(t, "orders.archived", order), false},
		}
		for _, tt := range tests {
			err := handle(t.Context(), tt.e)
			if got := errors.Is(err, broker.ErrPermanent); got != tt.permanent || (!tt.permanent && err != nil) {
				t.Errorf("%s: error = %v, want permanent %v", tt.name, err, tt.permanent)
			}
		}
		if got := outboxOf(t, db); len(got) != 0 {
			t.Errorf("events emitted: %+v, want none", got)
		}
		var inbox int
		if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM inbox`).Scan(&inbox); err != nil {
			t.Fatal(err)
		}
		if inbox != 0 {
			t.Errorf("inbox holds %d events, want 0", inbox)
		}
		if got := levelOf(t, svc, p.ID); got != (level{stockA, 0, 0}) {
			t.Errorf("stock levels = %+v, want all %d available", got, stockA)
		}
	})
}
