package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The streams: one per owning service, plus the dead-letter stream.
const (
	StreamOrders   = "ORDERS"
	SubjectsOrders = "orders.>"
	StreamStock    = "STOCK"
	SubjectsStock  = "stock.>"
	StreamDLQ      = "DLQ"
	SubjectsDLQ    = "dlq.>"
)

// Stream settings.
const (
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id: a
	// second publish of the same event id within it is dropped.
	DuplicateWindow = 2 * time.Minute
	// EventRetention is how long events are kept in the service streams.
	EventRetention = 7 * 24 * time.Hour
	// DLQRetention is how long dead letters are kept for inspection.
	DLQRetention = 30 * 24 * time.Hour
)

// StreamConfigs returns the configuration of every stream with the given
// number of replicas (1 for the embedded server, 3 in production).
func StreamConfigs(replicas int) []jetstream.StreamConfig {
	stream := func(name, subjects, desc string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subjects},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      maxAge,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Duplicates:  DuplicateWindow,
		}
	}
	return []jetstream.StreamConfig{
		stream(StreamOrders, SubjectsOrders, "events of the orders service", EventRetention),
		stream(StreamStock, SubjectsStock, "events of the products service about stock", EventRetention),
		stream(StreamDLQ, SubjectsDLQ, "messages that consumers gave up on, with the reason", DLQRetention),
	}
}

// EnsureStreams creates the streams, or updates them to the configuration of
// StreamConfigs. It is idempotent: every service calls it at start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		return fmt.Errorf("broker: replicas must be at least 1, not %d", replicas)
	}
	for _, cfg := range StreamConfigs(replicas) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("broker: stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// StreamFor returns the service stream that stores events of type typ, or
// false when no service stream does (the dead-letter stream is not one).
func StreamFor(typ string) (string, bool) {
	for _, cfg := range StreamConfigs(1) {
		if cfg.Name == StreamDLQ {
			continue
		}
		for _, subj := range cfg.Subjects {
			if prefix, ok := strings.CutSuffix(subj, ">"); ok && strings.HasPrefix(typ, prefix) && len(typ) > len(prefix) {
				return cfg.Name, true
			}
		}
	}
	return "", false
}

// DLQSubject is the subject under which consumer durable of stream files its
// dead letters: dlq.<stream>.<durable>.
func DLQSubject(stream, durable string) string {
	return "dlq." + stream + "." + durable
}
