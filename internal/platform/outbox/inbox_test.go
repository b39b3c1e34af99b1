package outbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
)

// seen runs Seen in a transaction of its own and commits it unless rollback.
func seen(t *testing.T, db *sqldb.DB, consumer, id string, rollback bool) bool {
	t.Helper()
	errRollback := errors.New("rollback")
	var already bool
	err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
		var err error
		already, err = outbox.Seen(context.Background(), tx, consumer, id)
		if err == nil && rollback {
			return errRollback
		}
		return err
	})
	if err != nil && !errors.Is(err, errRollback) {
		t.Fatalf("Seen(%s, %s): %v", consumer, id, err)
	}
	return already
}

func TestSeen(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		steps := []struct {
			name           string
			consumer, id   string
			rollback, want bool
		}{
			{"first time", "reserve", "e1", false, false},
			{"second time", "reserve", "e1", false, true},
			{"third time", "reserve", "e1", false, true},
			{"another consumer", "notify", "e1", false, false},
			{"another event", "reserve", "e2", true, false},
			{"after a rollback it was never seen", "reserve", "e2", false, false},
			{"and now it was", "reserve", "e2", false, true},
		}
		for _, s := range steps {
			if got := seen(t, db, s.consumer, s.id, s.rollback); got != s.want {
				t.Errorf("%s: Seen(%s, %s) = %v, want %v", s.name, s.consumer, s.id, got, s.want)
			}
		}
		err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
			_, err := outbox.Seen(context.Background(), tx, "", "e1")
			return err
		})
		if err == nil {
			t.Errorf("Seen without a consumer name = nil error")
		}
	})
}

// Concurrent deliveries of one event (two replicas of a consumer): exactly one
// transaction applies it.
func TestSeenConcurrently(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		const n = 8
		start := make(chan struct{})
		results := make(chan bool, n)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				<-start
				err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
					already, err := outbox.Seen(context.Background(), tx, "reserve", "e1")
					if err != nil {
						return err
					}
					time.Sleep(20 * time.Millisecond) // hold the transaction open a while
					results <- already
					return nil
				})
				if err != nil {
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(results)
		close(errs)
		for err := range errs {
			t.Errorf("Seen: %v", err)
		}
		fresh := 0
		for already := range results {
			if !already {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d of %d concurrent Seen calls reported a new event, want exactly 1", fresh, n)
		}
	})
}

func TestIdempotent(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		fail := errors.New("transient")
		var failNext bool
		calls := 0
		handle := outbox.Idempotent(db, "counter", func(ctx context.Context, tx *sqldb.Tx, e broker.Event) error {
			calls++
			if err := bump(ctx, tx, e.Subject); err != nil {
				return err
			}
			if failNext {
				failNext = false
				return fail
			}
			return nil
		})
		e := newEvent(t, "orders.placed", "t1", 1)
		failNext = true
		if err := handle(ctx, e); !errors.Is(err, fail) {
			t.Fatalf("first delivery = %v, want %v", err, fail)
		}
		for i := range 3 {
			if err := handle(ctx, e); err != nil {
				t.Fatalf("delivery %d: %v", i+2, err)
			}
		}
		if got := things(t, db, "t1"); got != 1 {
			t.Errorf("effect applied %d times, want once", got)
		}
		if calls != 2 {
			t.Errorf("fn ran %d times, want 2 (the failure, then once)", calls)
		}
	})
}

// The whole path: a state change and its event commit together, the relay
// publishes, a consumer applies it once, even when the broker delivers it
// twice (here: published again with another Nats-Msg-Id, as happens after the
// duplicate window) and when its effect emits an event of its own.
func TestOutboxToInboxAppliesOnce(t *testing.T) {
	forEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		srv := brokertest.Start(t)
		_, js := brokertest.Connect(t, srv.ClientURL())
		relay := outbox.NewRelay(db, js, brokertest.Logger(t))
		run(t, relay)

		handler := outbox.Idempotent(db, "reserve", func(ctx context.Context, tx *sqldb.Tx, e broker.Event) error {
			if err := bump(ctx, tx, "reserved-"+e.Subject); err != nil {
				return err
			}
			out, err := broker.NewEvent("microshop/test", "stock.reserved", e.Subject, map[string]string{"cause": e.ID})
			if err != nil {
				return err
			}
			return outbox.Add(ctx, tx, out)
		})
		stop, err := broker.Consume(ctx, js, broker.ConsumerConfig{
			Stream: broker.StreamOrders, Durable: "reserve", FilterSubjects: []string{"orders.placed"},
		}, func(ctx context.Context, e broker.Event) error {
			err := handler(ctx, e)
			if err == nil {
				relay.Kick()
			}
			return err
		}, brokertest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)

		placed := newEvent(t, "orders.placed", "o1", 1)
		change(t, db, "o1", placed)
		relay.Kick()
		// The same event again, past JetStream's deduplication.
		again := broker.Encode(placed)
		again.Header.Set("Nats-Msg-Id", placed.ID+"-late")
		if _, err := js.PublishMsg(ctx, again); err != nil {
			t.Fatal(err)
		}

		eventually(t, 20*time.Second, "reaction not published", func() bool {
			return len(ids(t, js, broker.StreamStock)) == 1 && pending(t, db) == 0
		})
		eventually(t, 20*time.Second, "both deliveries not acked", func() bool {
			c, err := js.Consumer(ctx, broker.StreamOrders, "reserve")
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.AckFloor.Stream == 2 && info.NumAckPending == 0
		})
		if got := things(t, db, "reserved-o1"); got != 1 {
			t.Errorf("effect applied %d times, want once", got)
		}
		if got := len(ids(t, js, broker.StreamStock)); got != 1 {
			t.Errorf("STOCK holds %d reactions, want 1", got)
		}
		if diff := cmp.Diff(2, len(ids(t, js, broker.StreamOrders))); diff != "" {
			t.Errorf("ORDERS messages (-want +got):\n%s", diff)
		}
	})
}
