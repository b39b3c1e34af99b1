// Package brokertest runs event tests against a real, embedded NATS server
// with JetStream: one per test, storing in the test's temporary directory and
// listening on a free loopback port.
package brokertest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/broker"
)

// Start starts a server with its store in a new temporary directory on a free
// port of 127.0.0.1. It is shut down when the test ends.
func Start(t testing.TB) *broker.Server {
	t.Helper()
	return StartAt(t, t.TempDir(), 0)
}

// StartAt starts a server with its store in dir, listening on port of
// 127.0.0.1 (0: a free port). A test restarts a server by shutting it down and
// calling StartAt again with the same dir and port (Server.Dir, Server.Port).
// The server is shut down when the test ends.
func StartAt(t testing.TB, dir string, port int) *broker.Server {
	t.Helper()
	log := Logger(t)
	var srv *broker.Server
	var err error
	// A port just released can take a moment to be free again.
	for attempt := 0; attempt < 50; attempt++ {
		srv, err = broker.StartServer(broker.ServerOptions{Dir: dir, Host: "127.0.0.1", Port: port, Name: "test", Log: log})
		if err == nil || port == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start NATS server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Connect connects to the server at url, creates the streams (one replica)
// and returns the connection and its JetStream context. The connection is
// closed when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := broker.Connect(ctx, url, t.Name(), Logger(t))
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	if err := broker.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatalf("create streams: %v", err)
	}
	return nc, js
}

// Messages returns every message stored in stream, in order.
func Messages(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
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
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // deleted
			}
			t.Fatalf("stream %s message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// Logger returns a logger that writes to the test's log (warnings and errors;
// everything with MICROSHOP_TEST_LOG=debug) until the test ends, and drops
// lines after that.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MICROSHOP_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
