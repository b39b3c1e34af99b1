package productsevents_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsevents"
)

// stockModel is what the stock should be after a sequence of operations,
// applied one at a time.
type stockModel struct {
	stocked   map[string]int // units stocked per product: available + reserved + sold
	available map[string]int
	orders    map[string]*orderModel
}

type orderModel struct {
	state string // "", products.Reserved, "sold" or "released"
	held  []events.Line
}

func (m *stockModel) order(id string) *orderModel {
	if m.orders[id] == nil {
		m.orders[id] = &orderModel{}
	}
	return m.orders[id]
}

// reserve is orders.placed, or a reservation through the synchronous path.
func (m *stockModel) reserve(orderID string, lines []events.Line) {
	o := m.order(orderID)
	if o.state != "" {
		return // held, sold or released: as it stands
	}
	for _, l := range lines {
		if n, ok := m.available[l.ProductID]; !ok || n < l.Quantity {
			return // unknown or short: all or nothing
		}
	}
	for _, l := range lines {
		m.available[l.ProductID] -= l.Quantity
	}
	o.state, o.held = products.Reserved, lines
}

func (m *stockModel) confirm(orderID string) {
	if o := m.order(orderID); o.state == products.Reserved {
		o.state = "sold"
	}
}

func (m *stockModel) release(orderID string) {
	o := m.order(orderID)
	for _, l := range o.held {
		m.available[l.ProductID] += l.Quantity
	}
	o.state, o.held = "released", nil
}

func (m *stockModel) levels(ids []string) []products.StockLevel {
	out := make([]products.StockLevel, len(ids))
	for i, id := range ids {
		out[i] = products.StockLevel{ProductID: id, Available: m.available[id]}
	}
	for _, o := range m.orders {
		for _, l := range o.held {
			i := slices.Index(ids, l.ProductID)
			if o.state == "sold" {
				out[i].Sold += l.Quantity
			} else {
				out[i].Reserved += l.Quantity
			}
		}
	}
	return out
}

