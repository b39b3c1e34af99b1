package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
)

// maxReasonLen bounds a reason taken from another service's event.
const maxReasonLen = 256

// StockSubjects are the event types of the STOCK stream that orders consumes.
var StockSubjects = []string{events.StockReserved, events.StockRejected, events.StockReleased}

// HandleStockEvent applies an event of products' STOCK stream to its order.
// It is the handler of the orders-stock consumer (events.OrdersOnStock):
//
//   - stock.reserved confirms a pending order and emits orders.confirmed;
//   - stock.rejected rejects a pending order, with the event's reason, and
//     emits orders.rejected;
//   - stock.released records when the order's stock was given back.
//
// Each is applied at most once: the event id is recorded in the consumer's
// inbox in the transaction that changes the order and adds the event it emits.
// An event that does not fit the order's state (a reservation that arrives
// after the order expired or was cancelled, for which products releases the
// stock on its own; a rejection after a confirmation) changes nothing, and
// neither does an event about an unknown order: both are logged and
// acknowledged. Malformed data, or a data schema version this code does not
// know, is an error wrapping broker.ErrPermanent: the event goes to the
// dead-letter stream.
func (s *Service) HandleStockEvent(ctx context.Context, e broker.Event) error {
	return s.handleStockEvent(ctx, e, func(f func()) { f() })
}

// HandleStockEvents applies several events of the STOCK stream, each as
// HandleStockEvent does, in one transaction: each event's effect is kept or
// undone on its own, and all that were kept commit together. An error of any
// event is returned (wrapped) and nothing is kept. It is the batch handler of
// the orders-stock consumer.
func (s *Service) HandleStockEvents(ctx context.Context, es []broker.Event) error {
	var done []func() // after the commit: kick the relay, wake watchers
	err := s.store.Together(ctx, func(ctx context.Context) error {
		for _, e := range es {
			if err := s.handleStockEvent(ctx, e, func(f func()) { done = append(done, f) }); err != nil {
				return fmt.Errorf("orders: event %s: %w", e.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range done {
		f()
	}
	return nil
}

// handleStockEvent is HandleStockEvent, which calls afterCommit with what is
// to be done once the event's effect is committed.
func (s *Service) handleStockEvent(ctx context.Context, e broker.Event, afterCommit func(func())) error {
	var tr Trigger
	switch e.Type {
	case events.StockReserved:
		tr = TriggerReserved
	case events.StockRejected:
		tr = TriggerRejected
	case events.StockReleased:
		tr = TriggerReleased
	default:
		s.log.DebugContext(ctx, "stock event of no interest to orders, ignored", "event_id", e.ID, "event_type", e.Type)
		return nil
	}
	if e.DataSchemaVersion != broker.DefaultSchemaVersion {
		return fmt.Errorf("orders: %s has data schema version %q, want %s: %w", e.Type, e.DataSchemaVersion, broker.DefaultSchemaVersion, broker.ErrPermanent)
	}
	var d events.StockData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return fmt.Errorf("orders: %s data: %v: %w", e.Type, err, broker.ErrPermanent)
	}
	if !ValidID(d.OrderID) || d.OrderID != e.Subject {
		return fmt.Errorf("orders: %s is about order %q but its subject is %q: %w", e.Type, d.OrderID, e.Subject, broker.ErrPermanent)
	}
	reason := func(Order) string { return rejectionReason(d) }
	log := s.log.With("event_id", e.ID, "event_type", e.Type, "order_id", d.OrderID)
	var from string
	o, applied, err := s.store.ApplyEvent(ctx, events.OrdersOnStock, e.ID, d.OrderID, s.change(tr, reason, nil, &from))
	switch {
	case fault.Is(err, fault.NotFound):
		log.WarnContext(ctx, "stock event for an unknown order, ignored")
		return nil
	case fault.CodeOf(err) == CodeIllegalTransition:
		log.InfoContext(ctx, "stock event does not apply to the order any more, ignored", "reason", err.Error())
		return nil
	case err != nil:
		return err
	case !applied:
		log.DebugContext(ctx, "stock event applied before, skipped")
		return nil
	}
	afterCommit(func() { s.committed(o.ID, o.Status != from, o.Status != from) })
	return nil
}

// rejectionReason is the reason a stock.rejected event gives, made safe to
// store and show: printable, and at most maxReasonLen bytes.
func rejectionReason(d events.StockData) string {
	r := strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(d.Reason, ""))
	r = strings.TrimSpace(r)
	if len(r) > maxReasonLen {
		cut := maxReasonLen
		for cut > 0 && !utf8.RuneStart(r[cut]) {
			cut--
		}
		r = r[:cut]
	}
	if r == "" {
		return RejectedReason
	}
	return r
}
