package sqldb

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTestSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := openSQLite(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.sql.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// waitPrepared waits until n statements are prepared in the background.
func waitPrepared(t *testing.T, db *DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); db.stmts.len() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d statements prepared, want %d", db.stmts.len(), n)
		}
	}
}

// TestStatementCache: queries give the same results before and after their
// statement is prepared, in and out of transactions, and a query that does not
// compile keeps failing with its own error and is never cached.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db := openTestSQLite(t)
	insert := `INSERT INTO items (id, name) VALUES (?, ?)`
	get := `SELECT name FROM items WHERE id = ?`
	for i := range 3 { // first run unprepared, then prepared
		if _, err := db.ExecContext(ctx, insert, i, fmt.Sprint("item ", i)); err != nil {
			t.Fatal(err)
		}
		var name string
		if err := db.QueryRowContext(ctx, get, i).Scan(&name); err != nil || name != fmt.Sprint("item ", i) {
			t.Fatalf("read %d: %q, %v", i, name, err)
		}
		waitPrepared(t, db, 2)
	}
	err := db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, insert, 10, "in tx"); err != nil {
			return err
		}
		var name string
		if err := tx.QueryRowContext(ctx, get, 10).Scan(&name); err != nil || name != "in tx" {
			return fmt.Errorf("read in tx: %q, %v", name, err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT count(*) FROM items`)
		if err != nil {
			return err
		}
		defer rows.Close()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := db.QueryContext(ctx, `SELECT nope FROM items`); err == nil {
			t.Fatal("a query naming a missing column ran")
		}
	}
	time.Sleep(10 * time.Millisecond)
	if n := db.stmts.len(); n != 2 { // insert and get: not the broken query, nor the count queried in a transaction
		t.Fatalf("%d statements cached, want 2", n)
	}
}

// TestStatementCacheNestedQueryInTx: in a transaction, a query may run again
// while its first rows are still open, even once its statement is cached.
func TestStatementCacheNestedQueryInTx(t *testing.T) {
	ctx := context.Background()
	db := openTestSQLite(t)
	q := `SELECT id FROM items WHERE id >= ? ORDER BY id`
	for i := range 3 {
		if _, err := db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES (?, ?)`, i, "x"); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.QueryContext(ctx, q, 0) // cache q
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	waitPrepared(t, db, 2)
	err = db.InTx(ctx, func(tx *Tx) error {
		outer, err := tx.QueryContext(ctx, q, 0)
		if err != nil {
			return err
		}
		defer outer.Close()
		for outer.Next() {
			inner, err := tx.QueryContext(ctx, q, 2)
			if err != nil {
				return fmt.Errorf("nested query: %w", err)
			}
			inner.Close()
		}
		return outer.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCacheable: one-off texts do not take slots of the cache.
func TestCacheable(t *testing.T) {
	tests := []struct {
		q    string
		want bool
	}{
		{`SELECT name FROM items WHERE id = ?`, true},
		{`INSERT INTO items (id, name) VALUES (?, ?)`, true},
		{`SELECT 1; SELECT 2`, false},
		{`SAVEPOINT outbox_batch_3`, false},
		{` release outbox_batch_3`, false},
		{`ROLLBACK TO outbox_batch_3`, false},
		{`UPDATE outbox SET sent_at = ? WHERE seq IN (?,?,?,?,?,?,?,?,?)`, false},
		{`SELECT * FROM products WHERE id IN (?,?,?)`, true},
	}
	for _, tc := range tests {
		if got := cacheable(tc.q); got != tc.want {
			t.Errorf("cacheable(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// TestStatementCacheDoesNotStarvePool: transactions holding every pooled
// connection, each running queries never seen before, finish. Preparing in
// the caller would take a second connection while holding one and deadlock
// with the transactions queued on SQLite's write lock.
func TestStatementCacheDoesNotStarvePool(t *testing.T) {
	db := openTestSQLite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			errs <- db.InTx(ctx, func(tx *Tx) error {
				for q := range 5 { // a query text of its own per goroutine and step
					if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO items (id, name) VALUES (?, 'g%d-%d')`, g, q), g*100+q); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 80 {
		t.Fatalf("count = %d, %v; want 80", n, err)
	}
}

// TestStatementCacheBounded: past maxCachedStatements distinct texts, queries
// still run, unprepared.
func TestStatementCacheBounded(t *testing.T) {
	ctx := context.Background()
	db := openTestSQLite(t)
	for i := range maxCachedStatements + 20 {
		var v int
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d`, i)).Scan(&v); err != nil || v != i {
			t.Fatalf("query %d: %d, %v", i, v, err)
		}
	}
	waitPrepared(t, db, maxCachedStatements)
	if n := db.stmts.len(); n > maxCachedStatements {
		t.Fatalf("%d statements cached, bound is %d", n, maxCachedStatements)
	}
}
