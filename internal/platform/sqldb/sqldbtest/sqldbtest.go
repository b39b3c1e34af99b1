// Package sqldbtest runs store tests against every supported database: a SQLite
// file in a temporary directory and a fresh PostgreSQL database on the local
// server, created with a unique name and dropped afterwards.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microshop/microshop/internal/platform/sqldb"
)

// DefaultPostgresURL is the local server's admin URL used when
// MICROSHOP_TEST_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL returns the admin URL of the PostgreSQL server used by tests.
func PostgresURL() string {
	if u := os.Getenv("MICROSHOP_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// ForEach runs fn once per dialect with a migrated, empty database. Without a
// reachable PostgreSQL server the PostgreSQL run is skipped, except under CI
// (CI=true), where it fails: CI must prove both.
func ForEach(t *testing.T, service string, migrations fs.FS, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, Open(t, sqldb.SQLite, service, migrations))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, Open(t, sqldb.Postgres, service, migrations))
	})
}

// Open returns a migrated, empty database of the given dialect, closed and
// removed when the test ends.
func Open(t testing.TB, dialect sqldb.Dialect, service string, migrations fs.FS) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	dbURL := ""
	if dialect == sqldb.Postgres {
		dbURL = NewPostgresDatabase(t)
	}
	db, err := sqldb.Open(ctx, dbURL, service, t.TempDir())
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqldb.Migrate(ctx, db, migrations); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return db
}

// NewPostgresDatabase creates a PostgreSQL database with a unique name, drops it
// when the test ends, and returns its URL.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := PostgresURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI but unreachable at %s: %v", admin, err)
		}
		t.Skipf("PostgreSQL unreachable (%v); set MICROSHOP_TEST_POSTGRES_URL or start a server", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "microshop_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("MICROSHOP_TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
