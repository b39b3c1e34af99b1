package ordersevents_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordersdb/ordersdbtest"
	"github.com/microshop/microshop/internal/orders/ordersevents"
	"github.com/microshop/microshop/internal/orders/orderstest"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

// world is the orders service wired to an embedded broker as the system
// wires it: the outbox relay kicked after each commit, and the consumer of
// the STOCK stream. Products is played by the test, publishing stock events.
type world struct {
	db    *sqldb.DB
	js    jetstream.JetStream
	svc   *orders.Service
	quick *orders.Service // a replica whose orders expire at once
	ada   users.User
	mug   products.Product
}

func newWorld(t *testing.T, db *sqldb.DB) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	log := brokertest.Logger(t)
	dir := users.NewService(usersdb.New(sqldbtest.Open(t, sqldb.SQLite, "users", usersdb.Migrations())), logging.Discard())
	cat := orderstest.NewCatalog()
	relay := outbox.NewRelay(db, js, log)
	store := ordersdb.New(db)
	w := &world{
		db:    db,
		js:    js,
		svc:   orders.NewService(store, dir, cat, log, orders.WithKick(relay.Kick)),
		quick: orders.NewService(store, dir, cat, log, orders.WithKick(relay.Kick), orders.WithCheckoutTimeout(time.Millisecond)),
		mug:   cat.Add("MUG-1", "Mug", products.Money{Amount: 1490, Currency: "EUR"}, 10),
	}
	var err error
	if w.ada, err = dir.Create(ctx, users.NewUser{Name: "Ada", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	stop, err := ordersevents.RunConsumer(ctx, js, w.svc, log)
	if err != nil {
		t.Fatalf("RunConsumer: %v", err)
	}
	t.Cleanup(func() {
		stop()
		cancel()
		<-done
	})
	return w
}

func (w *world) place(t *testing.T, svc *orders.Service) orders.Order {
	t.Helper()
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{UserID: w.ada.ID, Role: auth.RoleCustomer})
	o, _, err := svc.Place(ctx, orders.PlaceRequest{UserID: w.ada.ID, Lines: []orders.LineRequest{{ProductID: w.mug.ID, Quantity: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (w *world) order(t *testing.T, id string) orders.Order {
	t.Helper()
	o, err := w.svc.Order(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// publish publishes m on the STOCK stream, as products would.
func (w *world) publish(t *testing.T, m *nats.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(ctx, m, jetstream.WithExpectStream(broker.StreamStock)); err != nil {
		t.Fatalf("publish %s: %v", m.Subject, err)
	}
}

func (w *world) stock(t *testing.T, typ, orderID, reason string) broker.Event {
	t.Helper()
	e := orderstest.StockEvent(t, typ, orderID, reason)
	w.publish(t, broker.Encode(e))
	return e
}

// settle waits until the consumer has settled every message of the STOCK
// stream (acknowledged or dead-lettered).
func (w *world) settle(t *testing.T) {
	t.Helper()
	eventually(t, "the consumer settles the STOCK stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := w.js.Stream(ctx, broker.StreamStock)
		if err != nil {
			t.Fatal(err)
		}
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.js.Consumer(ctx, broker.StreamStock, events.OrdersOnStock)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq
	})
}

// published returns the "type subject" of every event on the ORDERS stream.
func (w *world) published(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range brokertest.Messages(t, w.js, broker.StreamOrders) {
		out = append(out, m.Header.Get(broker.HeaderType)+" "+m.Header.Get(broker.HeaderSubject))
	}
	return out
}

// emitted returns the "type subject" of the outbox's events about the order.
func (w *world) emitted(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, e := range ordersdbtest.Outbox(t, w.db) {
		if e.Subject == id {
			out = append(out, e.Type+" "+e.Subject)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConsumerConfig(t *testing.T) {
	cfg := ordersevents.ConsumerConfig()
	want := broker.ConsumerConfig{Stream: broker.StreamStock, Durable: events.OrdersOnStock,
		FilterSubjects: []string{events.StockReserved, events.StockRejected, events.StockReleased}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("ConsumerConfig() (-want +got):\n%s", diff)
	}
}

// TestCheckout runs the saga's orders side over the broker: the order is
// published as placed, products' answer confirms or rejects it, and the
// outcome is published in turn.
func TestCheckout(t *testing.T) {
	ordersdbtest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		w := newWorld(t, db)

		t.Run("reserved confirms", func(t *testing.T) {
			o := w.place(t, w.svc)
			eventually(t, "orders.placed is published", func() bool {
				return cmp.Equal(w.published(t), []string{events.OrderPlaced + " " + o.ID})
			})
			m := brokertest.Messages(t, w.js, broker.StreamOrders)[0]
			var placed events.OrderPlacedData
			if err := json.Unmarshal(m.Data, &placed); err != nil || placed.OrderID != o.ID || placed.UserID != w.ada.ID ||
				!placed.Deadline.Equal(o.Deadline) || !cmp.Equal(placed.Lines, []events.Line{{ProductID: w.mug.ID, Quantity: 2}}) {
				t.Errorf("orders.placed data = %s (%v)", m.Data, err)
			}
			w.stock(t, events.StockReserved, o.ID, "")
			eventually(t, "the order is confirmed", func() bool { return w.order(t, o.ID).Status == orders.StatusConfirmed })
			want := []string{events.OrderPlaced + " " + o.ID, events.OrderConfirmed + " " + o.ID}
			if diff := cmp.Diff(want, w.emitted(t, o.ID)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
			eventually(t, "orders.confirmed is published", func() bool { return cmp.Equal(w.published(t), want) })
		})

		t.Run("rejected rejects", func(t *testing.T) {
			o := w.place(t, w.svc)
			w.stock(t, events.StockRejected, o.ID, "insufficient stock: Mug")
			eventually(t, "the order is rejected", func() bool { return w.order(t, o.ID).Status == orders.StatusRejected })
			if got := w.order(t, o.ID); got.Reason != "insufficient stock: Mug" {
				t.Errorf("reason = %q, want the event's", got.Reason)
			}
			want := []string{events.OrderPlaced + " " + o.ID, events.OrderRejected + " " + o.ID}
			if diff := cmp.Diff(want, w.emitted(t, o.ID)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
		})

		t.Run("duplicate delivery has one effect", func(t *testing.T) {
			o := w.place(t, w.svc)
			e := w.stock(t, events.StockReserved, o.ID, "")
			// The same event again, stored as another message (as a copy
			// published after the duplicate window would be).
			again := broker.Encode(e)
			again.Header.Set(broker.HeaderMsgID, e.ID+"-again")
			w.publish(t, again)
			w.settle(t)
			if got := w.order(t, o.ID); got.Status != orders.StatusConfirmed {
				t.Errorf("order = %s, want confirmed", got.Status)
			}
			want := []string{events.OrderPlaced + " " + o.ID, events.OrderConfirmed + " " + o.ID}
			if diff := cmp.Diff(want, w.emitted(t, o.ID)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
			n := 0
			for _, id := range ordersdbtest.Inbox(t, w.db, events.OrdersOnStock) {
				if id == e.ID {
					n++
				}
			}
			if n != 1 {
				t.Errorf("inbox holds the event %d times, want 1", n)
			}
		})

		t.Run("reservation after expiry changes nothing", func(t *testing.T) {
			o := w.place(t, w.quick)
			time.Sleep(5 * time.Millisecond)
			if n, err := w.svc.ExpirePending(context.Background()); n != 1 || err != nil {
				t.Fatalf("ExpirePending() = %d, %v; want 1", n, err)
			}
			w.stock(t, events.StockReserved, o.ID, "")
			w.settle(t)
			if got := w.order(t, o.ID); got.Status != orders.StatusExpired {
				t.Errorf("order = %s, want expired", got.Status)
			}
			// Products releases the late reservation on orders.expired, and says so.
			w.stock(t, events.StockReleased, o.ID, "")
			eventually(t, "the release is recorded", func() bool { return w.order(t, o.ID).ReleasedAt != nil })
			if got := w.order(t, o.ID); got.Status != orders.StatusExpired {
				t.Errorf("order = %s after the release, want expired", got.Status)
			}
			want := []string{events.OrderPlaced + " " + o.ID, events.OrderExpired + " " + o.ID}
			if diff := cmp.Diff(want, w.emitted(t, o.ID)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
		})

		t.Run("rejection after confirmation changes nothing", func(t *testing.T) {
			o := w.place(t, w.svc)
			w.stock(t, events.StockReserved, o.ID, "")
			w.stock(t, events.StockRejected, o.ID, "too late")
			w.settle(t)
			if got := w.order(t, o.ID); got.Status != orders.StatusConfirmed || got.Reason != "" {
				t.Errorf("order = %s %q, want confirmed", got.Status, got.Reason)
			}
			want := []string{events.OrderPlaced + " " + o.ID, events.OrderConfirmed + " " + o.ID}
			if diff := cmp.Diff(want, w.emitted(t, o.ID)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
		})

		t.Run("unknown order is ignored", func(t *testing.T) {
			before := len(ordersdbtest.Outbox(t, w.db))
			w.stock(t, events.StockReserved, "0190f000-0000-7000-8000-000000000000", "")
			w.settle(t)
			if n := len(brokertest.Messages(t, w.js, broker.StreamDLQ)); n != 0 {
				t.Errorf("dead letters = %d, want 0", n)
			}
			if after := len(ordersdbtest.Outbox(t, w.db)); after != before {
				t.Errorf("outbox grew from %d to %d events", before, after)
			}
		})

		t.Run("poison goes to the dead-letter stream", func(t *testing.T) {
			o := w.place(t, w.svc)
			w.publish(t, broker.Encode(orderstest.RawEvent(t, events.StockReserved, o.ID, `{"order_id":42}`)))
			w.publish(t, &nats.Msg{Subject: events.StockReserved, Data: []byte("not an event")})
			// The stream goes on after them.
			w.stock(t, events.StockReserved, o.ID, "")
			eventually(t, "the order is confirmed", func() bool { return w.order(t, o.ID).Status == orders.StatusConfirmed })
			w.settle(t)
			dl := brokertest.Messages(t, w.js, broker.StreamDLQ)
			if len(dl) != 2 {
				t.Fatalf("dead letters = %d, want 2", len(dl))
			}
			for _, m := range dl {
				if m.Subject != broker.DLQSubject(broker.StreamStock, events.OrdersOnStock) || m.Header.Get(broker.HeaderDLQReason) == "" {
					t.Errorf("dead letter on %s, reason %q", m.Subject, m.Header.Get(broker.HeaderDLQReason))
				}
			}
		})
	})
}
