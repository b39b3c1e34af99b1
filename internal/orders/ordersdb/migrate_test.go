package ordersdb_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
)

// firstMigration returns the orders migrations up to 0001 only: the schema
// before the checkout saga.
func firstMigration(t *testing.T) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(ordersdb.Migrations(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(path, "/0001_") {
			return err
		}
		b, err := fs.ReadFile(ordersdb.Migrations(), path)
		out[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateKeepsOrders applies the saga's migration to a database of the
// first schema holding orders: nothing is lost, a pending order gets its
// creation time as deadline (so the sweeper expires it at once), and the new
// statuses are accepted.
func TestMigrateKeepsOrders(t *testing.T) {
	for _, dialect := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			db := sqldbtest.Open(t, dialect, "orders", firstMigration(t))
			pending, confirmed := newOrder(alice, 1), newOrder(bob, 2)
			confirmed.Status = orders.StatusConfirmed
			for _, o := range []orders.Order{pending, confirmed} {
				if _, err := db.ExecContext(ctx, `INSERT INTO orders (id, user_id, status, reason, total_amount, currency, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, o.ID, o.UserID, o.Status, o.Reason, o.Total.Amount, o.Total.Currency, o.CreatedAt, o.UpdatedAt); err != nil {
					t.Fatal(err)
				}
				for i, l := range o.Lines {
					if _, err := db.ExecContext(ctx, `INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price) VALUES (?, ?, ?, ?, ?)`,
						o.ID, i, l.ProductID, l.Quantity, l.UnitPrice.Amount); err != nil {
						t.Fatal(err)
					}
				}
			}
			key := orders.IdempotencyKey{UserID: alice, Key: "k", RequestHash: "h", OrderID: pending.ID, CreatedAt: t0}
			if _, err := db.ExecContext(ctx, `INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) VALUES (?, ?, ?, ?, ?)`,
				key.UserID, key.Key, key.RequestHash, key.OrderID, key.CreatedAt); err != nil {
				t.Fatal(err)
			}

			if err := ordersdb.Migrate(ctx, db); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			s := ordersdb.New(db)
			for _, o := range []orders.Order{pending, confirmed} {
				want := o
				want.Deadline = o.CreatedAt
				got, err := s.Order(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("order %s after the migration (-want +got):\n%s", o.ID, diff)
				}
			}
			if got, err := s.IdempotencyKey(ctx, alice, "k"); err != nil || got != key {
				t.Errorf("key after the migration = %+v, %v; want %+v", got, err, key)
			}
			if ids, err := s.PendingOrders(ctx, pending.CreatedAt.Add(time.Microsecond), "", 10); err != nil || !cmp.Equal(ids, []string{pending.ID}) {
				t.Errorf("PendingOrders() = %v, %v; want the old pending order", ids, err)
			}
			for _, status := range []string{orders.StatusExpired, orders.StatusCancelled} {
				if _, err := db.ExecContext(ctx, `UPDATE orders SET status = ? WHERE id = ?`, status, pending.ID); err != nil {
					t.Errorf("status %s refused: %v", status, err)
				}
			}
			if _, err := db.ExecContext(ctx, `UPDATE orders SET status = 'shipped' WHERE id = ?`, pending.ID); err == nil {
				t.Error("status shipped accepted")
			}
			// The lines still belong to their order.
			if _, err := db.ExecContext(ctx, `INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price) VALUES (?, 9, ?, 1, 1)`,
				"0190f000-0000-7000-8000-999999999999", pending.Lines[0].ProductID); err == nil {
				t.Error("a line of no order was accepted")
			}
			if _, err := db.ExecContext(ctx, `DELETE FROM orders WHERE id = ?`, confirmed.ID); err != nil {
				t.Fatal(err)
			}
			var lines int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM order_lines WHERE order_id = ?`, confirmed.ID).Scan(&lines); err != nil || lines != 0 {
				t.Errorf("lines of a deleted order = %d, %v; want 0", lines, err)
			}
		})
	}
}
