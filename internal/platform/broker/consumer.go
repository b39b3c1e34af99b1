package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/traceparent"
)

// Consumer defaults.
const (
	// DefaultAckWait is short because consumers handle one message at a time:
	// a message held by a process that died blocks its stream until AckWait
	// ends, so it bounds the stall a crash causes. Handlers are database
	// transactions that take milliseconds, and run with AckWait as their
	// timeout, so they never outlive it.
	DefaultAckWait       = 5 * time.Second
	DefaultMaxDeliver    = 5
	DefaultMaxAckPending = 1
)

// DefaultBackoff is the wait before each retry of a failed message: before the
// second delivery 1 s, the third 5 s, the fourth 15 s, later ones 30 s.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}

// Headers a dead letter carries besides the original message's.
const (
	HeaderDLQReason     = "dlq-reason"     // why: the handler's error or the decoding error, at most 1 KiB
	HeaderDLQStream     = "dlq-stream"     // the stream the message came from
	HeaderDLQConsumer   = "dlq-consumer"   // the durable consumer that gave up
	HeaderDLQDeliveries = "dlq-deliveries" // how many times it was delivered
	HeaderDLQSubject    = "dlq-subject"    // the original subject
	HeaderDLQSequence   = "dlq-sequence"   // the original stream sequence
	HeaderDLQMsgID      = "dlq-msg-id"     // the original Nats-Msg-Id
	maxReasonLen        = 1024
)

// Pull requests last pullExpiry; the server sends a heartbeat every
// pullHeartbeat while it has nothing to deliver.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 3 * time.Second
)

// settleTimeout bounds an ack or a dead-letter publish.
const settleTimeout = 5 * time.Second

// ConsumerConfig configures a durable consumer.
type ConsumerConfig struct {
	// Stream is the stream to read, e.g. StreamOrders.
	Stream string
	// Durable is the consumer's name, shared by every replica of the service:
	// e.g. "products-reserve".
	Durable string
	// FilterSubjects limits the consumer to these subjects; empty means all
	// of the stream.
	FilterSubjects []string
	// AckWait is how long a delivered message may stay unacknowledged before
	// the server delivers it again; it also bounds one handler call. Default
	// 30 s.
	AckWait time.Duration
	// MaxDeliver is the number of deliveries after which a message whose
	// handler still fails goes to the dead-letter stream. Default 5.
	MaxDeliver int
	// Backoff is the wait before each redelivery after a failure: element i
	// after delivery i+1 fails, the last one repeating. Default DefaultBackoff.
	Backoff []time.Duration
	// MaxAckPending is how many messages may be in flight at once. The
	// default, 1, keeps the stream's order strictly, retries included, across
	// all replicas of the consumer; a higher value trades that for throughput.
	// ConsumeBatch raises it to BatchSize.
	MaxAckPending int
	// BatchSize is, for ConsumeBatch, the most messages applied in one call
	// of its batch handler. Default DefaultBatchSize.
	BatchSize int
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1
	}
	return c
}

func (c ConsumerConfig) validate() error {
	switch {
	case c.Stream == "":
		return errors.New("broker: consumer needs a stream")
	case c.Durable == "" || strings.ContainsAny(c.Durable, ".*> \t\r\n"):
		return fmt.Errorf("broker: invalid durable name %q", c.Durable)
	case c.AckWait < time.Millisecond:
		return fmt.Errorf("broker: ack wait %s too short", c.AckWait)
	case c.MaxDeliver < 1:
		return fmt.Errorf("broker: max deliver must be at least 1, not %d", c.MaxDeliver)
	case c.MaxAckPending < 1:
		return fmt.Errorf("broker: max ack pending must be at least 1, not %d", c.MaxAckPending)
	case c.BatchSize < 1 || c.BatchSize > MaxBatchSize:
		return fmt.Errorf("broker: batch size must be between 1 and %d, not %d", MaxBatchSize, c.BatchSize)
	}
	for _, d := range c.Backoff {
		if d < 0 {
			return fmt.Errorf("broker: negative backoff %s", d)
		}
	}
	return nil
}

// jsConfig is the server-side configuration. MaxDeliver is unlimited on the
// server and enforced here: a server-side limit drops, silently, a message
// whose last delivery was never acknowledged (its consumer died holding it),
// where this package dead-letters it on the next delivery that fails.
func (c ConsumerConfig) jsConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        c.Durable,
		Description:    "microshop consumer of " + c.Stream,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		MaxDeliver:     -1,
		FilterSubjects: c.FilterSubjects,
		MaxAckPending:  c.MaxAckPending,
	}
}

// backoff is the wait after the delivered-th delivery failed.
func (c ConsumerConfig) backoff(delivered uint64) time.Duration {
	i := int(min(delivered, uint64(len(c.Backoff)))) - 1
	return c.Backoff[max(i, 0)]
}

