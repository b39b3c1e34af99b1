package orders_test

import (
	"context"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/users"
)

// next returns the next order from ch, failing after a while.
func next(t *testing.T, ch <-chan orders.Order) (orders.Order, bool) {
	t.Helper()
	select {
	case o, ok := <-ch:
		return o, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no change came")
		return orders.Order{}, false
	}
}

func wantStatus(t *testing.T, ch <-chan orders.Order, status string) {
	t.Helper()
	if o, ok := next(t, ch); !ok || o.Status != status {
		t.Fatalf("watched order = %s (open %v), want %s", o.Status, ok, status)
	}
}

func wantClosed(t *testing.T, ch <-chan orders.Order) {
	t.Helper()
	if o, ok := next(t, ch); ok {
		t.Fatalf("watched order = %s, want the channel closed", o.Status)
	}
}

// TestWatchNotified follows an order through changes made by the same
// service: they arrive without polling.
func TestWatchNotified(t *testing.T) {
	s := newShop(t)
	orders.SetWatchPoll(s.svc, time.Hour) // only notifications can wake the watcher
	o := s.place(t, s.svc, line(s.mug, 1))
	ch, err := s.svc.Watch(context.Background(), o.ID, orders.Viewer{UserID: s.ada.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ch, orders.StatusPending)
	s.stock(t, events.StockReserved, o.ID, "")
	wantStatus(t, ch, orders.StatusConfirmed)
	s.stock(t, events.StockReleased, o.ID, "") // not a change of status
	if _, err := s.svc.Cancel(context.Background(), o.ID, orders.Viewer{UserID: s.ada.ID}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ch, orders.StatusCancelled)
	wantClosed(t, ch)
}

// TestWatchPolls follows an order changed by another replica, which cannot
// notify this one: polling finds the change.
func TestWatchPolls(t *testing.T) {
	s := newShop(t)
	watcher := s.with(s.users, s.catalog)
	orders.SetWatchPoll(watcher, 20*time.Millisecond)
	o := s.place(t, s.svc, line(s.mug, 1))
	ch, err := watcher.Watch(context.Background(), o.ID, orders.Viewer{UserID: s.ada.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ch, orders.StatusPending)
	s.stock(t, events.StockRejected, o.ID, "no mugs") // through s.svc, the other replica
	wantStatus(t, ch, orders.StatusRejected)
	wantClosed(t, ch)
}

func TestWatchFinalOrder(t *testing.T) {
	s := newShop(t)
	o := bring(t, s, orders.StatusExpired)
	ch, err := s.svc.Watch(context.Background(), o.ID, orders.Viewer{UserID: s.ada.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ch, orders.StatusExpired)
	wantClosed(t, ch)
}

func TestWatchEndsWithContext(t *testing.T) {
	s := newShop(t)
	o := s.place(t, s.svc, line(s.mug, 1))
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.svc.Watch(ctx, o.ID, orders.Viewer{UserID: s.ada.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, ch, orders.StatusPending)
	cancel()
	wantClosed(t, ch)
}

func TestWatchViewers(t *testing.T) {
	s := newShop(t)
	bob, err := s.users.Create(context.Background(), users.NewUser{Name: "Bob", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	o := s.place(t, s.svc, line(s.mug, 1))
	for name, v := range map[string]orders.Viewer{"another customer": {UserID: bob.ID}, "nobody": {}} {
		if _, err := s.svc.Watch(context.Background(), o.ID, v); !fault.Is(err, fault.NotFound) {
			t.Errorf("%s: Watch() error = %v, want not found", name, err)
		}
	}
	for _, id := range []string{"0190f000-0000-7000-8000-000000000000", "nope"} {
		if _, err := s.svc.Watch(context.Background(), id, orders.Viewer{UserID: s.ada.ID}); !fault.Is(err, fault.NotFound) {
			t.Errorf("Watch(%q) error = %v, want not found", id, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.svc.Watch(ctx, o.ID, orders.Viewer{UserID: "0190f000-0000-7000-8000-00000000ad00", Admin: true})
	if err != nil {
		t.Fatalf("admin: Watch() error = %v", err)
	}
	wantStatus(t, ch, orders.StatusPending)
}
