package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/traceparent"
)

// Batch sizes of ConsumeBatch.
const (
	// DefaultBatchSize is the most messages applied together by default:
	// enough to share a commit among the events of a burst, small enough that
	// a batch stays far within the ack wait.
	DefaultBatchSize = 64
	// MaxBatchSize bounds ConsumerConfig.BatchSize.
	MaxBatchSize = 256
)

// ConsumeBatch is Consume for handlers that can apply several events at once,
// typically in one database transaction (outbox.Batch): one commit, and one
// fsync, for all the messages that are waiting instead of one each.
//
// Whenever messages are waiting it hands up to cfg.BatchSize of them, in
// stream order, to handleBatch (default DefaultBatchSize; cfg.MaxAckPending
// is raised to it). When handleBatch returns nil, every message of the batch
// is acknowledged. When it fails (or panics), nothing of the batch may be
// kept, and each of its messages is applied again alone with handle, in
// order, so that one bad message fails alone:
//
//   - handle returns nil: the message is acknowledged;
//   - an error wrapping ErrPermanent, or a failure of the last of
//     cfg.MaxDeliver attempts: the message goes to the dead-letter stream, as
//     with Consume, and the next one is applied;
//   - another error: the consumer keeps the message and those after it
//     (telling the server they are in progress), waits cfg.Backoff, and
//     applies it again.
//
// Retrying in place rather than asking the server to redeliver keeps the
// stream's order within the process, retries included: no later message is
// applied before an earlier one has been applied or dead-lettered. (Across
// replicas of a consumer, batches may run concurrently; handlers must be
// idempotent and, between replicas, tolerate reordering as with
// MaxAckPending > 1.) Messages that are not valid events go to the
// dead-letter stream at once and do not join a batch. A handler's context
// ends after cfg.AckWait; stop behaves as with Consume, and leaves the
// messages of the batch in progress unacknowledged.
func ConsumeBatch(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, handleBatch func(ctx context.Context, es []Event) error, handle func(ctx context.Context, e Event) error, log *slog.Logger) (stop func(), err error) {
	if handleBatch == nil {
		return nil, errors.New("broker: batch consumer needs a batch handler")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	cfg.MaxAckPending = max(cfg.MaxAckPending, cfg.BatchSize)
	return consume(ctx, js, cfg, handleBatch, handle, log)
}

// delivery is a message of a batch with what was decoded from it.
type delivery struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	event    Event
	attempts uint64 // deliveries plus retries in place
	log      *slog.Logger
}

// inbox receives the messages of one iterator, in order, from a goroutine
// that reads it ahead; queue holds those received but not yet settled.
type inbox struct {
	msgs   chan jetstream.Msg
	closed bool
	queue  []jetstream.Msg
}

// drainBatches is drain for ConsumeBatch.
func (c *consumer) drainBatches(ctx context.Context, it jetstream.MessagesContext) (progress bool) {
	rctx, cancel := context.WithCancel(ctx)
	in := &inbox{msgs: make(chan jetstream.Msg, c.cfg.BatchSize)}
	var errOut error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(in.msgs)
		for {
			msg, err := it.Next(jetstream.NextContext(rctx))
			if err != nil {
				errOut = err
				return
			}
			select {
			case in.msgs <- msg:
			case <-rctx.Done():
				return // left unacknowledged: redelivered after the ack wait
			}
		}
	})
	defer func() {
		cancel()
		for range in.msgs { // let the reader finish
		}
		wg.Wait()
		if ctx.Err() == nil && errOut != nil && !errClosed(errOut) {
			c.log.Warn("message iterator ended, restarting the consumer", "err", errOut)
		}
	}()
	for ctx.Err() == nil {
		if len(in.queue) == 0 && !in.wait(ctx) {
			return progress
		}
		in.take(c.cfg.BatchSize)
		n := min(len(in.queue), c.cfg.BatchSize)
		batch := in.queue[:n:n]
		in.queue = in.queue[n:]
		progress = true
		if !c.processBatch(ctx, batch, in) {
			return progress
		}
	}
	return progress
}

// wait blocks for the next message; false when the iterator ended or ctx is done.
func (in *inbox) wait(ctx context.Context) bool {
	if in.closed {
		return false
	}
	select {
	case msg, ok := <-in.msgs:
		if !ok {
			in.closed = true
			return false
		}
		in.queue = append(in.queue, msg)
		return true
	case <-ctx.Done():
		return false
	}
}

// take moves the messages that have arrived into the queue, up to n queued,
// without waiting.
func (in *inbox) take(n int) {
	for !in.closed && len(in.queue) < n {
		select {
		case msg, ok := <-in.msgs:
			if !ok {
				in.closed = true
				return
			}
			in.queue = append(in.queue, msg)
		default:
			return
		}
	}
}

