// Package outbox publishes a service's events reliably (a transactional outbox)
// and lets its consumers apply each event once (an inbox).
//
// A service never publishes inside a request. It writes the event with Add in
// the same transaction as the state change the event announces, so both
// commit or neither does; the Relay then publishes committed events to
// JetStream in the order they were written, with Nats-Msg-Id = event id, and
// marks them sent. A consumer wraps its handler with Idempotent (or calls Seen)
// so that the event id is recorded in the inbox in the same transaction as the
// handler's effect: a redelivered event changes nothing.
//
// Together: an event is never lost (it is committed with its cause and kept
// until the broker has acknowledged it) and never applied twice (the broker
// drops a second publish within its duplicate window, the inbox any later one).
//
// The tables come from Migrations, applied next to the service's own.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/traceparent"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the migrations of the outbox and inbox tables, for
// sqldb.Migrate; they are named outbox_NNNN so that they never clash with a
// service's own NNNN_name versions.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Add writes e to the outbox in the caller's transaction: it is published
// only if, and once, tx commits. Call Relay.Kick after the commit so that it
// goes out at once.
//
// Within one aggregate, events go out in the order they were added. On
// PostgreSQL, where transactions run concurrently, that is the order of their
// commits only if each transaction changes (and so locks) the aggregate's row
// before it adds the event: make the state change first, then Add.
func Add(ctx context.Context, tx *sqldb.Tx, e broker.Event) error {
	if e.TraceParent == "" { // the event belongs to the trace of the work that caused it
		if tp := traceparent.From(ctx); traceparent.Valid(tp) {
			e.TraceParent = traceparent.Continue(tp)
		}
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if _, ok := broker.StreamFor(e.Type); !ok {
		return fmt.Errorf("outbox: no stream stores events of type %q", e.Type)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox
		(id, source, type, aggregate, event_time, schema_version, traceparent, payload, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.Source, e.Type, e.Subject, e.Time.UTC().Format(time.RFC3339Nano), e.DataSchemaVersion,
		e.TraceParent, []byte(e.Data), time.Now().UTC())
	if err != nil {
		if sqldb.IsUniqueViolation(err) {
			return fmt.Errorf("outbox: event %s added twice", e.ID)
		}
		return fmt.Errorf("outbox: add %s: %w", e.Type, err)
	}
	return nil
}

// Relay settings.
const (
	// BatchSize is the number of pending rows read, published (pipelined)
	// and marked sent at once.
	BatchSize = 256
	// PollInterval is how often the relay looks for rows when not kicked.
	PollInterval = 200 * time.Millisecond
	// MinBackoff and MaxBackoff bound the wait after a failure (the broker
	// or the database is down), doubling in between.
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second
	// SentRetention is how long published rows are kept, for inspection.
	SentRetention = 24 * time.Hour
	// InboxRetention is how long processed event ids are remembered. It must
	// exceed how far back a redelivery or a replay can reach: the streams
	// keep events for broker.EventRetention.
	InboxRetention = 30 * 24 * time.Hour
	// pruneInterval is how often Run prunes old rows.
	pruneInterval = 10 * time.Minute
	// publishTimeout bounds the wait for the next PubAck of a batch.
	publishTimeout = 5 * time.Second
)

// Relay publishes the outbox's committed events to JetStream, in seq order,
// a batch at a time: the batch's publishes are pipelined (sent without
// waiting for each other's acknowledgement) and the acknowledged rows are
// marked sent in one statement (ADR 13).
//
// If a publish fails, only the rows before it are marked sent and the relay
// starts again from it, with backoff: no event overtakes an earlier one in
// its stream, and nothing is dropped while the broker is down. A row published but not yet
// marked sent when the process dies is published again: JetStream drops the
// copy within its duplicate window, consumers' inboxes after it. Several
// relays on one database (replicas of a service) are safe for the same
// reasons, though they do the work twice.
type Relay struct {
	db   *sqldb.DB
	js   jetstream.JetStream
	log  *slog.Logger
	kick chan struct{}
	mu   sync.Mutex // one flush at a time
}

// NewRelay returns a relay from db's outbox to js. log may be nil.
func NewRelay(db *sqldb.DB, js jetstream.JetStream, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{db: db, js: js, log: log.With("component", "outbox-relay"), kick: make(chan struct{}, 1)}
}

// Kick wakes the relay at once; call it after committing a transaction that
// added events. It never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes pending events until ctx is done: at once when kicked, else
// every PollInterval; after a failure it waits MinBackoff, doubling up to
// MaxBackoff. It also deletes rows sent more than SentRetention ago and inbox
// entries older than InboxRetention, every few minutes.
func (r *Relay) Run(ctx context.Context) {
	backoff := time.Duration(0)
	nextPrune := time.Now()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		if !time.Now().Before(nextPrune) {
			if err := Prune(ctx, r.db, time.Now()); err != nil && ctx.Err() == nil {
				r.log.Warn("cannot prune the outbox and inbox", "err", err)
			}
			nextPrune = time.Now().Add(pruneInterval)
		}
		n, err := r.flushBatch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			backoff = min(max(2*backoff, MinBackoff), MaxBackoff)
			r.log.Warn("cannot publish the outbox; rows kept, retrying", "err", err, "published", n, "in", backoff)
			// Kicks are ignored while backing off: they would only hammer a
			// broker that is down.
			if !sleep(ctx, backoff) {
				return
			}
			continue
		}
		if backoff > 0 {
			r.log.Info("outbox publishing again")
			backoff = 0
		}
		if n == BatchSize {
			continue // more are waiting
		}
		poll.Reset(PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-poll.C:
		}
	}
}

