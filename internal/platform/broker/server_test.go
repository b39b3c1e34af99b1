package broker_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
)

// event returns a valid event of type typ about subject with data {"n": n}.
func event(t *testing.T, typ, subject string, n int) broker.Event {
	t.Helper()
	e, err := broker.NewEvent("microshop/test", typ, subject, map[string]int{"n": n})
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	return e
}

func publish(t *testing.T, js jetstream.JetStream, e broker.Event) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, broker.Encode(e))
	if err != nil {
		t.Fatalf("publish %s: %v", e.Type, err)
	}
	return ack
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

func TestServerStartsWithJetStreamInDir(t *testing.T) {
	srv := brokertest.Start(t)
	if !srv.NATS().JetStreamEnabled() {
		t.Fatal("JetStream is not enabled")
	}
	cfg := srv.NATS().JetStreamConfig()
	if !cfg.SyncAlways {
		t.Errorf("SyncAlways = false, want every write synced")
	}
	if got, want := cfg.StoreDir, filepath.Join(srv.Dir(), "jetstream"); got != want {
		t.Errorf("store directory = %q, want %q", got, want)
	}
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") || srv.Port() == 0 || srv.Port() == 4222 {
		t.Errorf("ClientURL = %q, Port = %d, want a free port on 127.0.0.1", srv.ClientURL(), srv.Port())
	}
	_, js := brokertest.Connect(t, srv.ClientURL())
	publish(t, js, event(t, "orders.placed", "o1", 1))
	if _, err := os.Stat(filepath.Join(srv.Dir(), "jetstream")); err != nil {
		t.Errorf("no file store in the directory: %v", err)
	}
}

func TestServerRestartKeepsStreams(t *testing.T) {
	srv := brokertest.Start(t)
	nc, js := brokertest.Connect(t, srv.ClientURL())
	for i := range 3 {
		publish(t, js, event(t, "orders.placed", "o1", i))
	}
	dir, port := srv.Dir(), srv.Port()
	srv.Shutdown()
	eventually(t, 5*time.Second, "client still connected after shutdown", func() bool { return !nc.IsConnected() })

	srv = brokertest.StartAt(t, dir, port)
	// The same connection comes back by itself.
	eventually(t, 10*time.Second, "client did not reconnect to the restarted server", nc.IsConnected)
	if got := streamMsgs(t, js, broker.StreamOrders); got != 3 {
		t.Errorf("ORDERS holds %d messages after the restart, want 3", got)
	}
	publish(t, js, event(t, "orders.placed", "o1", 4))
	if got := streamMsgs(t, js, broker.StreamOrders); got != 4 {
		t.Errorf("ORDERS holds %d messages, want 4", got)
	}
	_ = srv
}

