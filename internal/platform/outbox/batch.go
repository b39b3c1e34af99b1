package outbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/microshop/microshop/internal/platform/sqldb"
)

// A batch shares one transaction among the events a consumer applies
// together: one commit (one fsync on SQLite) for the lot instead of one each.

type batchKey struct{}

type batch struct {
	db *sqldb.DB
	tx *sqldb.Tx
}

// savepoint names each event's savepoint. One name serves them all: each is
// released or rolled back to before the next is taken (and a nested one would
// be the most recent of that name, which is the one ROLLBACK TO and RELEASE
// address).
const savepoint = "outbox_event"

// Batch runs fn in one transaction on db, with a context that makes InTx on
// db join that transaction (each call in a savepoint of its own) instead of
// beginning one. It commits when fn
// returns nil and rolls everything back otherwise. fn must apply its events
// one after the other (a transaction is not for concurrent use) and must not
// use db but through InTx, or it may wait for itself.
func Batch(ctx context.Context, db *sqldb.DB, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(batchKey{}).(*batch); ok {
		return errors.New("outbox: batches do not nest")
	}
	return db.InTx(ctx, func(tx *sqldb.Tx) error {
		return fn(context.WithValue(ctx, batchKey{}, &batch{db: db, tx: tx}))
	})
}

// InTx runs fn in a transaction on db: in a savepoint of the batch's
// transaction when ctx comes from Batch on db (fn's writes are undone if it
// fails, the batch's commit makes them durable), else in a transaction of its
// own, as db.InTx.
func InTx(ctx context.Context, db *sqldb.DB, fn func(tx *sqldb.Tx) error) error {
	b, ok := ctx.Value(batchKey{}).(*batch)
	if !ok || b.db != db {
		return db.InTx(ctx, fn)
	}
	if _, err := b.tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
		return fmt.Errorf("outbox: savepoint: %w", err)
	}
	if err := fn(b.tx); err != nil {
		// On PostgreSQL a failed statement spoils the transaction until it
		// is rolled back to the savepoint.
		if _, rerr := b.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); rerr != nil {
			return errors.Join(err, fmt.Errorf("outbox: roll back to savepoint: %w", rerr))
		}
		if _, rerr := b.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+savepoint); rerr != nil {
			return errors.Join(err, fmt.Errorf("outbox: release savepoint: %w", rerr))
		}
		return err
	}
	if _, err := b.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+savepoint); err != nil {
		return fmt.Errorf("outbox: release savepoint: %w", err)
	}
	return nil
}
