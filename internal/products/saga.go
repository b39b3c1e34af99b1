package products

import (
	"context"
	"fmt"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
)

// The products side of the checkout saga: each method applies one of orders'
// events (internal/events) in one transaction that also records the event id
// in the inbox of events.ProductsOnOrders and adds the answer, if any, to the
// outbox. A redelivered event (same id) changes nothing and emits nothing.
//
// Per order the stock goes
//
//	orders.placed     nothing     -> reserved (stock.reserved) or nothing (stock.rejected)
//	orders.confirmed  reserved    -> sold (no event)
//	orders.cancelled  reserved/sold -> available again, released for good (stock.released)
//	orders.expired    as orders.cancelled
//	orders.rejected   nothing to do
//
// Out of order: a release is final, so an orders.placed that arrives after
// the order's orders.cancelled or orders.expired is rejected with
// ReasonReleased and holds nothing. orders.confirmed only ever follows
// stock.reserved in a correct orders service; one that arrives when nothing
// is reserved (before orders.placed, or after the release) does nothing, and
// a later orders.placed reserves as usual (the units stay reserved, not sold,
// until the order is confirmed again or released). Both keep the stock
// accounted for: available + reserved + sold never changes but by an admin.

// OrderPlaced reserves the stock of all lines of the order, or none, and
// emits stock.reserved with the lines held, or stock.rejected with a reason:
// ReasonInsufficientStock with the shortages, ReasonUnknownProduct with the
// unknown products, ReasonReleased when the order was released already, or
// ReasonInvalidOrder when the order cannot be reserved as asked. It is
// idempotent by order id too: an order that holds stock gets stock.reserved
// with what it holds. eventID is the orders.placed event's id. An order id
// that cannot be the subject of an answer is an error wrapping
// broker.ErrPermanent.
func (s *Service) OrderPlaced(ctx context.Context, eventID string, d events.OrderPlacedData) error {
	lines := make([]Line, len(d.Lines))
	for i, l := range d.Lines {
		lines[i] = Line(l)
	}
	invalid := ValidReservation(d.OrderID, lines)
	return s.applyOnce(ctx, eventID, func(tx StockTx) error {
		answer := events.StockData{OrderID: d.OrderID}
		typ := events.StockRejected
		if invalid != nil {
			answer.Reason = ReasonInvalidOrder + ": " + invalid.Error()
		} else {
			r, err := tx.Reserve(ctx, d.OrderID, lines, s.timestamp())
			if err != nil {
				return err
			}
			switch r.Status {
			case Reserved:
				typ, answer.Lines = events.StockReserved, eventLines(r.Lines)
			default:
				answer.Reason = r.Reason
				for _, sh := range r.Shortages {
					answer.Shortages = append(answer.Shortages, events.Shortage(sh))
				}
			}
		}
		return emit(ctx, tx, typ, answer)
	})
}

// OrderConfirmed turns the stock reserved for the order into a sale. It emits
// nothing. When the order holds nothing reserved (already sold, released, or
// never reserved) it does nothing. An order id that is not a UUID is an error
// wrapping broker.ErrPermanent: no order can have it.
func (s *Service) OrderConfirmed(ctx context.Context, eventID string, d events.OrderData) error {
	if !ValidID(d.OrderID) {
		return fmt.Errorf("products: %s for order %q: %w", events.OrderConfirmed, d.OrderID, broker.ErrPermanent)
	}
	return s.applyOnce(ctx, eventID, func(tx StockTx) error {
		_, err := tx.Sell(ctx, d.OrderID, s.timestamp())
		return err
	})
}

// OrderCancelled releases what the order holds (see releaseOrder).
func (s *Service) OrderCancelled(ctx context.Context, eventID string, d events.OrderData) error {
	return s.releaseOrder(ctx, events.OrderCancelled, eventID, d)
}

// OrderExpired releases what the order holds (see releaseOrder).
func (s *Service) OrderExpired(ctx context.Context, eventID string, d events.OrderData) error {
	return s.releaseOrder(ctx, events.OrderExpired, eventID, d)
}

// releaseOrder gives back everything the order holds, reserved or sold, makes
// the release final (a later orders.placed for it is rejected) and emits
// stock.released with the lines given back: none when it held nothing, so
// that orders always gets an answer. An order id that is not a UUID is an
// error wrapping broker.ErrPermanent.
func (s *Service) releaseOrder(ctx context.Context, typ, eventID string, d events.OrderData) error {
	if !ValidID(d.OrderID) {
		return fmt.Errorf("products: %s for order %q: %w", typ, d.OrderID, broker.ErrPermanent)
	}
	return s.applyOnce(ctx, eventID, func(tx StockTx) error {
		released, err := tx.Release(ctx, d.OrderID, s.timestamp())
		if err != nil {
			return err
		}
		return emit(ctx, tx, events.StockReleased, events.StockData{OrderID: d.OrderID, Lines: eventLines(released)})
	})
}

// ApplyTogether runs fn, which applies several of orders' events with the
// methods above, in one transaction: each event's effect is kept or undone
// on its own (a savepoint), and all that were kept commit together when fn
// returns nil. It is for a consumer that applies a batch of events: one
// commit instead of one per event.
func (s *Service) ApplyTogether(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.store.Together(ctx, fn)
}

// applyOnce runs fn in a transaction that first records eventID in the inbox
// of events.ProductsOnOrders, unless the event was applied before.
func (s *Service) applyOnce(ctx context.Context, eventID string, fn func(tx StockTx) error) error {
	if eventID == "" {
		return fmt.Errorf("products: an event without an id: %w", broker.ErrPermanent)
	}
	return s.store.Atomically(ctx, func(tx StockTx) error {
		already, err := tx.Seen(ctx, events.ProductsOnOrders, eventID)
		if err != nil || already {
			return err
		}
		return fn(tx)
	})
}

// emit adds the products event typ about data's order to the outbox.
func emit(ctx context.Context, tx StockTx, typ string, data events.StockData) error {
	e, err := broker.NewEvent(events.SourceProducts, typ, data.OrderID, data)
	if err != nil {
		// Only an order id that is no valid subject gets here.
		return fmt.Errorf("products: %s for order %q: %w: %w", typ, data.OrderID, err, broker.ErrPermanent)
	}
	return tx.Emit(ctx, e)
}

func eventLines(lines []Line) []events.Line {
	if len(lines) == 0 {
		return nil
	}
	out := make([]events.Line, len(lines))
	for i, l := range lines {
		out[i] = events.Line(l)
	}
	return out
}