// TestConservation plays a random sequence of orders' events over several
// orders and products, redeliveries, synchronous reservations and releases
// and admin stock changes included, and checks after each that every unit is
// accounted for: stocked = available + reserved + sold, per product, and that
// the levels are the model's.
func TestConservation(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	forEach(t, func(t *testing.T, db *sqldb.DB, svc *products.Service) {
		ctx := t.Context()
		rng := rand.New(rand.NewPCG(seed, 1))
		handle := productsevents.Handler(svc)
		m := &stockModel{stocked: map[string]int{}, available: map[string]int{}, orders: map[string]*orderModel{}}
		var ids []string
		for _, n := range []int{3, 8, 12, 20} {
			p := create(t, svc, n)
			ids = append(ids, p.ID)
			m.stocked[p.ID], m.available[p.ID] = n, n
		}
		slices.Sort(ids)
		orders := make([]string, 15)
		for i := range orders {
			orders[i] = newID()
		}
		unknown := newID()
		randomLines := func() []events.Line {
			var out []events.Line
			for _, i := range rng.Perm(len(ids))[:1+rng.IntN(3)] {
				out = append(out, events.Line{ProductID: ids[i], Quantity: 1 + rng.IntN(4)})
			}
			if rng.IntN(20) == 0 {
				out = append(out, events.Line{ProductID: unknown, Quantity: 1})
			}
			return out
		}
		var delivered []broker.Event
		deliver := func(e broker.Event) {
			t.Helper()
			delivered = append(delivered, e)
			if err := handle(ctx, e); err != nil {
				t.Fatalf("%s about %s: %v", e.Type, e.Subject, err)
			}
		}
		for step := range 300 {
			order := orders[rng.IntN(len(orders))]
			var what string
			switch k := rng.IntN(100); {
			case k < 35:
				lines := randomLines()
				what = fmt.Sprintf("orders.placed %v", lines)
				deliver(placed(t, order, lines...))
				m.reserve(order, lines)
			case k < 50:
				what = "orders.confirmed"
				deliver(orderEvent(t, events.OrderConfirmed, order))
				m.confirm(order)
			case k < 58:
				what = "orders.cancelled"
				deliver(orderEvent(t, events.OrderCancelled, order))
				m.release(order)
			case k < 64:
				what = "orders.expired"
				deliver(orderEvent(t, events.OrderExpired, order))
				m.release(order)
			case k < 67:
				what = "orders.rejected"
				deliver(orderEvent(t, events.OrderRejected, order))
			case k < 82:
				if len(delivered) == 0 {
					continue
				}
				e := delivered[rng.IntN(len(delivered))]
				what = "redelivered " + e.Type
				if err := handle(ctx, e); err != nil {
					t.Fatalf("redelivered %s about %s: %v", e.Type, e.Subject, err)
				}
			case k < 90:
				lines := toLines(randomLines())
				what = fmt.Sprintf("Reserve %v", lines)
				_, err := svc.Reserve(ctx, order, lines)
				if err != nil && fault.CodeOf(err) != "unknown-product" {
					t.Fatalf("Reserve: %v", err)
				}
				m.reserve(order, fromLines(lines))
			case k < 95:
				what = "Release"
				if err := svc.Release(ctx, order); err != nil {
					t.Fatalf("Release: %v", err)
				}
				m.release(order)
			default:
				id, n := ids[rng.IntN(len(ids))], rng.IntN(15)
				what = fmt.Sprintf("admin sets the stock of %s to %d", id, n)
				if _, err := svc.Update(ctx, id, products.Patch{Stock: &n}); err != nil {
					t.Fatalf("Update: %v", err)
				}
				m.stocked[id] += n - m.available[id]
				m.available[id] = n
			}
			got, err := svc.StockLevelsOf(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range got {
				if l.Available+l.Reserved+l.Sold != m.stocked[l.ProductID] || l.Available < 0 || l.Reserved < 0 || l.Sold < 0 {
					t.Fatalf("step %d (%s on order %s): product %s has %+v, stocked %d: units not accounted for",
						step, what, order, l.ProductID, l, m.stocked[l.ProductID])
				}
			}
			if diff := cmp.Diff(m.levels(ids), got); diff != "" {
				t.Fatalf("step %d (%s on order %s): stock levels (-want +got):\n%s", step, what, order, diff)
			}
		}
	})
}

func toLines(ls []events.Line) []products.Line {
	out := make([]products.Line, len(ls))
	for i, l := range ls {
		out[i] = products.Line(l)
	}
	return out
}

func fromLines(ls []products.Line) []events.Line {
	out := make([]events.Line, len(ls))
	for i, l := range ls {
		out[i] = events.Line(l)
	}
	return out
}

// 100 orders.placed for the last 10 units, handled at once (as by 100
// replicas): exactly 10 are reserved, 90 rejected, nothing is oversold.
func TestLastUnitsConcurrently(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB, svc *products.Service) {
		ctx := t.Context()
		handle := productsevents.Handler(svc)
		p := create(t, svc, 14)
		// 4 units are sold already: 10 are left.
		first := newID()
		for _, e := range []broker.Event{
			placed(t, first, events.Line{ProductID: p.ID, Quantity: 4}),
			orderEvent(t, events.OrderConfirmed, first),
		} {
			if err := handle(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		const n = 100
		orders := make([]string, n)
		evs := make([]broker.Event, n)
		for i := range n {
			orders[i] = newID()
			evs[i] = placed(t, orders[i], events.Line{ProductID: p.ID, Quantity: 1})
		}
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = handle(ctx, evs[i])
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("orders.placed %d: %v", i, err)
			}
		}
		answers := map[string]int{}
		for _, e := range outboxOf(t, db, orders...) {
			answers[e.Type]++
			if e.Type == events.StockRejected {
				want := events.StockData{OrderID: e.Subject, Reason: products.ReasonInsufficientStock,
					Shortages: []events.Shortage{{ProductID: p.ID, Requested: 1, Available: 0}}}
				if diff := cmp.Diff(want, e.Data); diff != "" {
					t.Errorf("stock.rejected (-want +got):\n%s", diff)
				}
			}
		}
		if diff := cmp.Diff(map[string]int{events.StockReserved: 10, events.StockRejected: 90}, answers); diff != "" {
			t.Errorf("answers (-want +got):\n%s", diff)
		}
		if got, want := levelOf(t, svc, p.ID), (level{Available: 0, Reserved: 10, Sold: 4}); got != want {
			t.Errorf("stock levels = %+v, want %+v (14 units in all)", got, want)
		}
	})
}

// One event handled by many replicas at once (a redelivery racing the first
// delivery) is applied once.
func TestSameEventConcurrently(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB, svc *products.Service) {
		ctx := t.Context()
		handle := productsevents.Handler(svc)
		p := create(t, svc, 10)
		order := newID()
		steps := []broker.Event{
			placed(t, order, events.Line{ProductID: p.ID, Quantity: 3}),
			orderEvent(t, events.OrderConfirmed, order),
			orderEvent(t, events.OrderCancelled, order),
		}
		wantLevels := []level{{7, 3, 0}, {7, 0, 3}, {10, 0, 0}}
		for i, e := range steps {
			var wg sync.WaitGroup
			errs := make([]error, 20)
			for j := range errs {
				wg.Go(func() { errs[j] = handle(ctx, e) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("%s: %v", e.Type, err)
				}
			}
			if got := levelOf(t, svc, p.ID); got != wantLevels[i] {
				t.Errorf("after %s 20 times at once: levels = %+v, want %+v", e.Type, got, wantLevels[i])
			}
		}
		var got []string
		for _, e := range outboxOf(t, db, order) {
			got = append(got, e.Type)
		}
		if diff := cmp.Diff([]string{events.StockReserved, events.StockReleased}, got); diff != "" {
			t.Errorf("events emitted (-want +got):\n%s", diff)
		}
	})
}
