package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
)

// migrations is a tiny migration set for both dialects. The first file holds two
// statements, so that multi-statement files are proven too.
var migrations = fstest.MapFS{
	"postgres/0001_items.sql": {Data: []byte(`
CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE notes (item_id TEXT NOT NULL REFERENCES items (id), body TEXT NOT NULL);`)},
	"postgres/0002_qty.sql": {Data: []byte(`ALTER TABLE items ADD COLUMN qty INTEGER NOT NULL DEFAULT 0;`)},
	"sqlite/0001_items.sql": {Data: []byte(`
CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE notes (item_id TEXT NOT NULL REFERENCES items (id), body TEXT NOT NULL);`)},
	"sqlite/0002_qty.sql": {Data: []byte(`ALTER TABLE items ADD COLUMN qty INTEGER NOT NULL DEFAULT 0;`)},
	"README.md":           {Data: []byte("not a migration")},
}

// with returns migrations plus extra files.
func with(extra map[string]string) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range migrations {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return out
}

var dialects = []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres}

// forEach runs fn on a fresh, migrated database of every dialect.
func forEach(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.ForEach(t, "sqldbtest", migrations, fn)
}

func versions(t *testing.T, db *sqldb.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func insert(t *testing.T, q sqldb.Querier, id, name string) {
	t.Helper()
	if _, err := q.ExecContext(context.Background(), "INSERT INTO items (id, name) VALUES (?, ?)", id, name); err != nil {
		t.Fatalf("insert %s: %v", id, err)
	}
}

func count(t *testing.T, db *sqldb.DB, id string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM items WHERE id = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrateIsIdempotent(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		want := []string{"0001_items", "0002_qty"}
		if diff := cmp.Diff(want, versions(t, db)); diff != "" {
			t.Fatalf("versions after the first run (-want +got):\n%s", diff)
		}
		insert(t, db, "i1", "first")
		for run := 2; run <= 3; run++ {
			if err := sqldb.Migrate(ctx, db, migrations); err != nil {
				t.Fatalf("Migrate run %d: %v", run, err)
			}
		}
		if diff := cmp.Diff(want, versions(t, db)); diff != "" {
			t.Errorf("versions after running again (-want +got):\n%s", diff)
		}
		if got := count(t, db, "i1"); got != 1 {
			t.Errorf("rows after running again = %d, want 1 (data kept)", got)
		}

		// A new migration is applied once, on top.
		next := with(map[string]string{
			"postgres/0003_tags.sql": "CREATE TABLE tags (name TEXT PRIMARY KEY);",
			"sqlite/0003_tags.sql":   "CREATE TABLE tags (name TEXT PRIMARY KEY);",
		})
		for range 2 {
			if err := sqldb.Migrate(ctx, db, next); err != nil {
				t.Fatalf("Migrate with a new file: %v", err)
			}
		}
		if diff := cmp.Diff(append(want, "0003_tags"), versions(t, db)); diff != "" {
			t.Errorf("versions after a new file (-want +got):\n%s", diff)
		}
	})
}

func TestMigrateFailureRollsBack(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		bad := with(map[string]string{
			"postgres/0003_bad.sql": "CREATE TABLE half (x INTEGER); SELECT nonsense FROM nowhere;",
			"sqlite/0003_bad.sql":   "CREATE TABLE half (x INTEGER); SELECT nonsense FROM nowhere;",
		})
		err := sqldb.Migrate(context.Background(), db, bad)
		if err == nil || !strings.Contains(err.Error(), "0003_bad") {
			t.Fatalf("Migrate with a broken file = %v, want an error naming 0003_bad", err)
		}
		if diff := cmp.Diff([]string{"0001_items", "0002_qty"}, versions(t, db)); diff != "" {
			t.Errorf("versions (-want +got):\n%s", diff)
		}
		if _, err := db.ExecContext(context.Background(), "INSERT INTO half (x) VALUES (1)"); err == nil {
			t.Errorf("table of the failed migration exists; its transaction was not rolled back")
		}
	})
}

func TestMigrateWithoutFiles(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, "sqldbtest", migrations)
	only := fstest.MapFS{"postgres/0001.sql": {Data: []byte("SELECT 1")}}
	if err := sqldb.Migrate(context.Background(), db, only); err == nil {
		t.Errorf("Migrate with no file for sqlite = nil, want an error")
	}
}

