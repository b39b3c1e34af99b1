// Package broker carries microshop's events over NATS JetStream: an embedded
// nats-server for running on one machine, a resilient client connection, the
// streams, the CloudEvents envelope of every event, and durable consumers with
// retries and a dead-letter stream.
//
// The package knows nothing of any service: services publish through the
// transactional outbox (internal/platform/outbox) and consume with Consume,
// recording what they processed in the outbox package's inbox. docs/events.md
// describes the conventions.
package broker

import (
	"errors"
	"log/slog"
)

// ErrPermanent marks a handler error that no retry can fix (a malformed payload,
// an event that breaks an invariant): Consume sends the message to the
// dead-letter stream at once. Wrap it, for example
// fmt.Errorf("orders: unknown order %s: %w", id, broker.ErrPermanent).
var ErrPermanent = errors.New("permanent failure")

// orDiscard returns log, or a logger that writes nothing when log is nil.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