// processBatch settles the messages of batch; false when stopping.
func (c *consumer) processBatch(ctx context.Context, batch []jetstream.Msg, in *inbox) bool {
	// Applying a batch, or its messages one by one after it failed, can take
	// longer than the ack wait: keep every message of the batch in progress
	// meanwhile, or the server redelivers them (counting towards MaxDeliver)
	// while they are still being applied. Settled ones ignore it.
	defer c.keepInProgress(batch)()
	var ds []*delivery
	for _, msg := range batch {
		if d := c.decode(ctx, msg); d != nil {
			ds = append(ds, d)
		}
	}
	if len(ds) > 1 {
		events := make([]Event, len(ds))
		for i, d := range ds {
			events[i] = d.event
		}
		hctx, cancel := context.WithTimeout(traceparent.With(ctx, traceparent.Continue(events[0].TraceParent)), c.cfg.AckWait)
		err := c.callBatch(hctx, events)
		cancel()
		if err == nil {
			c.ackAll(ctx, ds)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.log.Warn("batch failed, applying its events one by one", "events", len(ds), "err", err)
	}
	for i, d := range ds {
		if !c.settle(ctx, d, ds[i+1:], in) {
			return false
		}
	}
	return true
}

// keepInProgress tells the server every half ack wait that msgs are still
// being worked on, until the returned stop is called.
func (c *consumer) keepInProgress(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(c.cfg.AckWait / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress() // an acknowledged or terminated message refuses it: nothing to do
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// decode reads msg's event; a message that is none is dead-lettered (nil),
// one without JetStream metadata logged and left (nil).
func (c *consumer) decode(ctx context.Context, msg jetstream.Msg) *delivery {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without JetStream metadata", "subject", msg.Subject(), "err", err)
		return nil
	}
	log := c.log.With("subject", msg.Subject(), "seq", meta.Sequence.Stream, "delivery", meta.NumDelivered)
	e, err := DecodeJetStream(msg)
	if err == nil && e.Type != msg.Subject() {
		err = fmt.Errorf("broker: event type %q published on subject %q", e.Type, msg.Subject())
	}
	if err != nil {
		log.Error("undecodable message, dead-lettering it", "err", err)
		c.deadLetter(ctx, msg, meta, log, "undecodable: "+err.Error())
		return nil
	}
	return &delivery{msg: msg, meta: meta, event: e, attempts: meta.NumDelivered,
		log: log.With("event_id", e.ID, "event_type", e.Type, "event_subject", e.Subject)}
}

// settle applies d alone until it is acknowledged or dead-lettered, holding
// later (the messages after it) meanwhile; false when stopping.
func (c *consumer) settle(ctx context.Context, d *delivery, later []*delivery, in *inbox) bool {
	for {
		hctx, cancel := context.WithTimeout(traceparent.With(ctx, traceparent.Continue(d.event.TraceParent)), c.cfg.AckWait)
		err := c.call(hctx, d.event)
		cancel()
		switch {
		case err == nil:
			if aerr := ack(ctx, d.msg); aerr != nil {
				d.log.Warn("ack not confirmed, the event may be redelivered", "err", aerr)
			}
			return true
		case ctx.Err() != nil:
			d.log.Info("consumer stopped during the handler, message left for redelivery")
			return false
		case errors.Is(err, ErrPermanent):
			d.log.Error("handler failed permanently, dead-lettering the event", "err", err)
		case d.attempts >= uint64(c.cfg.MaxDeliver):
			d.log.Error("handler failed on the last attempt, dead-lettering the event", "err", err, "max_deliver", c.cfg.MaxDeliver)
		default:
			delay := c.cfg.backoff(d.attempts)
			d.log.Warn("handler failed, retrying", "err", err, "in", delay, "attempt", d.attempts)
			if !c.hold(ctx, delay, d, later, in) {
				return false
			}
			d.attempts++
			continue
		}
		meta := *d.meta
		meta.NumDelivered = d.attempts
		c.deadLetter(ctx, d.msg, &meta, d.log, err.Error())
		return true
	}
}

// hold waits d, telling the server every half ack wait that d's message,
// those of later and those that arrive meanwhile (queued in in, for after
// the batch) are still in progress; false when stopping.
func (c *consumer) hold(ctx context.Context, wait time.Duration, d *delivery, later []*delivery, in *inbox) bool {
	end := time.Now().Add(wait)
	for {
		in.take(MaxBatchSize * 4)
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		if !sleep(ctx, min(left, c.cfg.AckWait/2)) {
			return false
		}
		if time.Now().Before(end) {
			c.inProgress(d, later, in.queue)
		}
	}
}

func (c *consumer) inProgress(d *delivery, later []*delivery, queued []jetstream.Msg) {
	msgs := []jetstream.Msg{d.msg}
	for _, l := range later {
		msgs = append(msgs, l.msg)
	}
	msgs = append(msgs, queued...)
	for _, m := range msgs {
		if err := m.InProgress(); err != nil {
			c.log.Warn("cannot extend the ack wait of a held message", "err", err)
		}
	}
}

// ackAll acknowledges the messages of an applied batch, concurrently.
func (c *consumer) ackAll(ctx context.Context, ds []*delivery) {
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() {
			if err := ack(ctx, d.msg); err != nil {
				d.log.Warn("ack not confirmed, the event may be redelivered", "err", err)
			}
		})
	}
	wg.Wait()
}

// callBatch runs the batch handler, turning a panic into an error.
func (c *consumer) callBatch(ctx context.Context, es []Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("batch handler panicked", "events", len(es), "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("batch handler panicked: %v", v)
		}
	}()
	return c.handleBatch(ctx, es)
}