// Flush publishes every pending event now, as Run does, and returns how many
// it published. It stops at the first failure.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.flushBatch(ctx)
		total += n
		if err != nil || n < BatchSize {
			return total, err
		}
	}
}

// Pending returns the number of events not yet published: the backlog.
func (r *Relay) Pending(ctx context.Context) (int, error) {
	return Pending(ctx, r.db)
}

// Pending returns the number of events in db's outbox not yet published.
func Pending(ctx context.Context, db *sqldb.DB) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox: count pending: %w", err)
	}
	return n, nil
}

type row struct {
	seq   int64
	event broker.Event
}

// flushBatch publishes up to BatchSize pending rows in seq order and marks
// the acknowledged prefix sent, in one statement. The publishes are
// pipelined (see publishBatch); the first failure ends the prefix and is
// returned, and the relay starts again from that row.
func (r *Relay) flushBatch(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows, err := r.pending(ctx)
	if err != nil {
		return 0, err
	}
	acked, perr := r.publishBatch(ctx, rows)
	if err := r.markSent(ctx, rows[:acked]); err != nil {
		// Published, not marked: they go out again, and are deduplicated.
		return 0, err
	}
	return acked, perr
}

// publishBatch publishes rows, in order, without waiting between them, then
// waits for every acknowledgement (giving up when none has come for
// publishTimeout: the stream stores, and syncs, one message after the other,
// so a large batch on a slow disk takes longer than one publish). It returns
// the number of rows at the head of rows that JetStream acknowledged and the
// first failure, if any.
//
// Within one stream, each publish but the first of the batch expects the
// stream's last message to be the previous row of that stream
// (Nats-Expected-Last-Msg-Id), so when one is not stored no later one of the
// batch is stored in that stream either: nothing overtakes an event that
// failed, even when the failure is on the server's side or in flight. Rows of
// other streams after a failed one may be stored (and are published again,
// as duplicates, on the retry): no consumer can tell, each reads one stream.
// Retries of a publish that found no stream are off, as a retry would land
// after later publishes.
func (r *Relay) publishBatch(ctx context.Context, rows []row) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	var failure error
	lastID := map[string]string{} // stream → id of its last row in this batch
	for _, rw := range rows {
		stream, ok := broker.StreamFor(rw.event.Type)
		if !ok {
			failure = rowError(rw, fmt.Errorf("no stream stores %q", rw.event.Type))
			break
		}
		opts := []jetstream.PublishOpt{jetstream.WithExpectStream(stream), jetstream.WithRetryAttempts(0)}
		if prev, ok := lastID[stream]; ok {
			opts = append(opts, jetstream.WithExpectLastMsgID(prev))
		}
		f, err := r.js.PublishMsgAsync(broker.Encode(rw.event), opts...)
		if err != nil { // not sent at all (disconnected, for example): nor are the next
			failure = rowError(rw, err)
			break
		}
		lastID[stream] = rw.event.ID
		futures = append(futures, f)
	}

	// Wait for every acknowledgement, even after a failure, so that no publish
	// of this batch is still in flight when the retry begins; except when one
	// gives no answer in time (or ctx ends): then the rest are abandoned, and a
	// late one does no harm, since a retry's copy is dropped as a duplicate
	// (Nats-Msg-Id) and the expected-last-id chain refuses anything that would
	// overtake a publish that was not stored.
	deadline := time.NewTimer(publishTimeout)
	defer deadline.Stop()
	acked := 0
	var first error // the first failure among the futures
	for i, f := range futures {
		var err error
		late := false
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				r.log.Debug("event was already published", "event_id", rows[i].event.ID, "stream_seq", ack.Sequence)
			}
			deadline.Reset(publishTimeout)
		case err = <-f.Err():
			deadline.Reset(publishTimeout)
		case <-deadline.C:
			err, late = fmt.Errorf("no acknowledgement for %s", publishTimeout), true
		case <-ctx.Done():
			err, late = context.Cause(ctx), true
		}
		if err != nil && first == nil {
			first = rowError(rows[i], err)
		}
		if late {
			break // the others are not waited for either
		}
		if first == nil {
			acked++
		}
	}
	if first != nil {
		return acked, first
	}
	return acked, failure
}

