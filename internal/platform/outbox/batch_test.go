package outbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
)

// Events applied in a batch share its transaction: what each kept commits
// together, a failed one is undone alone (its savepoint), and a batch that
// fails keeps nothing, inbox entries included.
func TestBatch(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		fail     map[string]bool // events whose effect fails after writing
		batchErr error           // what the batch returns at the end
		want     map[string]int  // things per event after the batch
		seen     map[string]bool // inbox after the batch
	}{
		{"all applied", nil, nil,
			map[string]int{"a": 1, "b": 1, "c": 1}, map[string]bool{"a": true, "b": true, "c": true}},
		{"a failed event is undone alone", map[string]bool{"b": true}, nil,
			map[string]int{"a": 1, "b": 0, "c": 1}, map[string]bool{"a": true, "b": false, "c": true}},
		{"a failed batch keeps nothing", nil, errBoom,
			map[string]int{"a": 0, "b": 0, "c": 0}, map[string]bool{"a": false, "b": false, "c": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, db *sqldb.DB) {
				ctx := context.Background()
				handler := outbox.Idempotent(db, "batch", func(ctx context.Context, tx *sqldb.Tx, e broker.Event) error {
					if err := bump(ctx, tx, e.Subject); err != nil {
						return err
					}
					if tc.fail[e.Subject] {
						// A failed statement, which on PostgreSQL spoils the
						// transaction unless its savepoint is rolled back.
						if _, err := tx.ExecContext(ctx, `INSERT INTO no_such_table VALUES (1)`); err == nil {
							t.Error("insert into a missing table worked")
						}
						return errBoom
					}
					return nil
				})
				events := map[string]broker.Event{}
				err := outbox.Batch(ctx, db, func(ctx context.Context) error {
					for _, id := range []string{"a", "b", "c"} {
						events[id] = newEvent(t, "orders.placed", id, 1)
						err := handler(ctx, events[id])
						if (err != nil) != tc.fail[id] {
							t.Errorf("event %s: %v, want failure %v", id, err, tc.fail[id])
						}
					}
					return tc.batchErr
				})
				if !errors.Is(err, tc.batchErr) {
					t.Fatalf("Batch = %v, want %v", err, tc.batchErr)
				}
				for id, want := range tc.want {
					if got := things(t, db, id); got != want {
						t.Errorf("%s applied %d times, want %d", id, got, want)
					}
					if got := seen(t, db, "batch", events[id].ID, true); got != tc.seen[id] {
						t.Errorf("%s in the inbox: %v, want %v", id, got, tc.seen[id])
					}
				}
			})
		})
	}
}

// Inside a batch, an event delivered twice is applied once.
func TestBatchAppliesAnEventOnce(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		handler := outbox.Idempotent(db, "batch", func(ctx context.Context, tx *sqldb.Tx, e broker.Event) error {
			return bump(ctx, tx, e.Subject)
		})
		e := newEvent(t, "orders.placed", "a", 1)
		if err := outbox.Batch(ctx, db, func(ctx context.Context) error {
			return errors.Join(handler(ctx, e), handler(ctx, e))
		}); err != nil {
			t.Fatal(err)
		}
		if got := things(t, db, "a"); got != 1 {
			t.Errorf("applied %d times, want once", got)
		}
		if err := outbox.Batch(ctx, db, func(ctx context.Context) error {
			return outbox.Batch(ctx, db, func(context.Context) error { return nil })
		}); err == nil {
			t.Error("a nested batch worked")
		}
	})
}
