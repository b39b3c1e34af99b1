// Package ordersevents connects the orders service to the event broker: it
// consumes products' STOCK stream and hands each event to
// orders.Service.HandleStockEvent. The service publishes its own events
// through the transactional outbox (outbox.Relay, started by the wiring).
package ordersevents

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/broker"
)

// ConsumerConfig is the configuration of the orders-stock consumer: the
// STOCK stream's reserved, rejected and released events, with the broker's
// defaults for everything else (batches of up to broker.DefaultBatchSize
// events, applied in the stream's order).
func ConsumerConfig() broker.ConsumerConfig {
	return broker.ConsumerConfig{
		Stream:         broker.StreamStock,
		Durable:        events.OrdersOnStock,
		FilterSubjects: append([]string(nil), orders.StockSubjects...),
	}
}

// RunConsumer starts the orders-stock consumer, which applies products'
// stock events to svc's orders (in batches, Service.HandleStockEvents, one
// by one after a batch failed), and returns the function that stops it (and
// waits for the event in progress). Every replica of the service runs one:
// they share the durable consumer, so each event is handled by one of them.
// The streams must exist (broker.EnsureStreams). A nil log discards.
func RunConsumer(ctx context.Context, js jetstream.JetStream, svc *orders.Service, log *slog.Logger) (stop func(), err error) {
	return broker.ConsumeBatch(ctx, js, ConsumerConfig(), svc.HandleStockEvents, svc.HandleStockEvent, log)
}
