package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
)

// batchRecorder applies events in batches and one by one, recording the
// order in which they were applied (kept) and the size of each batch.
type batchRecorder struct {
	mu      sync.Mutex
	applied []string
	batches []int
	tries   map[string]int // calls of the one-by-one handler, per event
	fail    func(id string, try int) error
}

// handleBatch fails, keeping nothing, if any of its events fails.
func (r *batchRecorder) handleBatch(_ context.Context, es []broker.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, len(es))
	for _, e := range es {
		if err := r.fail(e.ID, 0); err != nil {
			return err
		}
	}
	for _, e := range es {
		r.applied = append(r.applied, e.ID)
	}
	return nil
}

func (r *batchRecorder) handle(_ context.Context, e broker.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[e.ID]++
	if err := r.fail(e.ID, r.tries[e.ID]); err != nil {
		return err
	}
	r.applied = append(r.applied, e.ID)
	return nil
}

func (r *batchRecorder) got() (applied []string, batches []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.applied), slices.Clone(r.batches)
}

func TestConsumeBatch(t *testing.T) {
	const n = 20
	const poison = 7 // the index of the event that fails, if any
	errDown := errors.New("stock service down")
	for _, tc := range []struct {
		name string
		// fail answers for the event at index i on its try-th one-by-one
		// attempt (0: in a batch).
		fail        func(i, try int) error
		maxDeliver  int
		dlq         map[string]string // the dead letter's headers, if one
		wantApplied func(i int) bool
	}{
		{name: "applied in batches, in order", fail: func(int, int) error { return nil },
			wantApplied: func(int) bool { return true }},
		{name: "a poison event goes to the DLQ alone",
			fail: func(i, _ int) error {
				if i == poison {
					return fmt.Errorf("bad order: %w", broker.ErrPermanent)
				}
				return nil
			},
			dlq:         map[string]string{"dlq-deliveries": "1"},
			wantApplied: func(i int) bool { return i != poison }},
		{name: "a failing event is retried in place, before any later one",
			fail: func(i, try int) error {
				if i == poison && try < 3 {
					return errDown
				}
				return nil
			},
			wantApplied: func(int) bool { return true }},
		{name: "an event failing on the last attempt goes to the DLQ alone", maxDeliver: 3,
			fail: func(i, _ int) error {
				if i == poison {
					return errDown
				}
				return nil
			},
			dlq:         map[string]string{"dlq-deliveries": "3"},
			wantApplied: func(i int) bool { return i != poison }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := brokertest.Start(t)
			_, js := brokertest.Connect(t, srv.ClientURL())
			index := map[string]int{}
			var want []string
			for i := range n {
				e := event(t, "orders.placed", fmt.Sprintf("o%d", i), i)
				publish(t, js, e)
				index[e.ID] = i
				if tc.wantApplied(i) {
					want = append(want, e.ID)
				}
			}
			rec := &batchRecorder{tries: map[string]int{}, fail: func(id string, try int) error { return tc.fail(index[id], try) }}
			cfg := broker.ConsumerConfig{Stream: broker.StreamOrders, Durable: "test", MaxDeliver: tc.maxDeliver,
				Backoff: []time.Duration{10 * time.Millisecond}}
			stop, err := broker.ConsumeBatch(context.Background(), js, cfg, rec.handleBatch, rec.handle, brokertest.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
			eventually(t, 10*time.Second, "messages not all settled", settled(t, js, "test", n))

			applied, batches := rec.got()
			if diff := cmp.Diff(want, applied); diff != "" {
				t.Errorf("applied (-want +got):\n%s", diff)
			}
			if !slices.ContainsFunc(batches, func(size int) bool { return size > 1 }) {
				t.Errorf("batches of sizes %v, want some of more than one event", batches)
			}
			dl := dlqHeaders(t, js)
			switch {
			case tc.dlq == nil && len(dl) != 0:
				t.Errorf("dead letters %v, want none", dl)
			case tc.dlq != nil && len(dl) != 1:
				t.Errorf("dead letters %v, want one", dl)
			case tc.dlq != nil:
				if got := dl[0]["dlq-deliveries"]; got != tc.dlq["dlq-deliveries"] {
					t.Errorf("dlq-deliveries %s, want %s", got, tc.dlq["dlq-deliveries"])
				}
				if index[dl[0]["ce-id"]] != poison {
					t.Errorf("dead letter %v is not event %d", dl[0], poison)
				}
			}
			if info := consumerInfo(t, js, broker.StreamOrders, "test"); info.Config.MaxAckPending != broker.DefaultBatchSize {
				t.Errorf("max ack pending %d, want the batch size %d", info.Config.MaxAckPending, broker.DefaultBatchSize)
			}
		})
	}
}

// A batch handler that panics counts as a failed batch: its events are then
// applied one by one.
func TestConsumeBatchRecoversFromPanic(t *testing.T) {
	js, want := fiveOrdersPlaced(t)
	rec := &batchRecorder{tries: map[string]int{}, fail: func(string, int) error { return nil }}
	stop, err := broker.ConsumeBatch(context.Background(), js, broker.ConsumerConfig{Stream: broker.StreamOrders, Durable: "test"},
		func(context.Context, []broker.Event) error { panic("boom") }, rec.handle, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	eventually(t, 10*time.Second, "messages not all settled", settled(t, js, "test", 5))
	applied, _ := rec.got()
	if diff := cmp.Diff(want, applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
}

// TestConsumeBatchKeepsSlowBatchesInProgress: a batch that fails after most
// of the ack wait, then applied one by one for longer than the ack wait in
// all, is not redelivered meanwhile: each event is applied once.
func TestConsumeBatchKeepsSlowBatchesInProgress(t *testing.T) {
	const ackWait = time.Second
	js, want := fiveOrdersPlaced(t)
	rec := &batchRecorder{tries: map[string]int{}, fail: func(string, int) error { return nil }}
	var handed sync.Map // event id → times handed to the batch handler
	slowBatch := func(ctx context.Context, es []broker.Event) error {
		for _, e := range es {
			n, _ := handed.LoadOrStore(e.ID, new(int))
			*n.(*int)++
		}
		time.Sleep(9 * ackWait / 10)
		return errors.New("database busy")
	}
	slowOne := func(ctx context.Context, e broker.Event) error {
		time.Sleep(ackWait / 2)
		return rec.handle(ctx, e)
	}
	stop, err := broker.ConsumeBatch(context.Background(), js,
		broker.ConsumerConfig{Stream: broker.StreamOrders, Durable: "test", AckWait: ackWait}, slowBatch, slowOne, brokertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	eventually(t, 30*time.Second, "messages not all settled", settled(t, js, "test", 5))
	time.Sleep(ackWait) // a redelivered copy would be applied again by now
	applied, _ := rec.got()
	if diff := cmp.Diff(want, applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	handed.Range(func(id, n any) bool {
		if *n.(*int) != 1 {
			t.Errorf("event %s handed to the batch handler %d times, want once (redelivered meanwhile)", id, *n.(*int))
		}
		return true
	})
	if info := consumerInfo(t, js, broker.StreamOrders, "test"); info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered, want none", info.NumRedelivered)
	}
}

// fiveOrdersPlaced starts a broker, publishes five orders.placed events and
// returns their ids in order.
func fiveOrdersPlaced(t *testing.T) (jetstream.JetStream, []string) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	var ids []string
	for i := range 5 {
		e := event(t, "orders.placed", fmt.Sprintf("o%d", i), i)
		publish(t, js, e)
		ids = append(ids, e.ID)
	}
	return js, ids
}