func TestServicesHaveTheirOwnSchema(t *testing.T) {
	url := sqldbtest.NewPostgresDatabase(t)
	ctx := context.Background()
	var dbs []*sqldb.DB
	for _, svc := range []string{"alpha", "beta"} {
		db, err := sqldb.Open(ctx, url, svc, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := sqldb.Migrate(ctx, db, migrations); err != nil {
			t.Fatalf("migrate %s: %v", svc, err)
		}
		dbs = append(dbs, db)
	}
	insert(t, dbs[0], "a1", "in alpha")
	if got := count(t, dbs[1], "a1"); got != 0 {
		t.Errorf("beta sees %d rows of alpha, want 0", got)
	}
}

func TestPlaceholders(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		// Eleven distinct powers of two: a wrong rewrite ($1 and $1 again, or $1
		// followed by 0 for the tenth) gives another sum or an error.
		var qs []string
		var args []any
		for i := range 11 {
			qs = append(qs, "CAST(? AS INTEGER)")
			args = append(args, 1<<i)
		}
		q := "SELECT " + strings.Join(qs, " + ")
		for range 2 { // the second run takes the cached rewrite
			var sum int
			if err := db.QueryRowContext(ctx, q, args...).Scan(&sum); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if sum != 2047 {
				t.Errorf("sum = %d, want 2047", sum)
			}
		}

		insert(t, db, "i1", "one")
		insert(t, db, "i2", "two")
		if _, err := db.ExecContext(ctx, "UPDATE items SET qty = ? WHERE id = ? AND name = ?", 5, "i2", "two"); err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "SELECT id, qty FROM items WHERE id >= ? AND qty >= ? ORDER BY id", "i1", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		type item struct {
			ID  string
			Qty int
		}
		var got []item
		for rows.Next() {
			var it item
			if err := rows.Scan(&it.ID, &it.Qty); err != nil {
				t.Fatal(err)
			}
			got = append(got, it)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]item{{"i1", 0}, {"i2", 5}}, got); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
}

func TestPlaceholdersConcurrently(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		errc := make(chan error, 8)
		for g := range 8 {
			go func() {
				var got int
				err := db.QueryRowContext(context.Background(), "SELECT CAST(? AS INTEGER) * CAST(? AS INTEGER)", g, 3).Scan(&got)
				if err == nil && got != g*3 {
					err = fmt.Errorf("%d*3 = %d", g, got)
				}
				errc <- err
			}()
		}
		for range 8 {
			if err := <-errc; err != nil {
				t.Error(err)
			}
		}
	})
}

func TestInTx(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		fn       func(tx *sqldb.Tx) error
		wantErr  error
		wantRows int
	}{
		{"commit", func(tx *sqldb.Tx) error {
			_, err := tx.ExecContext(context.Background(), "INSERT INTO items (id, name) VALUES (?, ?)", "t1", "tx")
			return err
		}, nil, 1},
		{"rollback on error", func(tx *sqldb.Tx) error {
			if _, err := tx.ExecContext(context.Background(), "INSERT INTO items (id, name) VALUES (?, ?)", "t1", "tx"); err != nil {
				return err
			}
			return errBoom
		}, errBoom, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, db *sqldb.DB) {
				err := db.InTx(context.Background(), tt.fn)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("InTx = %v, want %v", err, tt.wantErr)
				}
				if got := count(t, db, "t1"); got != tt.wantRows {
					t.Errorf("rows after InTx = %d, want %d", got, tt.wantRows)
				}
			})
		})
	}
}