// Consume creates (or updates) the durable pull consumer cfg on the stream and
// hands each of its messages, one at a time, to handle:
//
//   - handle returns nil: the message is acknowledged (and the ack confirmed);
//   - handle returns an error: the message is redelivered after cfg.Backoff;
//     once it has been delivered cfg.MaxDeliver times and fails again, or at
//     once when the error wraps ErrPermanent, it is copied to the dead-letter
//     stream under DLQSubject(stream, durable) with the dlq-* headers and
//     terminated, so it blocks nothing;
//   - a message that is not a valid event goes to the dead-letter stream at once.
//
// A handler may see an event more than once (after a crash, a lost ack or a
// timeout): it must be idempotent, which the outbox package's inbox provides.
// A panic in handle counts as an error. The loop survives broker restarts and
// reconnects. It runs until ctx is done or stop is called; stop waits for the
// handler in progress, whose context it cancels, and leaves that message
// unacknowledged for redelivery.
func Consume(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, handle func(ctx context.Context, e Event) error, log *slog.Logger) (stop func(), err error) {
	cfg.BatchSize = 1
	return consume(ctx, js, cfg, nil, handle, log)
}

func consume(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, handleBatch func(ctx context.Context, es []Event) error, handle func(ctx context.Context, e Event) error, log *slog.Logger) (stop func(), err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if handle == nil {
		return nil, errors.New("broker: consumer needs a handler")
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, cfg.jsConfig())
	if err != nil {
		return nil, fmt.Errorf("broker: consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &consumer{
		js:          js,
		cfg:         cfg,
		handle:      handle,
		handleBatch: handleBatch,
		log:         orDiscard(log).With("component", "consumer", "stream", cfg.Stream, "consumer", cfg.Durable),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run(ctx, cons)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}, nil
}

type consumer struct {
	js          jetstream.JetStream
	cfg         ConsumerConfig
	handle      func(ctx context.Context, e Event) error
	handleBatch func(ctx context.Context, es []Event) error // ConsumeBatch only
	log         *slog.Logger
}

// run reads messages until ctx is done. When the message iterator ends (the
// consumer was deleted, the server lost its state), it recreates the consumer
// and goes on, with backoff.
func (c *consumer) run(ctx context.Context, cons jetstream.Consumer) {
	wait := reconnectMin
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			cons, err = c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.cfg.jsConfig())
			if err != nil {
				if c.closed() {
					c.log.Warn("connection closed, consumer stops")
					return
				}
				c.log.Warn("cannot create consumer, retrying", "err", err, "in", wait)
				if !sleep(ctx, wait) {
					return
				}
				wait = min(2*wait, reconnectMax)
				continue
			}
		}
		// Short pulls with heartbeats: when the server stops answering for
		// this consumer (deleted, or lost), Next fails within seconds and the
		// consumer is created again.
		it, err := cons.Messages(
			jetstream.PullMaxMessages(min(c.cfg.MaxAckPending, 100)),
			jetstream.PullExpiry(pullExpiry),
			jetstream.PullHeartbeat(pullHeartbeat),
			jetstream.WithMessagesErrOnMissingHeartbeat(true))
		if err != nil {
			c.log.Warn("cannot read messages, retrying", "err", err, "in", wait)
			cons = nil
			if !sleep(ctx, wait) {
				return
			}
			wait = min(2*wait, reconnectMax)
			continue
		}
		drain := c.drain
		if c.handleBatch != nil {
			drain = c.drainBatches
		}
		if drain(ctx, it) {
			wait = reconnectMin
		}
		it.Stop()
		cons = nil
		if c.closed() {
			if ctx.Err() == nil {
				c.log.Warn("connection closed, consumer stops")
			}
			return
		}
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, reconnectMax)
	}
}

func (c *consumer) closed() bool {
	nc := c.js.Conn()
	return nc == nil || nc.IsClosed()
}

// drain handles messages until the iterator fails or ctx is done. It reports
// whether it handled any message.
func (c *consumer) drain(ctx context.Context, it jetstream.MessagesContext) (progress bool) {
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() == nil && !errClosed(err) {
				c.log.Warn("message iterator ended, restarting the consumer", "err", err)
			}
			return progress
		}
		progress = true
		c.process(ctx, msg)
	}
}

