package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/sqldb"
)

var errNoConsumer = errors.New("outbox: inbox needs a consumer name and an event id")

// Seen records in the caller's transaction that consumer has processed the
// event eventID, and reports whether it already had: then the caller skips
// the event's effect. Because the record commits or rolls back with the
// effect, an event is applied exactly once per consumer however often it is
// delivered. Two transactions seeing the same event at once are serialized by
// the database: one gets false, the other waits and gets true (or false, if
// the first rolled back).
func Seen(ctx context.Context, tx *sqldb.Tx, consumer, eventID string) (already bool, err error) {
	if consumer == "" || eventID == "" {
		return false, errNoConsumer
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO inbox (consumer, event_id, processed_at) VALUES (?, ?, ?)
		ON CONFLICT (consumer, event_id) DO NOTHING`, consumer, eventID, time.Now().UTC())
	if err != nil {
		return false, fmt.Errorf("outbox: record event %s in the inbox of %s: %w", eventID, consumer, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("outbox: inbox: %w", err)
	}
	return n == 0, nil
}

// Idempotent turns fn into a broker.Consume handler that applies each event
// at most once for consumer: it runs fn in a transaction that first records the
// event with Seen, and skips fn (acknowledging the event) when it was seen
// before. If fn fails, the transaction rolls back, inbox entry included, and
// the broker retries the event. fn may call Add to emit events in the same
// transaction (kick the relay after it returns). Inside Batch, fn runs in a
// savepoint of the batch's transaction.
func Idempotent(db *sqldb.DB, consumer string, fn func(ctx context.Context, tx *sqldb.Tx, e broker.Event) error) func(ctx context.Context, e broker.Event) error {
	return func(ctx context.Context, e broker.Event) error {
		return InTx(ctx, db, func(tx *sqldb.Tx) error {
			already, err := Seen(ctx, tx, consumer, e.ID)
			if err != nil || already {
				return err
			}
			return fn(ctx, tx, e)
		})
	}
}
