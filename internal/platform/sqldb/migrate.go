package sqldb

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Migrate applies, in name order, the migrations in fsys/<dialect>/*.sql that
// were not applied yet, each in its own transaction, and records them in the
// schema_migrations table. On PostgreSQL an advisory lock keeps replicas that
// start together from applying the same migration twice.
func Migrate(ctx context.Context, db *DB, fsys fs.FS) error {
	dir := string(db.Dialect)
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return fmt.Errorf("sqldb: list migrations: %w", err)
	}
	if len(names) == 0 {
		return fmt.Errorf("sqldb: no migrations for %s", db.Dialect)
	}
	sort.Strings(names)

	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqldb: migrate: %w", err)
	}
	defer conn.Close()
	if db.Dialect == Postgres {
		h := fnv.New64a()
		h.Write([]byte("microshop-migrate"))
		key := int64(h.Sum64() >> 1)
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
			return fmt.Errorf("sqldb: migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY,
		applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)`); err != nil {
		return fmt.Errorf("sqldb: create schema_migrations: %w", err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		var n int
		if err := conn.QueryRowContext(ctx, db.rebind("SELECT count(*) FROM schema_migrations WHERE version = ?"), version).Scan(&n); err != nil {
			return fmt.Errorf("sqldb: read schema_migrations: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("sqldb: read %s: %w", name, err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqldb: begin migration %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqldb: apply migration %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, db.rebind("INSERT INTO schema_migrations (version) VALUES (?)"), version); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqldb: record migration %s: %w", version, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqldb: commit migration %s: %w", version, err)
		}
	}
	return nil
}