func TestInTxSeesItsOwnWrites(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		err := db.InTx(ctx, func(tx *sqldb.Tx) error {
			insert(t, tx, "t1", "mine")
			var name string
			if err := tx.QueryRowContext(ctx, "SELECT name FROM items WHERE id = ?", "t1").Scan(&name); err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, "SELECT id FROM items WHERE name = ?", name)
			if err != nil {
				return err
			}
			defer rows.Close()
			if !rows.Next() {
				return errors.New("tx.QueryContext found nothing")
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A panic inside InTx must roll back, or the transaction keeps its connection
// and its locks (on SQLite, the database's only write lock) forever.
func TestInTxPanicRollsBack(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		func() {
			defer func() {
				if v := recover(); v != "bug" {
					t.Errorf("recovered %v, want the handler's panic", v)
				}
			}()
			_ = db.InTx(context.Background(), func(tx *sqldb.Tx) error {
				insert(t, tx, "t1", "doomed")
				panic("bug")
			})
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "INSERT INTO items (id, name) VALUES (?, ?)", "t1", "after"); err != nil {
			t.Fatalf("write after a panicking transaction: %v", err)
		}
		if got := count(t, db, "t1"); got != 1 {
			t.Errorf("rows = %d, want 1", got)
		}
	})
}

func TestIsUniqueViolation(t *testing.T) {
	tests := []struct {
		name string
		q    string
		args []any
		want bool
	}{
		{"duplicate primary key", "INSERT INTO items (id, name) VALUES (?, ?)", []any{"x1", "other"}, true},
		{"duplicate unique column", "INSERT INTO items (id, name) VALUES (?, ?)", []any{"x2", "taken"}, true},
		{"not null violation", "INSERT INTO items (id, name) VALUES (?, NULL)", []any{"x3"}, false},
		{"foreign key violation", "INSERT INTO notes (item_id, body) VALUES (?, ?)", []any{"nope", "b"}, false},
		{"syntax error", "INSERT INTO nowhere VALUES (?)", []any{1}, false},
	}
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		insert(t, db, "x1", "taken")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := db.ExecContext(context.Background(), tt.q, tt.args...)
				if err == nil {
					t.Fatalf("%s succeeded, want an error", tt.q)
				}
				if got := sqldb.IsUniqueViolation(err); got != tt.want {
					t.Errorf("IsUniqueViolation(%v) = %v, want %v", err, got, tt.want)
				}
				if got := sqldb.IsUniqueViolation(fmt.Errorf("store: %w", err)); got != tt.want {
					t.Errorf("IsUniqueViolation(wrapped %v) = %v, want %v", err, got, tt.want)
				}
			})
		}
	})
	for _, err := range []error{nil, errors.New("duplicate key value violates unique constraint"), sql.ErrNoRows} {
		if sqldb.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(%v) = true, want false", err)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name        string
		url         string
		dataDir     string
		wantDialect sqldb.Dialect
		wantErr     bool
	}{
		{"empty url uses the data directory", "", dir, sqldb.SQLite, false},
		{"sqlite: url", "sqlite:" + filepath.Join(dir, "a", "x.db"), "", sqldb.SQLite, false},
		{"file: url", "file:" + filepath.Join(dir, "y.db"), "", sqldb.SQLite, false},
		{"plain path", filepath.Join(dir, "z.db"), "", sqldb.SQLite, false},
		{"no url and no data directory", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqldb.Open(ctx, tt.url, "svc", tt.dataDir)
			if tt.wantErr {
				if err == nil {
					db.Close()
					t.Fatalf("Open = nil error, want one")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.Dialect != tt.wantDialect {
				t.Errorf("Dialect = %q, want %q", db.Dialect, tt.wantDialect)
			}
			if err := db.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

func TestOpenPostgresErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://user:s3cret-pw@127.0.0.1:notaport/db",
		"postgres://user:s3cret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
	} {
		db, err := sqldb.Open(ctx, url, "svc", "")
		if err == nil {
			db.Close()
			t.Fatalf("Open(%q) = nil error, want one", url)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open error leaks the password: %v", err)
		}
	}
}

func TestDialects(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			db := sqldbtest.Open(t, d, "sqldbtest", migrations)
			if db.Dialect != d {
				t.Errorf("Dialect = %q, want %q", db.Dialect, d)
			}
			if db.SQL() == nil {
				t.Errorf("SQL() = nil")
			}
		})
	}
}

// TestSQLiteFileIsPrivate checks that a new SQLite file (and its WAL) is
// readable by its owner only: it holds password hashes and signing keys.
func TestSQLiteFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	db, err := sqldb.Open(context.Background(), "", "users", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"users.db", "users.db-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s mode = %v, want no access for group and others", name, perm)
		}
	}
}
