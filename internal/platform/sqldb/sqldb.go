// Package sqldb opens a service's database (SQLite or PostgreSQL through
// database/sql), applies its embedded migrations and runs transactions.
//
// Queries are written once with '?' placeholders; on PostgreSQL they are rewritten
// to $1, $2, ... before they reach the driver. Queries must not contain a literal
// '?' character.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// Dialect names a supported database engine.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a database handle that rewrites placeholders for its dialect.
type DB struct {
	sql     *sql.DB
	Dialect Dialect
	cache   sync.Map // query text -> rebound text
	stmts   stmtCache
}

// Open opens the database named by url for one service. An empty url means a
// SQLite file <dataDir>/<service>.db. "postgres://" and "postgresql://" URLs open
// PostgreSQL, where the service keeps its tables in a schema named after it, so
// that several services can share one server (or one database) without sharing
// tables. "sqlite:" or "file:" URLs, or plain paths, open SQLite.
func Open(ctx context.Context, url, service, dataDir string) (*DB, error) {
	var db *DB
	var err error
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err = openPostgres(ctx, url, service)
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
		if path == "" {
			if dataDir == "" {
				return nil, errors.New("sqldb: no database URL and no data directory")
			}
			path = filepath.Join(dataDir, service+".db")
		}
		db, err = openSQLite(path)
	}
	if err != nil {
		return nil, err
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("sqldb: connect %s: %w", db.Dialect, err)
	}
	return db, nil
}

func openSQLite(path string) (*DB, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("sqldb: %w", err)
		}
		// The file holds password hashes and signing keys: readable by the
		// owner only (SQLite gives its -wal and -shm files the same mode).
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sqldb: %w", err)
		}
		f.Close()
	}
	// WAL with synchronous=FULL: every commit is durable. _txlock=immediate takes
	// the write lock when a transaction begins, so two transactions can never
	// deadlock upgrading a read lock; busy_timeout makes writers queue.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqldb: open sqlite: %w", err)
	}
	// SQLite allows one writer at a time; a small pool lets readers run in
	// parallel under WAL while writers wait on the busy timeout.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	return &DB{sql: db, Dialect: SQLite}, nil
}

func openPostgres(ctx context.Context, url, service string) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("sqldb: invalid PostgreSQL URL") // the URL may hold a password: do not echo it
	}
	schema := pgx.Identifier{service}.Sanitize()
	// Create the schema on a plain connection, then pin search_path to it.
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqldb: connect postgres: %w", redact(err))
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema)
	conn.Close(ctx)
	if err != nil && !isUniqueViolation(err) { // concurrent CREATE SCHEMA IF NOT EXISTS can race
		return nil, fmt.Errorf("sqldb: create schema: %w", err)
	}
	cfg.RuntimeParams["search_path"] = service
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	return &DB{sql: db, Dialect: Postgres}, nil
}

// redact drops the connection details that pgx puts in connect errors.
func redact(err error) error {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return errors.New(pgErr.Message)
	}
	if ce, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return ce.Unwrap()
	}
	return err
}

// Close closes the database.
func (db *DB) Close() error {
	db.stmts.close()
	return db.sql.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// SQL returns the underlying *sql.DB.
func (db *DB) SQL() *sql.DB { return db.sql }

func (db *DB) rebind(q string) string {
	if db.Dialect != Postgres {
		return q
	}
	if v, ok := db.cache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	out := b.String()
	db.cache.Store(q, out)
	return out
}

// Querier is what both *DB and *Tx offer, so store code can run in or out of a
// transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ExecContext runs a statement.
func (db *DB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := db.stmts.get(db, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return db.sql.ExecContext(ctx, db.rebind(q), args...)
}

// QueryContext runs a query.
func (db *DB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := db.stmts.get(db, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.sql.QueryContext(ctx, db.rebind(q), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (db *DB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := db.stmts.get(db, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.sql.QueryRowContext(ctx, db.rebind(q), args...)
}

// Tx is a transaction that rewrites placeholders like its DB.
type Tx struct {
	tx *sql.Tx
	db *DB
}

// ExecContext runs a statement in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := tx.db.stmts.get(tx.db, q); st != nil {
		return tx.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.tx.ExecContext(ctx, tx.db.rebind(q), args...)
}

// QueryContext runs a query in the transaction. It is never served from the
// statement cache: in a transaction every use of a cached statement is the
// same driver statement on the same connection, so running the query again
// while its first rows are still open would fail (SQLite's "API misuse").
func (tx *Tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, tx.db.rebind(q), args...)
}

// QueryRowContext runs a single-row query in the transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := tx.db.stmts.get(tx.db, q); st != nil {
		return tx.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.tx.QueryRowContext(ctx, tx.db.rebind(q), args...)
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling back
// otherwise. fn must use only tx, never db, or it may wait for itself.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldb: begin: %w", err)
	}
	// Roll back if fn panics too: a transaction left open keeps its connection
	// and its locks (on SQLite, the database's write lock) for good. After a
	// Commit this is a no-op.
	defer func() { _ = stx.Rollback() }()
	if err := fn(&Tx{tx: stx, db: db}); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique or primary-key constraint
// violation in either dialect.
func IsUniqueViolation(err error) bool { return isUniqueViolation(err) }

func isUniqueViolation(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == "23505"
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		return se.Code() == 2067 || se.Code() == 1555
	}
	return false
}
