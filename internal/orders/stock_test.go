package orders_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb/ordersdbtest"
	"github.com/microshop/microshop/internal/orders/orderstest"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/sqldb"
)

// bring places an order and brings it to status the way the saga does.
func bring(t *testing.T, s *shop, status string) orders.Order {
	t.Helper()
	o := s.place(t, s.svc, line(s.mug, 1))
	switch status {
	case orders.StatusPending:
	case orders.StatusConfirmed:
		s.stock(t, events.StockReserved, o.ID, "")
	case orders.StatusRejected:
		s.stock(t, events.StockRejected, o.ID, "no mugs")
	case orders.StatusCancelled:
		if _, err := s.svc.Cancel(context.Background(), o.ID, orders.Viewer{UserID: s.ada.ID}); err != nil {
			t.Fatal(err)
		}
	case orders.StatusExpired:
		if expireAll(t, s) != 1 {
			t.Fatal("the order did not expire")
		}
	default:
		t.Fatalf("no way to %s", status)
	}
	o = s.order(t, o.ID)
	if o.Status != status {
		t.Fatalf("order is %s, want %s", o.Status, status)
	}
	return o
}

// TestHandleStockEvent checks every status against every stock event: only
// the life cycle's changes happen, each with its one event; everything else
// is acknowledged without a change.
func TestHandleStockEvent(t *testing.T) {
	type outcome struct {
		status, reason, emits string
		released              bool
	}
	tests := map[string]map[string]outcome{
		orders.StatusPending: {
			events.StockReserved: {orders.StatusConfirmed, "", events.OrderConfirmed, false},
			events.StockRejected: {orders.StatusRejected, "not enough mugs", events.OrderRejected, false},
			events.StockReleased: {orders.StatusPending, "", "", true},
		},
		orders.StatusConfirmed: {
			events.StockReserved: {orders.StatusConfirmed, "", "", false},
			events.StockRejected: {orders.StatusConfirmed, "", "", false},
			events.StockReleased: {orders.StatusConfirmed, "", "", true},
		},
		orders.StatusRejected: {
			events.StockReserved: {orders.StatusRejected, "no mugs", "", false},
			events.StockRejected: {orders.StatusRejected, "no mugs", "", false},
			events.StockReleased: {orders.StatusRejected, "no mugs", "", true},
		},
		orders.StatusExpired: {
			events.StockReserved: {orders.StatusExpired, orders.ExpiredReason, "", false},
			events.StockRejected: {orders.StatusExpired, orders.ExpiredReason, "", false},
			events.StockReleased: {orders.StatusExpired, orders.ExpiredReason, "", true},
		},
		orders.StatusCancelled: {
			events.StockReserved: {orders.StatusCancelled, orders.CancelledReason, "", false},
			events.StockRejected: {orders.StatusCancelled, orders.CancelledReason, "", false},
			events.StockReleased: {orders.StatusCancelled, orders.CancelledReason, "", true},
		},
	}
	for _, from := range orders.Statuses {
		for _, typ := range orders.StockSubjects {
			want := tests[from][typ]
			t.Run(typ+" on "+from, func(t *testing.T) {
				s := newShop(t)
				o := bring(t, s, from)
				outbox := ordersdbtest.Kinds(t, s.db)
				e := orderstest.StockEvent(t, typ, o.ID, "not enough mugs")
				// Delivered twice: the second changes nothing.
				for range 2 {
					if err := s.svc.HandleStockEvent(context.Background(), e); err != nil {
						t.Fatalf("HandleStockEvent() = %v", err)
					}
				}
				got := s.order(t, o.ID)
				if got.Status != want.status || got.Reason != want.reason || (got.ReleasedAt != nil) != want.released {
					t.Errorf("order = %s %q released %v, want %s %q released %v",
						got.Status, got.Reason, got.ReleasedAt != nil, want.status, want.reason, want.released)
				}
				wantOutbox := outbox
				if want.emits != "" {
					wantOutbox = append(wantOutbox, want.emits+" "+o.ID)
				}
				if diff := cmp.Diff(wantOutbox, ordersdbtest.Kinds(t, s.db)); diff != "" {
					t.Errorf("outbox (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestHandleStockEventInbox(t *testing.T) {
	s := newShop(t)
	o := s.place(t, s.svc, line(s.mug, 1))
	reserved := orderstest.StockEvent(t, events.StockReserved, o.ID, "")
	for range 3 {
		if err := s.svc.HandleStockEvent(context.Background(), reserved); err != nil {
			t.Fatal(err)
		}
	}
	if got := ordersdbtest.Inbox(t, s.db, events.OrdersOnStock); !cmp.Equal(got, []string{reserved.ID}) {
		t.Errorf("inbox = %v, want [%s]", got, reserved.ID)
	}
	// A change that was refused leaves no trace in the inbox either.
	late := orderstest.StockEvent(t, events.StockRejected, o.ID, "")
	if err := s.svc.HandleStockEvent(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	if got := ordersdbtest.Inbox(t, s.db, events.OrdersOnStock); len(got) != 1 {
		t.Errorf("inbox = %v, want only the reservation", got)
	}
}

func TestHandleStockEventIgnores(t *testing.T) {
	s := newShop(t)
	unknown := "0190f000-0000-7000-8000-000000000000"
	for _, e := range []broker.Event{
		orderstest.StockEvent(t, events.StockReserved, unknown, ""),
		orderstest.StockEvent(t, events.StockRejected, unknown, ""),
		orderstest.StockEvent(t, events.StockReleased, unknown, ""),
		orderstest.StockEvent(t, "stock.recounted", unknown, ""), // a type orders has no use for
	} {
		if err := s.svc.HandleStockEvent(context.Background(), e); err != nil {
			t.Errorf("HandleStockEvent(%s about an unknown order) = %v, want nil", e.Type, err)
		}
	}
	if got := ordersdbtest.Kinds(t, s.db); got != nil {
		t.Errorf("outbox = %v, want nothing", got)
	}
}

func TestHandleStockEventPoison(t *testing.T) {
	s := newShop(t)
	o := s.place(t, s.svc, line(s.mug, 1))
	v2 := orderstest.StockEvent(t, events.StockReserved, o.ID, "")
	v2.DataSchemaVersion = "2"
	tests := map[string]broker.Event{
		"order id of the wrong type": orderstest.RawEvent(t, events.StockReserved, o.ID, `{"order_id":5}`),
		"no order id":                orderstest.RawEvent(t, events.StockReserved, o.ID, `{}`),
		"order id not the subject":   orderstest.RawEvent(t, events.StockReserved, o.ID, `{"order_id":"0190f000-0000-7000-8000-000000000000"}`),
		"order id not an id":         orderstest.RawEvent(t, events.StockRejected, "x", `{"order_id":"x"}`),
		"unknown schema version":     v2,
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			if err := s.svc.HandleStockEvent(context.Background(), e); !errors.Is(err, broker.ErrPermanent) {
				t.Errorf("HandleStockEvent() = %v, want a permanent error", err)
			}
		})
	}
	if got := s.order(t, o.ID); got.Status != orders.StatusPending {
		t.Errorf("order = %s after poison, want pending", got.Status)
	}
}

func TestRejectionReason(t *testing.T) {
	tests := map[string]string{
		"":                       orders.RejectedReason,
		"  \n ":                  orders.RejectedReason,
		"short of Mug":           "short of Mug",
		"line\nbreak\x00here":    "line break here",
		strings.Repeat("é", 200): strings.Repeat("é", 128),
	}
	for in, want := range tests {
		s := newShop(t)
		o := s.place(t, s.svc, line(s.mug, 1))
		if got := s.stock(t, events.StockRejected, o.ID, in); got.Reason != want {
			t.Errorf("reason for %q = %q, want %q", in, got.Reason, want)
		}
	}
}

// HandleStockEvents applies a batch in one transaction with the outcome of
// applying its events one by one; a batch with a poison event keeps nothing.
func TestHandleStockEvents(t *testing.T) {
	for _, dialect := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			s := newShopOn(t, ordersdbtest.Open(t, dialect))
			a := s.place(t, s.svc, line(s.mug, 1))
			b := s.place(t, s.svc, line(s.mug, 1))
			c := s.place(t, s.svc, line(s.mug, 1))
			reservedA := orderstest.StockEvent(t, events.StockReserved, a.ID, "")
			rejectedB := orderstest.StockEvent(t, events.StockRejected, b.ID, "no mugs")
			// The poison batch first: nothing of it may be kept.
			poison := orderstest.RawEvent(t, events.StockReserved, c.ID, `{}`)
			if err := s.svc.HandleStockEvents(context.Background(), []broker.Event{reservedA, poison}); !errors.Is(err, broker.ErrPermanent) {
				t.Fatalf("HandleStockEvents(poison) = %v, want a permanent error", err)
			}
			if got := s.order(t, a.ID).Status; got != orders.StatusPending {
				t.Errorf("order a %s after a failed batch, want pending", got)
			}
			if got := ordersdbtest.Inbox(t, s.db, events.OrdersOnStock); len(got) != 0 {
				t.Errorf("inbox %v after a failed batch, want empty", got)
			}
			batch := []broker.Event{
				reservedA,
				rejectedB,
				reservedA, // delivered twice: applied once
				orderstest.StockEvent(t, events.StockRejected, a.ID, "late"), // does not apply: ignored, no trace
				orderstest.StockEvent(t, events.StockReserved, c.ID, ""),
			}
			if err := s.svc.HandleStockEvents(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]string{a.ID: orders.StatusConfirmed, b.ID: orders.StatusRejected, c.ID: orders.StatusConfirmed} {
				if got := s.order(t, id).Status; got != want {
					t.Errorf("order %s is %s, want %s", id, got, want)
				}
			}
			if got := ordersdbtest.Inbox(t, s.db, events.OrdersOnStock); len(got) != 3 {
				t.Errorf("inbox %v, want the three events that applied", got)
			}
		})
	}
}
