package ordersdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/products"
)

const (
	alice = "0190f000-0000-7000-8000-000000000001"
	bob   = "0190f000-0000-7000-8000-000000000002"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)

// newOrder returns a pending order of user with id number n (ids sort like n),
// created n minutes after t0, with two lines.
func newOrder(user string, n int) orders.Order {
	eur := func(a int64) products.Money { return products.Money{Amount: a, Currency: "EUR"} }
	at := t0.Add(time.Duration(n) * time.Minute)
	return orders.Order{
		ID: fmt.Sprintf("0190f000-0000-7000-8000-%012d", n), UserID: user, Status: orders.StatusPending,
		Lines: []orders.Line{
			{ProductID: "0190f000-0000-7000-8000-0000000000b2", Quantity: 2, UnitPrice: eur(250)},
			{ProductID: "0190f000-0000-7000-8000-0000000000b1", Quantity: 1, UnitPrice: eur(1000)},
		},
		Total: eur(1500), CreatedAt: at, UpdatedAt: at,
	}
}

func TestStore(t *testing.T) {
	sqldbtest.ForEach(t, "orders", ordersdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := ordersdb.New(db)
		mustCreate := func(t *testing.T, o orders.Order, key *orders.IdempotencyKey) {
			t.Helper()
			if err := s.CreateOrder(ctx, o, key); err != nil {
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
			err := s.CreateOrder(ctx, dup, &orders.IdempotencyKey{UserID: alice, Key: "k1", RequestHash: "h3", OrderID: dup.ID, CreatedAt: t0})
			if fault.KindOf(err) != fault.Conflict || fault.CodeOf(err) != orders.CodeKeyExists {
				t.Fatalf("CreateOrder with a used key: error = %v, want conflict %s", err, orders.CodeKeyExists)
			}
			if _, err := s.Order(ctx, dup.ID); !fault.Is(err, fault.NotFound) {
				t.Errorf("order of the refused create: error = %v, want not found", err)
			}
		})

		t.Run("unknown", func(t *testing.T) {
			if _, err := s.Order(ctx, "0190f000-0000-7000-8000-999999999999"); !fault.Is(err, fault.NotFound) {
				t.Errorf("Order(unknown) error = %v, want not found", err)
			}
			if _, err := s.IdempotencyKey(ctx, alice, "nope"); !fault.Is(err, fault.NotFound) {
				t.Errorf("IdempotencyKey(unknown) error = %v, want not found", err)
			}
			_, err := s.UpdateOrder(ctx, "0190f000-0000-7000-8000-999999999999", func(*orders.Order) error { return nil })
			if !fault.Is(err, fault.NotFound) {
				t.Errorf("UpdateOrder(unknown) error = %v, want not found", err)
			}
		})

		t.Run("update", func(t *testing.T) {
			o := newOrder(alice, 4)
			mustCreate(t, o, nil)
			later := t0.Add(time.Hour)
			got, err := s.UpdateOrder(ctx, o.ID, func(o *orders.Order) error {
				return o.Transition(orders.StatusRejected, "insufficient stock", later)
			})
			if err != nil {
				t.Fatal(err)
			}
			want := o
			want.Status, want.Reason, want.UpdatedAt = orders.StatusRejected, "insufficient stock", later
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("UpdateOrder() (-want +got):\n%s", diff)
			}
			// A refused change is not stored.
			_, err = s.UpdateOrder(ctx, o.ID, func(o *orders.Order) error {
				return o.Transition(orders.StatusConfirmed, "", later.Add(time.Hour))
			})
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
		})

		t.Run("concurrent updates apply one after the other", func(t *testing.T) {
			o := newOrder(alice, 5)
			mustCreate(t, o, nil)
			errs := make(chan error, 2)
			for _, status := range []string{orders.StatusConfirmed, orders.StatusRejected} {
				go func() {
					_, err := s.UpdateOrder(ctx, o.ID, func(o *orders.Order) error {
						time.Sleep(20 * time.Millisecond) // widen the window in which the other could read pending
						return o.Transition(status, "x", t0)
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
		})

		t.Run("delete pending cascades", func(t *testing.T) {
			o := newOrder(alice, 6)
			mustCreate(t, o, &orders.IdempotencyKey{UserID: alice, Key: "k6", RequestHash: "h", OrderID: o.ID, CreatedAt: t0})
			if err := s.DeletePending(ctx, o.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Order(ctx, o.ID); !fault.Is(err, fault.NotFound) {
				t.Errorf("Order after DeletePending: error = %v, want not found", err)
			}
			if _, err := s.IdempotencyKey(ctx, alice, "k6"); !fault.Is(err, fault.NotFound) {
				t.Errorf("IdempotencyKey after DeletePending: error = %v, want not found", err)
			}
			// The key can be used again.
			again := newOrder(alice, 7)
			mustCreate(t, again, &orders.IdempotencyKey{UserID: alice, Key: "k6", RequestHash: "h", OrderID: again.ID, CreatedAt: t0})
			// Finished orders are never deleted.
			if _, err := s.UpdateOrder(ctx, again.ID, func(o *orders.Order) error { return o.Transition(orders.StatusConfirmed, "", t0) }); err != nil {
				t.Fatal(err)
			}
			if err := s.DeletePending(ctx, again.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Order(ctx, again.ID); err != nil {
				t.Errorf("confirmed order after DeletePending: %v", err)
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
			// Pending now: 3 (refused, so absent), 10, 11, 12 of bob... and 1, 2 of the first tests.
			tests := []struct {
				before time.Time
				after  string
				limit  int
				want   []int
			}{
				{t0.Add(11 * time.Minute), "", 10, []int{1, 2, 10}},
				{t0.Add(11*time.Minute + time.Microsecond), "", 10, []int{1, 2, 10, 11}},
				{t0.Add(time.Hour), "", 2, []int{1, 2}},
				{t0.Add(time.Hour), newOrder(bob, 2).ID, 10, []int{10, 11, 12}},
				{t0, "", 10, nil},
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