func rowError(rw row, err error) error {
	return fmt.Errorf("publish event %s (seq %d, %s): %w", rw.event.ID, rw.seq, rw.event.Type, err)
}

func (r *Relay) pending(ctx context.Context) ([]row, error) {
	rs, err := r.db.QueryContext(ctx, `SELECT seq, id, source, type, aggregate, event_time, schema_version, traceparent, payload
		FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?`, BatchSize)
	if err != nil {
		return nil, fmt.Errorf("outbox: read pending: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var rw row
		var ts string
		var payload []byte
		e := &rw.event
		if err := rs.Scan(&rw.seq, &e.ID, &e.Source, &e.Type, &e.Subject, &ts, &e.DataSchemaVersion, &e.TraceParent, &payload); err != nil {
			return nil, fmt.Errorf("outbox: read pending: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			// Add never writes this: stop here rather than skip the row.
			return nil, fmt.Errorf("outbox: row %d has event time %q: %w", rw.seq, ts, err)
		}
		e.Time = t.UTC()
		e.Data = json.RawMessage(payload)
		out = append(out, rw)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: read pending: %w", err)
	}
	return out, nil
}

func (r *Relay) markSent(ctx context.Context, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	// Mark even if ctx ended meanwhile: the events are out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	args := make([]any, 0, len(rows)+1)
	args = append(args, time.Now().UTC())
	for _, rw := range rows {
		args = append(args, rw.seq)
	}
	q := `UPDATE outbox SET sent_at = ? WHERE seq IN (?` + strings.Repeat(", ?", len(rows)-1) + `)`
	if _, err := r.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("outbox: mark %d events sent: %w", len(rows), err)
	}
	return nil
}

// Prune deletes outbox rows sent more than SentRetention before now and inbox
// entries processed more than InboxRetention before now. Pending rows are
// never deleted.
func Prune(ctx context.Context, db *sqldb.DB, now time.Time) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?`,
		now.Add(-SentRetention).UTC()); err != nil {
		return fmt.Errorf("outbox: prune sent rows: %w", err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM inbox WHERE processed_at < ?`,
		now.Add(-InboxRetention).UTC()); err != nil {
		return fmt.Errorf("outbox: prune inbox: %w", err)
	}
	return nil
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
