package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
)

// delivery is one call of a handler.
type delivery struct {
	ID      string
	Subject string
}

// recorder is a handler that records its calls and answers with fail.
type recorder struct {
	mu    sync.Mutex
	calls []delivery
	fail  func(e broker.Event, attempt int) error // nil: succeed
}

func (r *recorder) handle(_ context.Context, e broker.Event) error {
	r.mu.Lock()
	r.calls = append(r.calls, delivery{e.ID, e.Subject})
	attempt := 0
	for _, c := range r.calls {
		if c.ID == e.ID {
			attempt++
		}
	}
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail(e, attempt)
	}
	return nil
}

func (r *recorder) got() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.calls...)
}

// consume starts a consumer on ORDERS and stops it when the test ends.
func consume(t *testing.T, js jetstream.JetStream, cfg broker.ConsumerConfig, handle func(context.Context, broker.Event) error) func() {
	t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = broker.StreamOrders
	}
	if cfg.Durable == "" {
		cfg.Durable = "test"
	}
	stop, err := broker.Consume(context.Background(), js, cfg, handle, brokertest.Logger(t))
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(stop)
	return stop
}

func consumerInfo(t *testing.T, js jetstream.JetStream, stream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// settled reports whether the consumer has nothing pending nor in flight.
func settled(t *testing.T, js jetstream.JetStream, durable string, total uint64) func() bool {
	return func() bool {
		info := consumerInfo(t, js, broker.StreamOrders, durable)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == total
	}
}

// dlqHeaders returns, per dead letter, the headers the tests look at.
func dlqHeaders(t *testing.T, js jetstream.JetStream) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, m := range brokertest.Messages(t, js, broker.StreamDLQ) {
		h := map[string]string{"subject": m.Subject}
		for _, k := range []string{"ce-id", "dlq-reason", "dlq-stream", "dlq-consumer", "dlq-deliveries", "dlq-subject", "dlq-msg-id"} {
			h[k] = m.Header.Get(k)
		}
		out = append(out, h)
	}
	return out
}

func dlqCount(t *testing.T, js jetstream.JetStream, n int) func() bool {
	return func() bool { return streamMsgs(t, js, broker.StreamDLQ) >= uint64(n) }
}

