package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerOptions configures an embedded NATS server.
type ServerOptions struct {
	// Dir holds the JetStream file store (in Dir/jetstream). Required.
	Dir string
	// Host is the address to listen on; empty means 127.0.0.1.
	Host string
	// Port is the client port; 0 picks a free one (see Server.Port).
	Port int
	// Name is the server name; empty means "microshop".
	Name string
	// Token, when set, is required from every client (nats://TOKEN@host:port).
	// A server listening on anything but a loopback address must have one.
	Token string
	// Log receives the server's log lines; nil discards them.
	Log *slog.Logger
}

// Server is an embedded nats-server with JetStream, storing streams in files
// that are synced to disk on every write.
type Server struct {
	ns  *server.Server
	dir string
}

// readyTimeout bounds how long StartServer waits, which includes recovering
// the streams already stored in Dir.
const readyTimeout = 30 * time.Second

// StartServer starts an embedded NATS server with JetStream and returns once it
// accepts connections.
func StartServer(opts ServerOptions) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("broker: the server needs a store directory")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Name == "" {
		opts.Name = "microshop"
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("broker: invalid port %d", opts.Port)
	}
	if opts.Token == "" && !isLoopback(opts.Host) {
		return nil, fmt.Errorf("broker: refusing to listen on %s without a token", opts.Host)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("broker: store directory: %w", err)
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT // in nats-server, 0 means the default 4222
	}
	log := orDiscard(opts.Log).With("component", "nats-server")
	ns, err := server.NewServer(&server.Options{
		ServerName:             opts.Name,
		Host:                   opts.Host,
		Port:                   port,
		Authorization:          opts.Token,
		JetStream:              true,
		StoreDir:               opts.Dir,
		SyncAlways:             true, // fsync every write: an acknowledged event survives a power cut
		NoSigs:                 true, // the embedding process owns its signals
		DisableJetStreamBanner: true,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: configure server: %w", err)
	}
	ns.SetLoggerV2(slogAdapter{log}, log.Enabled(context.Background(), slog.LevelDebug), false, false)
	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("broker: server on %s not ready after %s",
			net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)), readyTimeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("broker: JetStream did not start (see the server log)")
	}
	return &Server{ns: ns, dir: opts.Dir}, nil
}

// ClientURL is the URL clients connect to, nats://host:port.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Port is the client port the server listens on.
func (s *Server) Port() int {
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Dir is the store directory.
func (s *Server) Dir() string { return s.dir }

// Shutdown stops the server and waits until it has stopped. Clients see the
// connection drop and reconnect when a server comes back.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// WaitForShutdown blocks until the server has stopped.
func (s *Server) WaitForShutdown() { s.ns.WaitForShutdown() }

// NATS returns the underlying nats-server, for what this package does not cover
// (monitoring, tests).
func (s *Server) NATS() *server.Server { return s.ns }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// slogAdapter routes nats-server's log lines to slog. Notices are Info, traces
// Debug-4 (and off unless asked for); Fatalf is logged as an error: a library
// must not exit the process, and the server shuts itself down after it.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.emit(slog.LevelInfo, format, v) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.emit(slog.LevelWarn, format, v) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.emit(slog.LevelError, format, v) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.emit(slog.LevelError, format, v) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.emit(slog.LevelDebug, format, v) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.emit(slog.LevelDebug-4, format, v) }

func (a slogAdapter) emit(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !a.log.Enabled(ctx, level) {
		return
	}
	a.log.Log(ctx, level, fmt.Sprintf(format, v...))
}
