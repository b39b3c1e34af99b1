package ordersdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordersdb/ordersdbtest"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/products"
)

const (
	alice = "0190f000-0000-7000-8000-000000000001"
	bob   = "0190f000-0000-7000-8000-000000000002"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)

// newOrder returns a pending order of user with id number n (ids sort like n),
// created n minutes after t0 with a deadline 30 s later, with two lines.
func newOrder(user string, n int) orders.Order {
	eur := func(a int64) products.Money { return products.Money{Amount: a, Currency: "EUR"} }
	at := t0.Add(time.Duration(n) * time.Minute)
	return orders.Order{
		ID: fmt.Sprintf("0190f000-0000-7000-8000-%012d", n), UserID: user, Status: orders.StatusPending,
		Lines: []orders.Line{
			{ProductID: "0190f000-0000-7000-8000-0000000000b2", Quantity: 2, UnitPrice: eur(250)},
			{ProductID: "0190f000-0000-7000-8000-0000000000b1", Quantity: 1, UnitPrice: eur(1000)},
		},
		Total: eur(1500), Deadline: at.Add(30 * time.Second), CreatedAt: at, UpdatedAt: at,
	}
}

// event returns an event of type typ about the order id.
func event(t *testing.T, typ, id string) broker.Event {
	t.Helper()
	e, err := broker.NewEvent(events.SourceOrders, typ, id, events.OrderData{OrderID: id})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// transition returns a Change that moves the order to status at time at and
// emits the events.
func transition(status string, at time.Time, emit ...broker.Event) orders.Change {
	return func(o *orders.Order) ([]broker.Event, error) {
		if err := o.Transition(status, "why", at); err != nil {
			return nil, err
		}
		return emit, nil
	}
}

func TestStore(t *testing.T) {
	ordersdbtest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := ordersdb.New(db)
		mustCreate := func(t *testing.T, o orders.Order, key *orders.IdempotencyKey) {
			t.Helper()
			if err := s.CreateOrder(ctx, o, key, nil); err != nil {
				t.Fatalf("CreateOrder(%s): %v", o.ID, err)
			}
		}

		t.Run("create and read with key", func(t *testing.T) {
			o := newOrder(alice, 1)
			key := &orders.IdempotencyKey{UserID: alice, Key: "k1", RequestHash: "h1", OrderID: o.ID, CreatedAt: o.CreatedAt}
			mustCreate(t, o, key)
			got, err := s.Order(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(o, got); diff != "" {
				t.Errorf("Order() (-want +got):\n%s", diff)
			}
			gotKey, err := s.IdempotencyKey(ctx, alice, "k1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*key, gotKey); diff != "" {
				t.Errorf("IdempotencyKey() (-want +got):\n%s", diff)
			}
		})

		t.Run("keys are per user and unique", func(t *testing.T) {
			other := newOrder(bob, 2)
			mustCreate(t, other, &orders.IdempotencyKey{UserID: bob, Key: "k1", RequestHash: "h2", OrderID: other.ID, CreatedAt: t0})
			dup := newOrder(alice, 3)
			outbox := ordersdbtest.Kinds(t, db)
			err := s.CreateOrder(ctx, dup, &orders.IdempotencyKey{UserID: alice, Key: "k1", RequestHash: "h3", OrderID: dup.ID, CreatedAt: t0},
				[]broker.Event{event(t, events.OrderPlaced, dup.ID)})
			if fault.KindOf(err) != fault.Conflict || fault.CodeOf(err) != orders.CodeKeyExists {
				t.Fatalf("CreateOrder with a used key: error = %v, want conflict %s", err, orders.CodeKeyExists)
			}
			if _, err := s.Order(ctx, dup.ID); !fault.Is(err, fault.NotFound) {
				t.Errorf("order of the refused create: error = %v, want not found", err)
			}
			if diff := cmp.Diff(outbox, ordersdbtest.Kinds(t, db)); diff != "" {
				t.Errorf("outbox after the refused create (-before +after):\n%s", diff)
			}
		})

		t.Run("create adds its events in the same transaction", func(t *testing.T) {
			o := newOrder(alice, 20)
			placed := event(t, events.OrderPlaced, o.ID)
			outbox := ordersdbtest.Kinds(t, db)
			if err := s.CreateOrder(ctx, o, nil, []broker.Event{placed}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(append(outbox, events.OrderPlaced+" "+o.ID), ordersdbtest.Kinds(t, db)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
			// An event that cannot be added rolls the order back with it.
			bad := newOrder(alice, 21)
			err := s.CreateOrder(ctx, bad, &orders.IdempotencyKey{UserID: alice, Key: "k21", RequestHash: "h", OrderID: bad.ID, CreatedAt: t0},
				[]broker.Event{event(t, events.OrderPlaced, bad.ID), placed}) // placed again: its id is taken
			if err == nil {
				t.Fatal("CreateOrder with an event added twice: no error")
			}
			if _, err := s.Order(ctx, bad.ID); !fault.Is(err, fault.NotFound) {
				t.Errorf("order of the failed create: error = %v, want not found", err)
			}
			if _, err := s.IdempotencyKey(ctx, alice, "k21"); !fault.Is(err, fault.NotFound) {
				t.Errorf("key of the failed create: error = %v, want not found", err)
			}
			if got := ordersdbtest.Kinds(t, db); len(got) != len(outbox)+1 {
				t.Errorf("outbox after the failed create = %v, want only the first create's event", got)
			}
		})

		t.Run("unknown", func(t *testing.T) {
			if _, err := s.Order(ctx, "0190f000-0000-7000-8000-999999999999"); !fault.Is(err, fault.NotFound) {
				t.Errorf("Order(unknown) error = %v, want not found", err)
			}
			if _, err := s.IdempotencyKey(ctx, alice, "nope"); !fault.Is(err, fault.NotFound) {
				t.Errorf("IdempotencyKey(unknown) error = %v, want not found", err)
			}
			_, err := s.UpdateOrder(ctx, "0190f000-0000-7000-8000-999999999999", func(*orders.Order) ([]broker.Event, error) { return nil, nil })
			if !fault.Is(err, fault.NotFound) {
				t.Errorf("UpdateOrder(unknown) error = %v, want not found", err)
			}
		})

		t.Run("update", func(t *testing.T) {
			o := newOrder(alice, 4)
			mustCreate(t, o, nil)
			later := t0.Add(time.Hour)
			outbox := ordersdbtest.Kinds(t, db)
			got, err := s.UpdateOrder(ctx, o.ID, transition(orders.StatusRejected, later, event(t, events.OrderRejected, o.ID)))
			if err != nil {
				t.Fatal(err)
			}
			want := o
			want.Status, want.Reason, want.UpdatedAt = orders.StatusRejected, "why", later
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("UpdateOrder() (-want +got):\n%s", diff)
			}
			outbox = append(outbox, events.OrderRejected+" "+o.ID)
			if diff := cmp.Diff(outbox, ordersdbtest.Kinds(t, db)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
			// A refused change is not stored, and neither are its events.
			_, err = s.UpdateOrder(ctx, o.ID, transition(orders.StatusConfirmed, later.Add(time.Hour), event(t, events.OrderConfirmed, o.ID)))
			if !fault.Is(err, fault.Conflict) {
				t.Fatalf("UpdateOrder(rejected to confirmed) error = %v, want conflict", err)
			}
			stored, err := s.Order(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored order after a refused update (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(outbox, ordersdbtest.Kinds(t, db)); diff != "" {
				t.Errorf("outbox after a refused update (-want +got):\n%s", diff)
			}
			// The time the stock was released is kept.
			released := later.Add(time.Minute)
			got, err = s.UpdateOrder(ctx, o.ID, func(o *orders.Order) ([]broker.Event, error) {
				_, err := o.Apply(orders.TriggerReleased, "", released)
				return nil, err
			})
			if err != nil {
				t.Fatal(err)
			}
			want.ReleasedAt, want.UpdatedAt = &released, released
			stored, err = s.Order(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("UpdateOrder(released) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored order after release (-want +got):\n%s", diff)
			}
		})

		t.Run("concurrent updates apply one after the other", func(t *testing.T) {
			o := newOrder(alice, 5)
			mustCreate(t, o, nil)
			outbox := len(ordersdbtest.Kinds(t, db))
			errs := make(chan error, 2)
			for _, status := range []string{orders.StatusConfirmed, orders.StatusRejected} {
				go func() {
					_, err := s.UpdateOrder(ctx, o.ID, func(o *orders.Order) ([]broker.Event, error) {
						time.Sleep(20 * time.Millisecond) // widen the window in which the other could read pending
						if err := o.Transition(status, "x", t0); err != nil {
							return nil, err
						}
						e, err := broker.NewEvent(events.SourceOrders, "orders."+status, o.ID, events.OrderData{OrderID: o.ID})
						return []broker.Event{e}, err
					})
					errs <- err
				}()
			}
			var conflicts int
			for range 2 {
				if err := <-errs; fault.Is(err, fault.Conflict) {
					conflicts++
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if conflicts != 1 {
				t.Errorf("conflicts = %d, want 1: exactly one update may leave pending", conflicts)
			}
			if got := ordersdbtest.Kinds(t, db); len(got) != outbox+1 {
				t.Errorf("outbox = %v, want one event more", got)
			}
		})

		t.Run("apply an event once", func(t *testing.T) {
			o := newOrder(alice, 6)
			mustCreate(t, o, nil)
			outbox := ordersdbtest.Kinds(t, db)
			calls := 0
			change := func(status string) orders.Change {
				return func(o *orders.Order) ([]broker.Event, error) {
					calls++
					return transition(status, t0.Add(time.Hour), event(t, "orders."+status, o.ID))(o)
				}
			}
			// A change that fails rolls the inbox entry back with it.
			if _, _, err := s.ApplyEvent(ctx, "test", "e0", o.ID, change(orders.StatusPending)); !fault.Is(err, fault.Conflict) {
				t.Fatalf("ApplyEvent(refused change) error = %v, want conflict", err)
			}
			for i, want := range []bool{true, false, false} {
				got, applied, err := s.ApplyEvent(ctx, "test", "e1", o.ID, change(orders.StatusConfirmed))
				if err != nil || applied != want {
					t.Fatalf("delivery %d: ApplyEvent() = applied %v, %v; want applied %v", i+1, applied, err, want)
				}
				if applied && got.Status != orders.StatusConfirmed {
					t.Errorf("ApplyEvent() = %s, want confirmed", got.Status)
				}
			}
			if calls != 2 {
				t.Errorf("change called %d times, want 2 (the refused one and the first delivery)", calls)
			}
			if diff := cmp.Diff(append(outbox, events.OrderConfirmed+" "+o.ID), ordersdbtest.Kinds(t, db)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"e1"}, ordersdbtest.Inbox(t, db, "test")); diff != "" {
				t.Errorf("inbox (-want +got):\n%s", diff)
			}
			// Another consumer applies the same event id on its own.
			if _, applied, err := s.ApplyEvent(ctx, "other", "e1", o.ID, change(orders.StatusCancelled)); err != nil || !applied {
				t.Errorf("ApplyEvent(other consumer) = applied %v, %v; want applied", applied, err)
			}
			// An unknown order is not found, and not recorded.
			if _, _, err := s.ApplyEvent(ctx, "test", "e2", "0190f000-0000-7000-8000-999999999999", change(orders.StatusConfirmed)); !fault.Is(err, fault.NotFound) {
				t.Errorf("ApplyEvent(unknown order) error = %v, want not found", err)
			}
			if got := ordersdbtest.Inbox(t, db, "test"); len(got) != 1 {
				t.Errorf("inbox = %v, want only e1", got)
			}
		})

		t.Run("list by user, newest first", func(t *testing.T) {
			// bob has order 2 only so far; add 3 more.
			for n := 10; n < 13; n++ {
				mustCreate(t, newOrder(bob, n), nil)
			}
			ids := func(list []orders.Order) []string {
				var out []string
				for _, o := range list {
					out = append(out, o.ID)
					if len(o.Lines) != 2 {
						t.Errorf("order %s has %d lines, want 2", o.ID, len(o.Lines))
					}
				}
				return out
			}
			tests := []struct {
				before string
				limit  int
				want   []string
			}{
				{"", 10, []string{newOrder(bob, 12).ID, newOrder(bob, 11).ID, newOrder(bob, 10).ID, newOrder(bob, 2).ID}},
				{"", 2, []string{newOrder(bob, 12).ID, newOrder(bob, 11).ID}},
				{newOrder(bob, 11).ID, 2, []string{newOrder(bob, 10).ID, newOrder(bob, 2).ID}},
				{newOrder(bob, 2).ID, 2, nil},
			}
			for _, tt := range tests {
				got, err := s.OrdersByUser(ctx, bob, tt.before, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
					t.Errorf("OrdersByUser(before %q, limit %d) ids (-want +got):\n%s", tt.before, tt.limit, diff)
				}
			}
		})

		t.Run("pending orders", func(t *testing.T) {
			// Pending now: 1, 2 and 20 of the first tests, 10, 11, 12 of bob
			// (3 and 21 were refused, so absent). Deadlines are 30 s after
			// creation.
			tests := []struct {
				before time.Time
				after  string
				limit  int
				want   []int
			}{
				{t0.Add(11*time.Minute + 30*time.Second), "", 10, []int{1, 2, 10}},
				{t0.Add(11*time.Minute + 30*time.Second + time.Microsecond), "", 10, []int{1, 2, 10, 11}},
				{t0.Add(time.Hour), "", 2, []int{1, 2}},
				{t0.Add(time.Hour), newOrder(bob, 2).ID, 10, []int{10, 11, 12, 20}},
				{t0.Add(30 * time.Second), "", 10, nil},
			}
			for _, tt := range tests {
				got, err := s.PendingOrders(ctx, tt.before, tt.after, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, n := range tt.want {
					want = append(want, newOrder("", n).ID)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("PendingOrders(%v, %q, %d) (-want +got):\n%s", tt.before, tt.after, tt.limit, diff)
				}
			}
		})
	})
}
