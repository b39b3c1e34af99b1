// Package ordersdbtest gives tests of the orders service a migrated database
// (the orders tables, the outbox and the inbox) and a look into its outbox.
package ordersdbtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
)

// Open returns an empty database of dialect with the orders and outbox
// migrations applied, removed when the test ends.
func Open(t testing.TB, dialect sqldb.Dialect) *sqldb.DB {
	t.Helper()
	db := sqldbtest.Open(t, dialect, "orders", ordersdb.Migrations())
	if err := sqldb.Migrate(context.Background(), db, outbox.Migrations()); err != nil {
		t.Fatalf("outbox migrations: %v", err)
	}
	return db
}

// ForEach runs fn once per dialect (SQLite, PostgreSQL) with a database from
// Open; see sqldbtest.ForEach for when PostgreSQL is skipped.
func ForEach(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) { fn(t, Open(t, d)) })
	}
}

// Outbox returns every event in db's outbox, sent or not, in the order the
// relay publishes them.
func Outbox(t testing.TB, db *sqldb.DB) []broker.Event {
	t.Helper()
	rows, err := db.QueryContext(context.Background(),
		`SELECT id, source, type, aggregate, event_time, schema_version, payload FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	defer rows.Close()
	var out []broker.Event
	for rows.Next() {
		var e broker.Event
		var ts string
		var payload []byte
		if err := rows.Scan(&e.ID, &e.Source, &e.Type, &e.Subject, &ts, &e.DataSchemaVersion, &payload); err != nil {
			t.Fatalf("read the outbox: %v", err)
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("outbox event %s has time %q: %v", e.ID, ts, err)
		}
		e.Data = json.RawMessage(payload)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	return out
}

// Kinds returns the outbox's events as "type subject" strings, in order.
func Kinds(t testing.TB, db *sqldb.DB) []string {
	t.Helper()
	var out []string
	for _, e := range Outbox(t, db) {
		out = append(out, e.Type+" "+e.Subject)
	}
	return out
}

// Inbox returns the ids of the events consumer has recorded in db's inbox.
func Inbox(t testing.TB, db *sqldb.DB, consumer string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT event_id FROM inbox WHERE consumer = ? ORDER BY event_id`, consumer)
	if err != nil {
		t.Fatalf("read the inbox: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("read the inbox: %v", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read the inbox: %v", err)
	}
	return out
}
