// Package productsevents connects the products service to the checkout saga:
// a durable consumer of orders' events (the ORDERS stream) that hands each to
// the products.Service method that applies it. The answers (stock.reserved,
// stock.rejected, stock.released) are written to the service's outbox by
// those methods and published by its outbox.Relay, which the wiring runs.
package productsevents

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/products"
)

// Subjects are the event types the consumer reads from the ORDERS stream.
// orders.rejected is not among them: products has nothing to do for it.
var Subjects = []string{events.OrderPlaced, events.OrderConfirmed, events.OrderCancelled, events.OrderExpired}

// Config is the consumer's configuration: the durable events.ProductsOnOrders
// on the ORDERS stream, filtered to Subjects, with the broker's defaults
// (batches of up to broker.DefaultBatchSize events, in stream order).
func Config() broker.ConsumerConfig {
	return broker.ConsumerConfig{
		Stream:         broker.StreamOrders,
		Durable:        events.ProductsOnOrders,
		FilterSubjects: Subjects,
	}
}

// Start runs the consumer of orders' events for svc until ctx is done or stop
// is called (stop waits for the event in progress). After each event it
// applied it kicks relay, so that the answer is published at once; relay may
// be nil, when the relay's polling is soon enough. js must have the streams
// (broker.EnsureStreams) and svc's database the outbox tables
// (outbox.Migrations).
func Start(ctx context.Context, js jetstream.JetStream, svc *products.Service, relay *outbox.Relay, log *slog.Logger) (stop func(), err error) {
	handle, handleBatch := Handler(svc), BatchHandler(svc)
	if relay != nil {
		inner, innerBatch := handle, handleBatch
		handle = func(ctx context.Context, e broker.Event) error {
			err := inner(ctx, e)
			if err == nil {
				relay.Kick()
			}
			return err
		}
		handleBatch = func(ctx context.Context, es []broker.Event) error {
			err := innerBatch(ctx, es)
			if err == nil {
				relay.Kick()
			}
			return err
		}
	}
	return broker.ConsumeBatch(ctx, js, Config(), handleBatch, handle, log)
}

// BatchHandler returns the broker.ConsumeBatch handler that applies several
// of orders' events to svc, as Handler does each, in one transaction
// (Service.ApplyTogether). Any event's error fails the whole batch, which
// the consumer then applies event by event with Handler.
func BatchHandler(svc *products.Service) func(ctx context.Context, es []broker.Event) error {
	handle := Handler(svc)
	return func(ctx context.Context, es []broker.Event) error {
		return svc.ApplyTogether(ctx, func(ctx context.Context) error {
			for _, e := range es {
				if err := handle(ctx, e); err != nil {
					return fmt.Errorf("productsevents: event %s: %w", e.ID, err)
				}
			}
			return nil
		})
	}
}

// Handler returns the broker.Consume handler that applies one of orders'
// events to svc: it decodes the payload and calls OrderPlaced,
// OrderConfirmed, OrderCancelled or OrderExpired. orders.rejected and event
// types it does not know are acknowledged and ignored. A payload that cannot
// be decoded, whose order id is not the event's subject, or of a schema
// version other than 1 is an error wrapping broker.ErrPermanent: the event
// goes to the dead-letter stream.
func Handler(svc *products.Service) func(ctx context.Context, e broker.Event) error {
	return func(ctx context.Context, e broker.Event) error {
		switch e.Type {
		case events.OrderPlaced:
			var d events.OrderPlacedData
			if err := decode(e, &d, &d.OrderID); err != nil {
				return err
			}
			return svc.OrderPlaced(ctx, e.ID, d)
		case events.OrderConfirmed, events.OrderCancelled, events.OrderExpired:
			var d events.OrderData
			if err := decode(e, &d, &d.OrderID); err != nil {
				return err
			}
			switch e.Type {
			case events.OrderConfirmed:
				return svc.OrderConfirmed(ctx, e.ID, d)
			case events.OrderCancelled:
				return svc.OrderCancelled(ctx, e.ID, d)
			default:
				return svc.OrderExpired(ctx, e.ID, d)
			}
		default:
			return nil // orders.rejected, or news that are none of products' business
		}
	}
}

// decode reads e's data into v, whose order id is at orderID, and checks that
// the order id is the event's subject.
func decode(e broker.Event, v any, orderID *string) error {
	if e.DataSchemaVersion != broker.DefaultSchemaVersion {
		return fmt.Errorf("productsevents: %s data schema version %q is not supported: %w", e.Type, e.DataSchemaVersion, broker.ErrPermanent)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("productsevents: decode %s data: %v: %w", e.Type, err, broker.ErrPermanent)
	}
	if *orderID != e.Subject {
		return fmt.Errorf("productsevents: %s for order %q has subject %q: %w", e.Type, *orderID, e.Subject, broker.ErrPermanent)
	}
	return nil
}