func TestStartServerRejects(t *testing.T) {
	tests := []struct {
		name string
		opts broker.ServerOptions
		want string
	}{
		{"no directory", broker.ServerOptions{}, "store directory"},
		{"public address without token", broker.ServerOptions{Dir: t.TempDir(), Host: "0.0.0.0"}, "without a token"},
		{"bad port", broker.ServerOptions{Dir: t.TempDir(), Port: 70000}, "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := broker.StartServer(tt.opts)
			if err == nil {
				srv.Shutdown()
				t.Fatalf("StartServer = nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("StartServer error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestServerWithToken(t *testing.T) {
	srv, err := broker.StartServer(broker.ServerOptions{Dir: t.TempDir(), Token: "s3cret", Log: brokertest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if nc, _, err := broker.Connect(ctx, srv.ClientURL(), "no-token", brokertest.Logger(t)); err == nil {
		nc.Close()
		t.Errorf("Connect without the token succeeded")
	}
	url := strings.Replace(srv.ClientURL(), "nats://", "nats://s3cret@", 1)
	brokertest.Connect(t, url)
}

func TestConnectGivesUpWithContext(t *testing.T) {
	srv := brokertest.Start(t)
	url := srv.ClientURL()
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	nc, _, err := broker.Connect(ctx, url, "late", brokertest.Logger(t))
	if err == nil {
		nc.Close()
		t.Fatal("Connect to a stopped server = nil error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %s after its context ended", d)
	}
}

func TestConnectWaitsForTheServer(t *testing.T) {
	srv := brokertest.Start(t)
	dir, port, url := srv.Dir(), srv.Port(), srv.ClientURL()
	srv.Shutdown()
	started := make(chan *broker.Server, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		s, err := broker.StartServer(broker.ServerOptions{Dir: dir, Port: port})
		if err != nil {
			t.Errorf("restart: %v", err)
		}
		started <- s
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, js, err := broker.Connect(ctx, url, "early", brokertest.Logger(t))
	if s := <-started; s != nil {
		t.Cleanup(s.Shutdown)
	}
	if err != nil {
		t.Fatalf("Connect before the server is up: %v", err)
	}
	defer nc.Close()
	if err := broker.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureStreamsIsIdempotent(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL()) // the first run
	ctx := context.Background()

	// Someone changed a setting by hand: EnsureStreams puts it back.
	s, err := js.Stream(ctx, broker.StreamStock)
	if err != nil {
		t.Fatal(err)
	}
	changed := s.CachedInfo().Config
	changed.Duplicates = 10 * time.Second
	if _, err := js.UpdateStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	publish(t, js, event(t, "stock.reserved", "o1", 1))
	for run := 2; run <= 3; run++ {
		if err := broker.EnsureStreams(ctx, js, 1); err != nil {
			t.Fatalf("EnsureStreams run %d: %v", run, err)
		}
	}

	type summary struct {
		Subjects   []string
		Storage    jetstream.StorageType
		Replicas   int
		Duplicates time.Duration
	}
	want := map[string]summary{
		broker.StreamOrders: {[]string{"orders.>"}, jetstream.FileStorage, 1, 2 * time.Minute},
		broker.StreamStock:  {[]string{"stock.>"}, jetstream.FileStorage, 1, 2 * time.Minute},
		broker.StreamDLQ:    {[]string{"dlq.>"}, jetstream.FileStorage, 1, 2 * time.Minute},
	}
	got := map[string]summary{}
	for info := range js.ListStreams(ctx).Info() {
		c := info.Config
		got[c.Name] = summary{c.Subjects, c.Storage, c.Replicas, c.Duplicates}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
	if n := streamMsgs(t, js, broker.StreamStock); n != 1 {
		t.Errorf("STOCK holds %d messages after EnsureStreams, want 1 (kept)", n)
	}
	if err := broker.EnsureStreams(ctx, js, 0); err == nil {
		t.Errorf("EnsureStreams with 0 replicas = nil error")
	}
}

func TestPublishDeduplicatesByEventID(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := brokertest.Connect(t, srv.ClientURL())
	e := event(t, "orders.placed", "o1", 1)
	first := publish(t, js, e)
	second := publish(t, js, e)
	if first.Duplicate || !second.Duplicate {
		t.Errorf("Duplicate flags = %v, %v; want false, true", first.Duplicate, second.Duplicate)
	}
	if second.Sequence != first.Sequence {
		t.Errorf("duplicate acked with sequence %d, want the original %d", second.Sequence, first.Sequence)
	}
	publish(t, js, event(t, "orders.placed", "o1", 1)) // same content, new id
	if got := streamMsgs(t, js, broker.StreamOrders); got != 2 {
		t.Errorf("ORDERS holds %d messages, want 2", got)
	}
	msgs := brokertest.Messages(t, js, broker.StreamOrders)
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Header.Get("Nats-Msg-Id"))
	}
	if ids[0] != e.ID || ids[1] == e.ID {
		t.Errorf("stored Nats-Msg-Ids = %v, want %s then another", ids, e.ID)
	}
	var data map[string]int
	if err := json.Unmarshal(msgs[0].Data, &data); err != nil || data["n"] != 1 {
		t.Errorf("stored body = %s (%v)", msgs[0].Data, err)
	}
}