// process settles one message: ack, nak with delay, or dead letter.
func (c *consumer) process(ctx context.Context, msg jetstream.Msg) {
	d := c.decode(ctx, msg) // dead-letters what is no event
	if d == nil {
		return
	}
	meta, e, log := d.meta, d.event, d.log
	hctx, cancel := context.WithTimeout(traceparent.With(ctx, traceparent.Continue(e.TraceParent)), c.cfg.AckWait)
	err := c.call(hctx, e)
	cancel()
	switch {
	case err == nil:
		// The effect is committed: confirm the ack even if stop was called.
		if aerr := ack(ctx, msg); aerr != nil {
			// The effect is done; the redelivery that follows a lost ack
			// finds the event in the handler's inbox.
			log.Warn("ack not confirmed, the event may be redelivered", "err", aerr)
		}
	case ctx.Err() != nil:
		// Stopping: leave the message unacknowledged; it is redelivered
		// after AckWait to whichever instance of the consumer is alive.
		log.Info("consumer stopped during the handler, message left for redelivery")
	case errors.Is(err, ErrPermanent):
		log.Error("handler failed permanently, dead-lettering the event", "err", err)
		c.deadLetter(ctx, msg, meta, log, err.Error())
	case meta.NumDelivered >= uint64(c.cfg.MaxDeliver):
		log.Error("handler failed on the last delivery, dead-lettering the event", "err", err, "max_deliver", c.cfg.MaxDeliver)
		c.deadLetter(ctx, msg, meta, log, err.Error())
	default:
		delay := c.cfg.backoff(meta.NumDelivered)
		log.Warn("handler failed, retrying", "err", err, "in", delay)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak failed; the message comes back after the ack wait", "err", nerr)
		}
	}
}

// ack acknowledges msg and waits for the server to confirm, trying again for
// a few seconds: right after a server restart an ack can find no responder.
func ack(ctx context.Context, msg jetstream.Msg) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := msg.DoubleAck(ctx)
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) || errClosed(err) {
			return err
		}
		if !sleep(ctx, wait) {
			return err
		}
		wait = min(2*wait, time.Second)
	}
}

// call runs the handler, turning a panic into an error.
func (c *consumer) call(ctx context.Context, e Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("handler panicked", "event_id", e.ID, "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return c.handle(ctx, e)
}

// deadLetter copies msg to the dead-letter stream with the reason, then
// terminates it. When the copy cannot be stored the message is retried later
// instead: it is never dropped.
func (c *consumer) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, log *slog.Logger, reason string) {
	dl := DeadLetter(msg.Subject(), msg.Headers(), msg.Data(), DeadLetterInfo{
		Stream:     c.cfg.Stream,
		Consumer:   c.cfg.Durable,
		Deliveries: meta.NumDelivered,
		Sequence:   meta.Sequence.Stream,
		Reason:     reason,
	})
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	_, err := c.js.PublishMsg(pctx, dl)
	if errors.Is(err, nats.ErrMaxPayload) {
		// The copy with our headers is too big: keep the headers, drop the body.
		dl.Data = nil
		dl.Header.Set("dlq-truncated", "true")
		_, err = c.js.PublishMsg(pctx, dl)
	}
	cancel()
	if err != nil {
		delay := c.cfg.backoff(meta.NumDelivered)
		log.Error("cannot dead-letter the message, retrying", "err", err, "in", delay)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak failed; the message comes back after the ack wait", "err", nerr)
		}
		return
	}
	if err := msg.TermWithReason("dead-lettered"); err != nil {
		log.Warn("term failed; the message comes back and is dead-lettered again (deduplicated)", "err", err)
	}
}

// DeadLetterInfo is what a dead letter records about its message.
type DeadLetterInfo struct {
	Stream, Consumer string
	Deliveries       uint64
	Sequence         uint64 // in Stream
	Reason           string
}

// DeadLetter builds the dead-letter message for a message of subject with
// headers h and body data: the original headers (except NATS's own, "Nats-*")
// and body, the dlq-* headers, and a Nats-Msg-Id of stream, consumer and
// sequence, so that a second copy of the same dead letter is deduplicated.
func DeadLetter(subject string, h nats.Header, data []byte, info DeadLetterInfo) *nats.Msg {
	m := nats.NewMsg(DLQSubject(info.Stream, info.Consumer))
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		m.Header[k] = append([]string(nil), v...)
	}
	if id := h.Get(HeaderMsgID); id != "" {
		m.Header.Set(HeaderDLQMsgID, headerValue(id, maxReasonLen))
	}
	m.Header.Set(HeaderDLQReason, headerValue(info.Reason, maxReasonLen))
	m.Header.Set(HeaderDLQStream, info.Stream)
	m.Header.Set(HeaderDLQConsumer, info.Consumer)
	m.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(info.Deliveries, 10))
	m.Header.Set(HeaderDLQSubject, headerValue(subject, maxReasonLen))
	m.Header.Set(HeaderDLQSequence, strconv.FormatUint(info.Sequence, 10))
	m.Header.Set(HeaderMsgID, fmt.Sprintf("dlq.%s.%s.%d", info.Stream, info.Consumer, info.Sequence))
	m.Data = data
	return m
}

// headerValue makes s safe as a header value: control characters become
// spaces, and it is cut to at most max bytes on a character boundary.
func headerValue(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
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
