package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
)

// stateMigrations stand for a service's own migrations: a table whose rows
// are the state changes that events announce.
var stateMigrations = fstest.MapFS{
	"sqlite/0001_things.sql":   {Data: []byte(`CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);`)},
	"postgres/0001_things.sql": {Data: []byte(`CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);`)},
}

// forEach runs fn on each dialect with the service's and the outbox's
// migrations applied, as a service does.
func forEach(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.ForEach(t, "outboxtest", stateMigrations, func(t *testing.T, db *sqldb.DB) {
		if err := sqldb.Migrate(context.Background(), db, outbox.Migrations()); err != nil {
			t.Fatalf("outbox migrations: %v", err)
		}
		fn(t, db)
	})
}

func newEvent(t *testing.T, typ, aggregate string, n int) broker.Event {
	t.Helper()
	e, err := broker.NewEvent("microshop/test", typ, aggregate, map[string]int{"n": n})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// change commits, in one transaction, a state change of thing id and its events.
func change(t *testing.T, db *sqldb.DB, id string, events ...broker.Event) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
		if err := bump(context.Background(), tx, id); err != nil {
			return err
		}
		for _, e := range events {
			if err := outbox.Add(context.Background(), tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("commit %s: %v", id, err)
	}
}

// bump is the state change: thing id's counter goes up by one.
func bump(ctx context.Context, tx *sqldb.Tx, id string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET n = things.n + 1`, id)
	return err
}

func things(t *testing.T, db *sqldb.DB, id string) int {
	t.Helper()
	var n int
	err := db.QueryRowContext(context.Background(), `SELECT n FROM things WHERE id = ?`, id).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return n
}

func pending(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	n, err := outbox.Pending(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// run starts relay.Run and stops it (and waits for it) when the test ends or
// when the returned function is called.
func run(t *testing.T, relay *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// ids returns the Nats-Msg-Id of every message in stream, in stream order.
func ids(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	var out []string
	for _, m := range brokertest.Messages(t, js, stream) {
		out = append(out, m.Header.Get("Nats-Msg-Id"))
	}
	return out
}

// wantStreams checks that ORDERS and STOCK hold exactly these events, in
// this order.
func wantStreams(t *testing.T, js jetstream.JetStream, orders, stock []broker.Event) {
	t.Helper()
	for _, s := range []struct {
		name string
		want []broker.Event
	}{{broker.StreamOrders, orders}, {broker.StreamStock, stock}} {
		if diff := cmp.Diff(eventIDs(s.want...), ids(t, js, s.name)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
}

func eventIDs(events ...broker.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMigrationsSitBesideTheService(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		for range 2 { // a restart applies both sets again: nothing happens
			if err := sqldb.Migrate(ctx, db, stateMigrations); err != nil {
				t.Fatal(err)
			}
			if err := sqldb.Migrate(ctx, db, outbox.Migrations()); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if diff := cmp.Diff([]string{"0001_things", "outbox_0001"}, got); diff != "" {
			t.Errorf("versions (-want +got):\n%s", diff)
		}
	})
}

func TestAddRollsBackWithTheTransaction(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		errBoom := errors.New("boom")
		err := db.InTx(ctx, func(tx *sqldb.Tx) error {
			if err := bump(ctx, tx, "t1"); err != nil {
				return err
			}
			if err := outbox.Add(ctx, tx, newEvent(t, "orders.placed", "t1", 1)); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx = %v, want %v", err, errBoom)
		}
		if got := pending(t, db); got != 0 {
			t.Errorf("pending after a rollback = %d, want 0", got)
		}
		if got := things(t, db, "t1"); got != 0 {
			t.Errorf("state after a rollback = %d, want 0", got)
		}
		change(t, db, "t1", newEvent(t, "orders.placed", "t1", 1))
		if got, gotState := pending(t, db), things(t, db, "t1"); got != 1 || gotState != 1 {
			t.Errorf("after a commit: pending %d, state %d; want 1 and 1", got, gotState)
		}
	})
}

func TestAddRejects(t *testing.T) {
	valid := newEvent(t, "orders.placed", "t1", 1)
	tests := []struct {
		name   string
		modify func(e *broker.Event)
		want   string
	}{
		{"no id", func(e *broker.Event) { e.ID = "" }, "id is missing"},
		{"array data", func(e *broker.Event) { e.Data = []byte(`[]`) }, "JSON object"},
		{"type without a stream", func(e *broker.Event) { e.Type = "billing.paid" }, "no stream"},
		{"dead-letter type", func(e *broker.Event) { e.Type = "dlq.orders.x" }, "no stream"},
		{"added twice", func(*broker.Event) {}, "added twice"},
	}
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		change(t, db, "t1", valid)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := valid
				tt.modify(&e)
				err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
					return outbox.Add(context.Background(), tx, e)
				})
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Add = %v, want an error containing %q", err, tt.want)
				}
			})
		}
	})
}

func TestRelayPublishesInSeqOrder(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		srv := brokertest.Start(t)
		_, js := brokertest.Connect(t, srv.ClientURL())
		placed := newEvent(t, "orders.placed", "o1", 1)
		placed.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		reserved := newEvent(t, "stock.reserved", "o1", 2)
		placed2 := newEvent(t, "orders.placed", "o2", 3)
		confirmed := newEvent(t, "orders.confirmed", "o1", 4)
		cancelled := newEvent(t, "orders.cancelled", "o2", 5)
		change(t, db, "o1", placed)
		change(t, db, "o2", placed2, cancelled) // two events, one transaction
		change(t, db, "o1", reserved)
		change(t, db, "o1", confirmed)

		relay := outbox.NewRelay(db, js, brokertest.Logger(t))
		if got, _ := relay.Pending(context.Background()); got != 5 {
			t.Errorf("Pending before the relay runs = %d, want 5", got)
		}
		run(t, relay)
		relay.Kick()
		eventually(t, 10*time.Second, "outbox not drained", func() bool { return pending(t, db) == 0 })

		msgs := brokertest.Messages(t, js, broker.StreamOrders)
		if len(msgs) != 4 {
			t.Fatalf("ORDERS holds %d messages, want 4", len(msgs))
		}
		var got []broker.Event
		for _, m := range msgs {
			e, err := broker.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
			if err != nil {
				t.Fatalf("decode %s: %v", m.Subject, err)
			}
			if m.Header.Get("Nats-Msg-Id") != e.ID {
				t.Errorf("Nats-Msg-Id = %q, want the event id %q", m.Header.Get("Nats-Msg-Id"), e.ID)
			}
			got = append(got, e)
		}
		want := []broker.Event{placed, placed2, cancelled, confirmed}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("published events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(eventIDs(reserved), ids(t, js, broker.StreamStock)); diff != "" {
			t.Errorf("STOCK (-want +got):\n%s", diff)
		}
	})
}

// While the broker is down, events wait in the outbox; when it is back they go
// out, all of them, in order.
func TestRelayKeepsRowsWhileBrokerIsDown(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		srv := brokertest.Start(t)
		nc, js := brokertest.Connect(t, srv.ClientURL())
		relay := outbox.NewRelay(db, js, brokertest.Logger(t))
		run(t, relay)
		first := newEvent(t, "orders.placed", "o1", 0)
		change(t, db, "o1", first)
		relay.Kick()
		eventually(t, 10*time.Second, "first event not published", func() bool { return pending(t, db) == 0 })

		dir, port := srv.Dir(), srv.Port()
		srv.Shutdown()
		eventually(t, 5*time.Second, "client still connected", func() bool { return !nc.IsConnected() })
		var down []broker.Event
		for i := range 5 {
			e := newEvent(t, "orders.placed", fmt.Sprintf("o%d", i%2), i+1)
			change(t, db, e.Subject, e)
			relay.Kick()
			down = append(down, e)
		}
		time.Sleep(500 * time.Millisecond) // the relay tries and fails meanwhile
		if got := pending(t, db); got != 5 {
			t.Fatalf("pending while the broker is down = %d, want 5", got)
		}

		brokertest.StartAt(t, dir, port)
		eventually(t, 30*time.Second, "outbox not drained after the broker came back", func() bool { return pending(t, db) == 0 })
		want := eventIDs(append([]broker.Event{first}, down...)...)
		if diff := cmp.Diff(want, ids(t, js, broker.StreamOrders)); diff != "" {
			t.Errorf("ORDERS (-want +got):\n%s", diff)
		}
	})
}

// A relay that dies between publishing and marking rows sent, replaced by a
// new one: every event is in the stream once.
func TestRelayRestartNeitherLosesNorDuplicates(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		srv := brokertest.Start(t)
		_, js := brokertest.Connect(t, srv.ClientURL())
		var all []broker.Event
		for i := range 3 {
			e := newEvent(t, "orders.placed", "o1", i)
			change(t, db, "o1", e)
			all = append(all, e)
		}
		stop := run(t, outbox.NewRelay(db, js, brokertest.Logger(t)))
		eventually(t, 10*time.Second, "first events not published", func() bool { return pending(t, db) == 0 })
		stop()

		// The crash: the last two were published but their marks were lost.
		if _, err := db.ExecContext(ctx, `UPDATE outbox SET sent_at = NULL WHERE id IN (?, ?)`, all[1].ID, all[2].ID); err != nil {
			t.Fatal(err)
		}
		for i := 3; i < 6; i++ {
			e := newEvent(t, "orders.placed", "o1", i)
			change(t, db, "o1", e)
			all = append(all, e)
		}
		relay := outbox.NewRelay(db, js, brokertest.Logger(t))
		n, err := relay.Flush(ctx)
		if err != nil || n != 5 {
			t.Errorf("Flush = %d, %v; want 5 published (2 of them again)", n, err)
		}
		if diff := cmp.Diff(eventIDs(all...), ids(t, js, broker.StreamOrders)); diff != "" {
			t.Errorf("ORDERS (-want +got):\n%s", diff)
		}
		if got := pending(t, db); got != 0 {
			t.Errorf("pending = %d, want 0", got)
		}
	})
}

// A publish that fails ends what is marked sent: the rows after it stay
// pending, even those that another stream acknowledged (they go out again, as
// duplicates that the stream drops), and the relay starts again from the
// failed row. Publishes to the other stream are not held back: no consumer
// reads both streams.
func TestRelayMarksOnlyTheAcknowledgedPrefix(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		srv := brokertest.Start(t)
		_, js := brokertest.Connect(t, srv.ClientURL())
		placed := newEvent(t, "orders.placed", "o1", 1)
		reserved := newEvent(t, "stock.reserved", "o1", 2)
		confirmed := newEvent(t, "orders.confirmed", "o1", 3)
		other := newEvent(t, "orders.placed", "o2", 4)
		// STOCK is gone: publishing stock.* fails until it is back.
		if err := js.DeleteStream(ctx, broker.StreamStock); err != nil {
			t.Fatal(err)
		}
		change(t, db, "o1", placed)
		change(t, db, "o1", reserved)
		change(t, db, "o1", confirmed)
		change(t, db, "o2", other)

		relay := outbox.NewRelay(db, js, brokertest.Logger(t))
		n, err := relay.Flush(ctx)
		if err == nil || n != 1 {
			t.Fatalf("Flush with STOCK missing = %d, %v; want 1 and an error", n, err)
		}
		if got := pending(t, db); got != 3 {
			t.Errorf("pending = %d, want 3: the failed row and every row after it", got)
		}
		run(t, relay)
		time.Sleep(300 * time.Millisecond) // the relay retries and fails meanwhile
		if got := pending(t, db); got != 3 {
			t.Errorf("pending while STOCK is missing = %d, want 3", got)
		}

		if err := broker.EnsureStreams(ctx, js, 1); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "outbox not drained", func() bool { return pending(t, db) == 0 })
		wantStreams(t, js, []broker.Event{placed, confirmed, other}, []broker.Event{reserved})
	})
}

// An event that its stream refuses (here: too large for it) is not
// overtaken in that stream by the later events of its batch, though they were
// sent before the refusal came back: each expects its predecessor to be the
// stream's last message, so the stream refuses them too. Once the stream
// takes the event, everything goes out in order, once.
func TestRelayNothingOvertakesARefusedEventInItsStream(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		srv := brokertest.Start(t)
		_, js := brokertest.Connect(t, srv.ClientURL())
		setMaxMsgSize := func(size int32) {
			t.Helper()
			s, err := js.Stream(ctx, broker.StreamOrders)
			if err != nil {
				t.Fatal(err)
			}
			cfg := s.CachedInfo().Config
			cfg.MaxMsgSize = size
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
		}
		setMaxMsgSize(4096)

		var all []broker.Event
		for i := range 6 {
			e := newEvent(t, "orders.placed", fmt.Sprintf("o%d", i%2), i)
			if i == 2 {
				big, err := broker.NewEvent("microshop/test", "orders.placed", "o0", map[string]string{"note": strings.Repeat("x", 8192)})
				if err != nil {
					t.Fatal(err)
				}
				e = big
			}
			all = append(all, e)
			change(t, db, e.Subject, e)
		}
		stock := newEvent(t, "stock.reserved", "o1", 9) // another stream, after the refused one
		change(t, db, "o1", stock)
		all = append(all, stock)

		relay := outbox.NewRelay(db, js, brokertest.Logger(t))
		n, err := relay.Flush(ctx)
		if err == nil || n != 2 {
			t.Fatalf("Flush with an event too large for ORDERS = %d, %v; want 2 and an error", n, err)
		}
		wantStreams(t, js, all[:2], []broker.Event{stock})
		if got := pending(t, db); got != 5 {
			t.Errorf("pending = %d, want 5", got)
		}

		setMaxMsgSize(-1)
		n, err = relay.Flush(ctx)
		if err != nil || n != 5 {
			t.Fatalf("Flush once ORDERS takes it = %d, %v; want 5", n, err)
		}
		wantStreams(t, js, all[:6], []broker.Event{stock})
	})
}

// Two batches and a half, the rows of two streams interleaved: each stream
// gets its events in outbox order, once.
func TestRelayDrainsMoreThanABatch(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		srv := brokertest.Start(t)
		_, js := brokertest.Connect(t, srv.ClientURL())
		var orders, stock []broker.Event
		err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
			for i := range 2*outbox.BatchSize + 30 {
				aggregate := fmt.Sprintf("o%d", i%7)
				e := newEvent(t, "orders.placed", aggregate, i)
				if i%3 == 0 {
					e = newEvent(t, "stock.reserved", aggregate, i)
					stock = append(stock, e)
				} else {
					orders = append(orders, e)
				}
				if err := outbox.Add(context.Background(), tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := outbox.NewRelay(db, js, nil).Flush(context.Background())
		if err != nil || n != len(orders)+len(stock) {
			t.Fatalf("Flush = %d, %v; want %d", n, err, len(orders)+len(stock))
		}
		wantStreams(t, js, orders, stock)
		if got := pending(t, db); got != 0 {
			t.Errorf("pending = %d, want 0", got)
		}
	})
}

func TestPrune(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		now := time.Now()
		oldSent, newSent, oldPending := newEvent(t, "orders.placed", "o1", 1), newEvent(t, "orders.placed", "o1", 2), newEvent(t, "orders.placed", "o1", 3)
		change(t, db, "o1", oldSent, newSent, oldPending)
		for _, u := range []struct {
			id string
			at time.Time
		}{{oldSent.ID, now.Add(-25 * time.Hour)}, {newSent.ID, now.Add(-23 * time.Hour)}} {
			if _, err := db.ExecContext(ctx, `UPDATE outbox SET sent_at = ? WHERE id = ?`, u.at.UTC(), u.id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `UPDATE outbox SET created_at = ? WHERE id = ?`, now.Add(-48*time.Hour).UTC(), oldPending.ID); err != nil {
			t.Fatal(err)
		}
		for _, in := range []struct {
			id string
			at time.Time
		}{{"old", now.Add(-31 * 24 * time.Hour)}, {"recent", now.Add(-29 * 24 * time.Hour)}} {
			if _, err := db.ExecContext(ctx, `INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('c', ?, ?)`, in.id, in.at.UTC()); err != nil {
				t.Fatal(err)
			}
		}

		if err := outbox.Prune(ctx, db, now); err != nil {
			t.Fatal(err)
		}
		left := func(q string) []string {
			rows, err := db.QueryContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			return out
		}
		if diff := cmp.Diff(eventIDs(newSent, oldPending), left(`SELECT id FROM outbox ORDER BY seq`)); diff != "" {
			t.Errorf("outbox after Prune (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"recent"}, left(`SELECT event_id FROM inbox ORDER BY event_id`)); diff != "" {
			t.Errorf("inbox after Prune (-want +got):\n%s", diff)
		}
	})
}
