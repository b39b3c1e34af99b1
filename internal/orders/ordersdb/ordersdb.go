// Package ordersdb stores orders in SQL (SQLite or PostgreSQL), with the
// transactional outbox of the events that announce their changes and the
// inbox of the events the service consumed (internal/platform/outbox).
package ordersdb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the orders service's own migrations, one directory per
// dialect. The store also needs the outbox's (outbox.Migrations); Migrate
// applies both.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Migrate applies the orders service's migrations, then the outbox's.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	if err := sqldb.Migrate(ctx, db, Migrations()); err != nil {
		return err
	}
	return sqldb.Migrate(ctx, db, outbox.Migrations())
}

// Store implements orders.Store.
type Store struct{ db *sqldb.DB }

// New returns a Store over db, which must be migrated with Migrate.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

var _ orders.Store = (*Store)(nil)

// selectOrders reads orders joined with their lines, so that any number of
// orders takes one query; scanOrders groups the rows back.
const selectOrders = `SELECT o.id, o.user_id, o.status, o.reason, o.total_amount, o.currency,
	o.deadline, o.released_at, o.created_at, o.updated_at, l.product_id, l.quantity, l.unit_price
	FROM `

// CreateOrder inserts o, its lines, key (when not nil) and the events (in the
// outbox) in one transaction. A key already stored for the user is a
// fault.Conflict error with code orders.CodeKeyExists.
func (s *Store) CreateOrder(ctx context.Context, o orders.Order, key *orders.IdempotencyKey, events []broker.Event) error {
	if len(o.Lines) == 0 {
		return errors.New("ordersdb: insert order: an order needs at least one line")
	}
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO orders (id, user_id, status, reason, total_amount, currency, deadline, released_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.UserID, o.Status, o.Reason, o.Total.Amount, o.Total.Currency, o.Deadline.UTC(), nullTime(o.ReleasedAt),
			o.CreatedAt.UTC(), o.UpdatedAt.UTC())
		if err != nil {
			return fmt.Errorf("ordersdb: insert order: %w", err)
		}
		for i, l := range o.Lines {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price) VALUES (?, ?, ?, ?, ?)`,
				o.ID, i, l.ProductID, l.Quantity, l.UnitPrice.Amount)
			if err != nil {
				return fmt.Errorf("ordersdb: insert order line: %w", err)
			}
		}
		if key != nil {
			_, err = tx.ExecContext(ctx,
				`INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) VALUES (?, ?, ?, ?, ?)`,
				key.UserID, key.Key, key.RequestHash, key.OrderID, key.CreatedAt.UTC())
			if sqldb.IsUniqueViolation(err) {
				return fault.New(fault.Conflict, "this Idempotency-Key is already in use").WithCode(orders.CodeKeyExists)
			}
			if err != nil {
				return fmt.Errorf("ordersdb: insert idempotency key: %w", err)
			}
		}
		return addEvents(ctx, tx, events)
	})
}

// addEvents adds events to the outbox in tx.
func addEvents(ctx context.Context, tx *sqldb.Tx, events []broker.Event) error {
	for _, e := range events {
		if err := outbox.Add(ctx, tx, e); err != nil {
			return fmt.Errorf("ordersdb: %w", err)
		}
	}
	return nil
}

// nullTime is t in UTC as a query argument, or NULL.
func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// Order returns the order with id, or a fault.NotFound error.
func (s *Store) Order(ctx context.Context, id string) (orders.Order, error) {
	return s.order(ctx, s.db, id, "")
}

// order reads one order; suffix ends the query (to lock the row).
func (s *Store) order(ctx context.Context, q sqldb.Querier, id, suffix string) (orders.Order, error) {
	rows, err := q.QueryContext(ctx,
		selectOrders+`orders o JOIN order_lines l ON l.order_id = o.id WHERE o.id = ? ORDER BY l.line_no`+suffix, id)
	if err != nil {
		return orders.Order{}, fmt.Errorf("ordersdb: get order: %w", err)
	}
	list, err := scanOrders(rows)
	if err != nil {
		return orders.Order{}, fmt.Errorf("ordersdb: get order: %w", err)
	}
	if len(list) == 0 {
		return orders.Order{}, orders.OrderNotFound()
	}
	return list[0], nil
}

// IdempotencyKey returns the key stored for the user, or a fault.NotFound error.
func (s *Store) IdempotencyKey(ctx context.Context, userID, key string) (orders.IdempotencyKey, error) {
	var k orders.IdempotencyKey
	err := s.db.QueryRowContext(ctx,
		`SELECT user_id, key, request_hash, order_id, created_at FROM idempotency_keys WHERE user_id = ? AND key = ?`,
		userID, key).Scan(&k.UserID, &k.Key, &k.RequestHash, &k.OrderID, &k.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return orders.IdempotencyKey{}, fault.New(fault.NotFound, "idempotency key not found")
	}
	if err != nil {
		return orders.IdempotencyKey{}, fmt.Errorf("ordersdb: get idempotency key: %w", err)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return k, nil
}

// UpdateOrder reads the order under a lock, lets change change it and stores
// its status, reason, released and updated times with the events change
// returns, in one transaction. An error from change is returned as is and
// nothing changes; an unknown order is a fault.NotFound error.
func (s *Store) UpdateOrder(ctx context.Context, id string, change orders.Change) (orders.Order, error) {
	var o orders.Order
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var err error
		o, err = s.update(ctx, tx, id, change)
		return err
	})
	if err != nil {
		return orders.Order{}, err
	}
	return o, nil
}

// ApplyEvent is UpdateOrder for the event eventID that consumer received,
// recorded in its inbox (outbox.Seen) in the same transaction. When the inbox
// holds it already, nothing happens and applied is false.
func (s *Store) ApplyEvent(ctx context.Context, consumer, eventID, id string, change orders.Change) (o orders.Order, applied bool, err error) {
	err = outbox.InTx(ctx, s.db, func(tx *sqldb.Tx) error {
		already, err := outbox.Seen(ctx, tx, consumer, eventID)
		if err != nil || already {
			return err
		}
		o, err = s.update(ctx, tx, id, change)
		applied = err == nil
		return err
	})
	if err != nil {
		return orders.Order{}, false, err
	}
	return o, applied, nil
}

// Together runs fn in one transaction that every ApplyEvent with fn's
// context joins, in a savepoint (outbox.Batch).
func (s *Store) Together(ctx context.Context, fn func(ctx context.Context) error) error {
	return outbox.Batch(ctx, s.db, fn)
}

// update reads the order under a lock, applies change and stores the result
// and its events, in tx. The order's row is written before the events are
// added, so that on PostgreSQL the outbox's order is the commit order of the
// order's changes.
func (s *Store) update(ctx context.Context, tx *sqldb.Tx, id string, change orders.Change) (orders.Order, error) {
	// SQLite transactions here take the write lock when they begin; PostgreSQL
	// needs the row lock, or two updates could both start from pending.
	lock := ""
	if s.db.Dialect == sqldb.Postgres {
		lock = " FOR UPDATE OF o"
	}
	o, err := s.order(ctx, tx, id, lock)
	if err != nil {
		return orders.Order{}, err
	}
	before := o
	events, err := change(&o)
	if err != nil {
		return orders.Order{}, err
	}
	if len(events) == 0 && o.Status == before.Status && o.Reason == before.Reason &&
		o.UpdatedAt.Equal(before.UpdatedAt) && equalTimes(o.ReleasedAt, before.ReleasedAt) {
		return o, nil // nothing to store
	}
	// The condition on the status keeps the update safe even without the
	// lock: an order changed meanwhile is never overwritten.
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = ?, reason = ?, released_at = ?, updated_at = ?
		WHERE id = ? AND status = ?`,
		o.Status, o.Reason, nullTime(o.ReleasedAt), o.UpdatedAt.UTC(), id, before.Status)
	if err != nil {
		return orders.Order{}, fmt.Errorf("ordersdb: update order: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return orders.Order{}, fault.New(fault.Conflict, "the order changed meanwhile; try again")
	}
	if err := addEvents(ctx, tx, events); err != nil {
		return orders.Order{}, err
	}
	return o, nil
}

