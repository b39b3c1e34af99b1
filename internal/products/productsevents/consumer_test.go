package productsevents_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsevents"
)

func publish(t *testing.T, js jetstream.JetStream, m *nats.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish on %s: %v", m.Subject, err)
	}
}

// stockEvents decodes the events in the STOCK stream.
func stockEvents(t *testing.T, js jetstream.JetStream) []emitted {
	t.Helper()
	var out []emitted
	for _, m := range brokertest.Messages(t, js, broker.StreamStock) {
		e, err := broker.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatalf("STOCK message %d: %v", m.Sequence, err)
		}
		if e.Type != m.Subject {
			t.Errorf("event %s of type %s published on %s", e.ID, e.Type, m.Subject)
		}
		var d events.StockData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("STOCK message %d data: %v", m.Sequence, err)
		}
		out = append(out, emitted{Type: e.Type, Source: e.Source, Subject: e.Subject, Data: d})
	}
	return out
}

// The consumer end to end, with a real broker: orders' events published on
// ORDERS are applied and answered on STOCK through the outbox relay; poison
// goes to the dead-letter stream without holding up what follows it, and a
// copy of an event published after the broker's duplicate window (another
// Nats-Msg-Id, the same event id) changes nothing.
func TestConsumer(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB, svc *products.Service) {
		srv := brokertest.Start(t)
		_, js := brokertest.Connect(t, srv.ClientURL())
		log := brokertest.Logger(t)
		ctx, cancel := context.WithCancel(context.Background())
		relay := outbox.NewRelay(db, js, log)
		done := make(chan struct{})
		go func() {
			defer close(done)
			relay.Run(ctx)
		}()
		stop, err := productsevents.Start(ctx, js, svc, relay, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stop()
			cancel()
			<-done
		})

		p := create(t, svc, 10)
		order := newID()
		// Poison first: a body that is no event at all, then an event whose
		// data products cannot read.
		garbage := nats.NewMsg(events.OrderPlaced)
		garbage.Data = []byte("garbage")
		publish(t, js, garbage)
		bad := event(t, events.OrderPlaced, order, json.RawMessage(`{"order_id":5}`))
		publish(t, js, broker.Encode(bad))
		good := placed(t, order, events.Line{ProductID: p.ID, Quantity: 3})
		publish(t, js, broker.Encode(good))
		copied := broker.Encode(good)
		copied.Header.Set(broker.HeaderMsgID, good.ID+"-late-copy")
		publish(t, js, copied)

		reservedOnly := []emitted{{Type: events.StockReserved, Source: events.SourceProducts, Subject: order,
			Data: events.StockData{OrderID: order, Lines: []events.Line{{ProductID: p.ID, Quantity: 3}}}}}
		eventually(t, 15*time.Second, "stock.reserved on STOCK", func() bool { return len(stockEvents(t, js)) >= 1 })
		if diff := cmp.Diff(reservedOnly, stockEvents(t, js)); diff != "" {
			t.Errorf("STOCK (-want +got):\n%s", diff)
		}

		eventually(t, 15*time.Second, "two dead letters", func() bool {
			return len(brokertest.Messages(t, js, broker.StreamDLQ)) >= 2
		})
		type deadLetter struct{ Subject, Consumer, OrigSubject, MsgID string }
		var dead []deadLetter
		for _, m := range brokertest.Messages(t, js, broker.StreamDLQ) {
			dead = append(dead, deadLetter{m.Subject, m.Header.Get(broker.HeaderDLQConsumer), m.Header.Get(broker.HeaderDLQSubject), m.Header.Get(broker.HeaderDLQMsgID)})
			if m.Header.Get(broker.HeaderDLQReason) == "" {
				t.Errorf("dead letter %d has no reason", m.Sequence)
			}
		}
		dlq := broker.DLQSubject(broker.StreamOrders, events.ProductsOnOrders)
		want := []deadLetter{
			{dlq, events.ProductsOnOrders, events.OrderPlaced, ""},
			{dlq, events.ProductsOnOrders, events.OrderPlaced, bad.ID},
		}
		if diff := cmp.Diff(want, dead); diff != "" {
			t.Errorf("dead letters (-want +got):\n%s", diff)
		}

		// The rest of the saga: confirmed, then cancelled.
		publish(t, js, broker.Encode(orderEvent(t, events.OrderConfirmed, order)))
		publish(t, js, broker.Encode(orderEvent(t, events.OrderRejected, newID())))
		publish(t, js, broker.Encode(orderEvent(t, events.OrderCancelled, order)))
		eventually(t, 15*time.Second, "stock.released on STOCK", func() bool { return len(stockEvents(t, js)) >= 2 })
		// Everything on ORDERS was handled.
		eventually(t, 15*time.Second, "the consumer to catch up", func() bool {
			c, err := js.Consumer(context.Background(), broker.StreamOrders, events.ProductsOnOrders)
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return info.NumPending == 0 && info.NumAckPending == 0
		})
		wantAll := append(reservedOnly, emitted{Type: events.StockReleased, Source: events.SourceProducts, Subject: order,
			Data: events.StockData{OrderID: order, Lines: []events.Line{{ProductID: p.ID, Quantity: 3}}}})
		if diff := cmp.Diff(wantAll, stockEvents(t, js)); diff != "" {
			t.Errorf("STOCK (-want +got):\n%s", diff)
		}
		if got := levelOf(t, svc, p.ID); got != (level{10, 0, 0}) {
			t.Errorf("stock levels = %+v, want all 10 available", got)
		}
		if n, err := relay.Pending(context.Background()); err != nil || n != 0 {
			t.Errorf("outbox pending = %d, %v; want 0", n, err)
		}
	})
}

// The consumer's configuration: the durable of the contract, on ORDERS, only
// the events products acts on.
func TestConfig(t *testing.T) {
	want := broker.ConsumerConfig{
		Stream:         broker.StreamOrders,
		Durable:        events.ProductsOnOrders,
		FilterSubjects: []string{events.OrderPlaced, events.OrderConfirmed, events.OrderCancelled, events.OrderExpired},
	}
	if diff := cmp.Diff(want, productsevents.Config()); diff != "" {
		t.Errorf("Config() (-want +got):\n%s", diff)
	}
}
