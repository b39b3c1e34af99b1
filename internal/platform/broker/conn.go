package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reconnection backoff: 100 ms doubling to 5 s, with up to 20 % jitter.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// AsyncAckTimeout is how long an asynchronous publish (the outbox relay's)
// waits for its acknowledgement before it fails: without it, one whose
// acknowledgement is lost stays pending until the connection drops. It is a
// safety net, well above what the relay waits (which counts from the
// previous acknowledgement of its batch, not from the publish).
const AsyncAckTimeout = 30 * time.Second

// Connect connects to the NATS server at url (a comma-separated list for a
// cluster) as client name and returns the connection and its JetStream context.
//
// A failed first attempt is retried in the background; Connect waits until the
// connection is up or ctx is done (then it gives up and returns ctx's error). Once
// connected, the client reconnects forever after losing the server, with
// backoff. Publishing while disconnected fails at once instead of queueing
// (nothing is buffered that the caller believes failed), so callers retry:
// the outbox relay does. Disconnects and reconnects are logged.
func Connect(ctx context.Context, url, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	log = orDiscard(log).With("component", "nats", "client", name)
	server := redactURL(url)
	connected := make(chan struct{})
	var once sync.Once
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(20*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(*nats.Conn) {
			once.Do(func() { close(connected) })
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "server", server, "err", err)
			} else {
				log.Info("disconnected from NATS", "server", server)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", redactURL(nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Warn("NATS connection closed", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("NATS error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("NATS error", "err", err)
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: connect to %s: %w", server, err)
	}
	if !nc.IsConnected() {
		log.Warn("NATS unreachable, retrying", "server", server)
		select {
		case <-connected:
		case <-ctx.Done():
			nc.Close()
			return nil, nil, fmt.Errorf("broker: connect to %s: %w", server, context.Cause(ctx))
		}
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(AsyncAckTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("broker: jetstream: %w", err)
	}
	log.Debug("connected to NATS", "server", redactURL(nc.ConnectedUrl()))
	return nc, js, nil
}

// reconnectDelay is the wait before reconnect attempt n (from 1).
func reconnectDelay(attempts int) time.Duration {
	d := reconnectMin
	for i := 1; i < attempts && d < reconnectMax; i++ {
		d *= 2
	}
	d = min(d, reconnectMax)
	return d + rand.N(d/5+1)
}

// redactURL drops credentials from a server URL, or a comma-separated list
// of them, for logs.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		switch {
		case err != nil && strings.Contains(p, "@"):
			parts[i] = "(redacted)"
		case err == nil && u.User != nil:
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// errClosed reports whether err means the connection was closed for good.
func errClosed(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed)
}