func equalTimes(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// OrdersByUser returns up to limit orders of the user with ids before before
// ("" for no bound), newest first (ids are UUIDv7).
func (s *Store) OrdersByUser(ctx context.Context, userID, before string, limit int) ([]orders.Order, error) {
	where, args := "user_id = ?", []any{userID}
	if before != "" {
		where, args = where+" AND id < ?", append(args, before)
	}
	rows, err := s.db.QueryContext(ctx, selectOrders+`(SELECT * FROM orders WHERE `+where+` ORDER BY id DESC LIMIT ?) o
		JOIN order_lines l ON l.order_id = o.id ORDER BY o.id DESC, l.line_no`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("ordersdb: list orders: %w", err)
	}
	list, err := scanOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("ordersdb: list orders: %w", err)
	}
	return list, nil
}

// PendingOrders returns the ids, greater than after, of up to limit pending
// orders whose deadline is before t, in id order.
func (s *Store) PendingOrders(ctx context.Context, t time.Time, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id FROM orders WHERE status = 'pending' AND deadline < ? AND id > ? ORDER BY id LIMIT ?`,
		t.UTC(), after, limit)
	if err != nil {
		return nil, fmt.Errorf("ordersdb: list pending orders: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("ordersdb: list pending orders: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ordersdb: list pending orders: %w", err)
	}
	return ids, nil
}

// scanOrders reads rows of selectOrders, where the lines of an order are
// adjacent, and closes rows.
func scanOrders(rows *sql.Rows) ([]orders.Order, error) {
	defer rows.Close()
	var list []orders.Order
	for rows.Next() {
		var o orders.Order
		var l orders.Line
		var released sql.NullTime
		if err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.Reason, &o.Total.Amount, &o.Total.Currency,
			&o.Deadline, &released, &o.CreatedAt, &o.UpdatedAt, &l.ProductID, &l.Quantity, &l.UnitPrice.Amount); err != nil {
			return nil, err
		}
		l.UnitPrice.Currency = o.Total.Currency
		if n := len(list); n > 0 && list[n-1].ID == o.ID {
			list[n-1].Lines = append(list[n-1].Lines, l)
			continue
		}
		o.Deadline, o.CreatedAt, o.UpdatedAt = o.Deadline.UTC(), o.CreatedAt.UTC(), o.UpdatedAt.UTC()
		if released.Valid {
			at := released.Time.UTC()
			o.ReleasedAt = &at
		}
		o.Lines = []orders.Line{l}
		list = append(list, o)
	}
	return list, rows.Err()
}