func TestConsumeAcksOnSuccess(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	var want []delivery
	for i := range 5 {
		e := event(t, "orders.placed", fmt.Sprintf("o%d", i), i)
		publish(t, js, e)
		want = append(want, delivery{e.ID, e.Subject})
	}
	rec := &recorder{}
	consume(t, js, broker.ConsumerConfig{}, rec.handle)
	eventually(t, 10*time.Second, "messages not all acked", settled(t, js, "test", 5))
	if diff := cmp.Diff(want, rec.got()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	info := consumerInfo(t, js, broker.StreamOrders, "test")
	if info.Config.AckPolicy != jetstream.AckExplicitPolicy || info.Config.AckWait != broker.DefaultAckWait || info.Config.MaxAckPending != 1 {
		t.Errorf("consumer config = %+v, want explicit acks, ack wait 30s, one in flight", info.Config)
	}
	if n := streamMsgs(t, js, broker.StreamDLQ); n != 0 {
		t.Errorf("DLQ holds %d messages, want 0", n)
	}
}

func TestConsumeFiltersSubjects(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	cancelled := event(t, "orders.cancelled", "o1", 1)
	publish(t, js, event(t, "orders.placed", "o1", 1))
	publish(t, js, cancelled)
	rec := &recorder{}
	consume(t, js, broker.ConsumerConfig{FilterSubjects: []string{"orders.cancelled"}}, rec.handle)
	eventually(t, 10*time.Second, "filtered message not handled", func() bool { return len(rec.got()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if diff := cmp.Diff([]delivery{{cancelled.ID, "o1"}}, rec.got()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

func TestConsumeRetriesThenDeadLetters(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	bad := event(t, "orders.placed", "o1", 1)
	good := event(t, "orders.placed", "o2", 2)
	publish(t, js, bad)
	publish(t, js, good)
	longReason := strings.Repeat("é", 600) // 1200 bytes: cut at 1 KiB on a character boundary
	rec := &recorder{fail: func(e broker.Event, attempt int) error {
		if e.ID == bad.ID {
			return fmt.Errorf("attempt %d: stock service down\n%s", attempt, longReason)
		}
		return nil
	}}
	start := time.Now()
	consume(t, js, broker.ConsumerConfig{MaxDeliver: 3, Backoff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}}, rec.handle)
	eventually(t, 10*time.Second, "no dead letter", dlqCount(t, js, 1))
	eventually(t, 10*time.Second, "messages not settled", settled(t, js, "test", 2))
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("three deliveries took %s, want the backoff (50ms + 100ms) respected", d)
	}

	want := []delivery{{bad.ID, "o1"}, {bad.ID, "o1"}, {bad.ID, "o1"}, {good.ID, "o2"}}
	if diff := cmp.Diff(want, rec.got()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	dl := dlqHeaders(t, js)
	if len(dl) != 1 {
		t.Fatalf("dead letters = %v, want 1", dl)
	}
	reason := dl[0]["dlq-reason"]
	if !strings.HasPrefix(reason, "attempt 3: stock service down ") || len(reason) > 1024 || len(reason) < 1020 || strings.ContainsRune(reason, '\uFFFD') {
		t.Errorf("dlq-reason = %q (%d bytes), want the last error, one line, cut to 1 KiB", reason, len(reason))
	}
	delete(dl[0], "dlq-reason")
	wantDL := map[string]string{
		"subject":        "dlq.ORDERS.test",
		"ce-id":          bad.ID,
		"dlq-stream":     "ORDERS",
		"dlq-consumer":   "test",
		"dlq-deliveries": "3",
		"dlq-subject":    "orders.placed",
		"dlq-msg-id":     bad.ID,
	}
	if diff := cmp.Diff(wantDL, dl[0]); diff != "" {
		t.Errorf("dead letter headers (-want +got):\n%s", diff)
	}
	// The dead letter is still a valid event: it can be inspected and replayed.
	m := brokertest.Messages(t, js, broker.StreamDLQ)[0]
	got, err := broker.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	if err != nil {
		t.Fatalf("decode the dead letter: %v", err)
	}
	if diff := cmp.Diff(bad, got); diff != "" {
		t.Errorf("dead-lettered event (-want +got):\n%s", diff)
	}
}

func TestConsumeDeadLettersPoisonAtOnce(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	ctx := context.Background()
	poison := []*nats.Msg{
		{Subject: "orders.placed", Data: []byte("not an event")},
		func() *nats.Msg { // a valid event published on the wrong subject
			m := broker.Encode(event(t, "orders.placed", "o0", 0))
			m.Subject = "orders.cancelled"
			return m
		}(),
	}
	for _, m := range poison {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	good := event(t, "orders.placed", "o1", 1)
	publish(t, js, good)
	rec := &recorder{}
	consume(t, js, broker.ConsumerConfig{MaxDeliver: 5}, rec.handle)
	eventually(t, 10*time.Second, "messages not settled", settled(t, js, "test", 3))
	if diff := cmp.Diff([]delivery{{good.ID, "o1"}}, rec.got()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	dl := dlqHeaders(t, js)
	if len(dl) != 2 {
		t.Fatalf("dead letters = %v, want 2", dl)
	}
	for i, want := range []string{"undecodable: broker: unsupported ce-specversion", "undecodable: broker: event type \"orders.placed\" published on subject \"orders.cancelled\""} {
		if !strings.HasPrefix(dl[i]["dlq-reason"], want) || dl[i]["dlq-deliveries"] != "1" {
			t.Errorf("dead letter %d: reason %q after %s deliveries, want %q after 1", i, dl[i]["dlq-reason"], dl[i]["dlq-deliveries"], want)
		}
	}
	if m := brokertest.Messages(t, js, broker.StreamDLQ)[0]; string(m.Data) != "not an event" {
		t.Errorf("dead letter body = %q, want the original", m.Data)
	}
}

func TestConsumePermanentErrorDeadLettersAtOnce(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	bad := event(t, "orders.placed", "o1", 1)
	good := event(t, "orders.placed", "o2", 2)
	publish(t, js, bad)
	publish(t, js, good)
	rec := &recorder{fail: func(e broker.Event, _ int) error {
		if e.ID == bad.ID {
			return fmt.Errorf("order o1 has no lines: %w", broker.ErrPermanent)
		}
		return nil
	}}
	consume(t, js, broker.ConsumerConfig{MaxDeliver: 5, Backoff: []time.Duration{time.Hour}}, rec.handle)
	eventually(t, 10*time.Second, "messages not settled", settled(t, js, "test", 2))
	if diff := cmp.Diff([]delivery{{bad.ID, "o1"}, {good.ID, "o2"}}, rec.got()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	dl := dlqHeaders(t, js)
	if len(dl) != 1 || dl[0]["dlq-reason"] != "order o1 has no lines: permanent failure" || dl[0]["dlq-deliveries"] != "1" {
		t.Errorf("dead letters = %v, want one after 1 delivery with the handler's error", dl)
	}
}

func TestConsumeRecoversFromPanic(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	e := event(t, "orders.placed", "o1", 1)
	publish(t, js, e)
	rec := &recorder{fail: func(_ broker.Event, attempt int) error {
		if attempt == 1 {
			panic("handler bug")
		}
		return nil
	}}
	consume(t, js, broker.ConsumerConfig{Backoff: []time.Duration{10 * time.Millisecond}}, rec.handle)
	eventually(t, 10*time.Second, "message not acked after the panic", settled(t, js, "test", 1))
	if got := len(rec.got()); got != 2 {
		t.Errorf("handler called %d times, want 2 (a panic, then success)", got)
	}
}

// The retry of a message comes before the messages after it: one aggregate's
// events are never reordered by a failure.
func TestConsumeKeepsOrderAcrossRetries(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	var want []delivery
	for i := range 4 {
		e := event(t, "orders.placed", "o1", i)
		publish(t, js, e)
		want = append(want, delivery{e.ID, "o1"})
	}
	first := want[0].ID
	rec := &recorder{fail: func(e broker.Event, attempt int) error {
		if e.ID == first && attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	}}
	consume(t, js, broker.ConsumerConfig{Backoff: []time.Duration{20 * time.Millisecond}}, rec.handle)
	eventually(t, 10*time.Second, "messages not settled", settled(t, js, "test", 4))
	want = append([]delivery{want[0], want[0]}, want...)
	if diff := cmp.Diff(want, rec.got()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

// A consumer that dies holding a message (before its ack) loses nothing: after
// AckWait the message goes to the next instance of the consumer.
func TestConsumeRedeliversWhenConsumerDies(t *testing.T) {
	srv := brokertest.Start(t)
	nc1, js1 := brokertest.Connect(t, srv.ClientURL())
	e := event(t, "orders.placed", "o1", 1)
	publish(t, js1, e)

	inHandler := make(chan struct{})
	var once sync.Once
	cfg := broker.ConsumerConfig{AckWait: time.Second}
	stop1 := consume(t, js1, cfg, func(ctx context.Context, _ broker.Event) error {
		once.Do(func() { close(inHandler) })
		<-ctx.Done() // hangs until the consumer dies
		return ctx.Err()
	})
	select {
	case <-inHandler:
	case <-time.After(10 * time.Second):
		t.Fatal("first consumer never got the message")
	}
	died := time.Now()
	nc1.Close() // the process dies: no ack, no nak
	stop1()

	_, js2 := brokertest.Connect(t, srv.ClientURL())
	type got struct {
		ID        string
		Redeliver bool
	}
	ch := make(chan got, 1)
	consume(t, js2, cfg, func(_ context.Context, ev broker.Event) error {
		select {
		case ch <- got{ev.ID, true}:
		default:
		}
		return nil
	})
	select {
	case g := <-ch:
		if g.ID != e.ID {
			t.Errorf("second consumer got %s, want %s", g.ID, e.ID)
		}
		if d := time.Since(died); d < 500*time.Millisecond {
			t.Errorf("redelivered after %s, before the ack wait", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not redelivered to the second consumer")
	}
	eventually(t, 10*time.Second, "message not acked by the second consumer", settled(t, js2, "test", 1))
	if n := streamMsgs(t, js2, broker.StreamDLQ); n != 0 {
		t.Errorf("DLQ holds %d messages, want 0", n)
	}
}

func TestConsumeSurvivesBrokerRestart(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	rec := &recorder{}
	consume(t, js, broker.ConsumerConfig{}, rec.handle)
	before := event(t, "orders.placed", "o1", 1)
	publish(t, js, before)
	eventually(t, 10*time.Second, "first message not handled", func() bool { return len(rec.got()) == 1 })

	dir, port := srv.Dir(), srv.Port()
	srv.Shutdown()
	brokertest.StartAt(t, dir, port)

	after := event(t, "orders.placed", "o2", 2)
	eventually(t, 20*time.Second, "cannot publish after the restart", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.PublishMsg(ctx, broker.Encode(after))
		return err == nil
	})
	eventually(t, 30*time.Second, "message published after the restart not handled", func() bool { return len(rec.got()) >= 2 })
	eventually(t, 10*time.Second, "message not acked after the restart", settled(t, js, "test", 2))
	if diff := cmp.Diff([]delivery{{before.ID, "o1"}, {after.ID, "o2"}}, rec.got()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

// A consumer deleted on the server (by an operator, or lost with the server's
// state) is created again, and messages flow on.
func TestConsumeRecreatesDeletedConsumer(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	rec := &recorder{}
	consume(t, js, broker.ConsumerConfig{}, rec.handle)
	first := event(t, "orders.placed", "o1", 1)
	publish(t, js, first)
	eventually(t, 10*time.Second, "first message not handled", func() bool { return len(rec.got()) == 1 })
	if err := js.DeleteConsumer(context.Background(), broker.StreamOrders, "test"); err != nil {
		t.Fatal(err)
	}
	second := event(t, "orders.placed", "o2", 2)
	publish(t, js, second)
	// The new consumer starts from the beginning of the stream: the first
	// event comes again (consumers are idempotent), then the second.
	eventually(t, 20*time.Second, "message after the deletion not handled", func() bool {
		got := rec.got()
		return len(got) > 0 && got[len(got)-1].ID == second.ID
	})
	eventually(t, 10*time.Second, "messages not acked by the new consumer", settled(t, js, "test", 2))
}

func TestConsumeRejectsConfig(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	ok := func(context.Context, broker.Event) error { return nil }
	tests := []struct {
		name   string
		cfg    broker.ConsumerConfig
		handle func(context.Context, broker.Event) error
	}{
		{"no stream", broker.ConsumerConfig{Durable: "d"}, ok},
		{"no durable", broker.ConsumerConfig{Stream: broker.StreamOrders}, ok},
		{"durable with a dot", broker.ConsumerConfig{Stream: broker.StreamOrders, Durable: "a.b"}, ok},
		{"negative max deliver", broker.ConsumerConfig{Stream: broker.StreamOrders, Durable: "d", MaxDeliver: -1}, ok},
		{"negative backoff", broker.ConsumerConfig{Stream: broker.StreamOrders, Durable: "d", Backoff: []time.Duration{-1}}, ok},
		{"no handler", broker.ConsumerConfig{Stream: broker.StreamOrders, Durable: "d"}, nil},
		{"unknown stream", broker.ConsumerConfig{Stream: "NOPE", Durable: "d"}, ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop, err := broker.Consume(context.Background(), js, tt.cfg, tt.handle, nil)
			if err == nil {
				stop()
				t.Errorf("Consume = nil error, want one")
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	h := nats.Header{
		"ce-id":                {"e1"},
		"Nats-Msg-Id":          {"e1"},
		"Nats-Expected-Stream": {"ORDERS"},
		"custom":               {"a", "b"},
	}
	m := broker.DeadLetter("orders.placed", h, []byte(`{}`), broker.DeadLetterInfo{
		Stream: "ORDERS", Consumer: "c", Deliveries: 5, Sequence: 42, Reason: "bad\r\nnews\x00",
	})
	want := nats.Header{
		"ce-id":          {"e1"},
		"custom":         {"a", "b"},
		"dlq-msg-id":     {"e1"},
		"dlq-reason":     {"bad  news "},
		"dlq-stream":     {"ORDERS"},
		"dlq-consumer":   {"c"},
		"dlq-deliveries": {"5"},
		"dlq-subject":    {"orders.placed"},
		"dlq-sequence":   {"42"},
		"Nats-Msg-Id":    {"dlq.ORDERS.c.42"},
	}
	if diff := cmp.Diff(want, m.Header); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if m.Subject != "dlq.ORDERS.c" || string(m.Data) != "{}" {
		t.Errorf("dead letter = %s %q, want dlq.ORDERS.c with the original body", m.Subject, m.Data)
	}
	long := broker.DeadLetter("s", nil, nil, broker.DeadLetterInfo{Stream: "S", Consumer: "c", Reason: strings.Repeat("x", 5000)})
	if got := len(long.Header.Get("dlq-reason")); got != 1024 {
		t.Errorf("long reason cut to %d bytes, want 1024", got)
	}
}
