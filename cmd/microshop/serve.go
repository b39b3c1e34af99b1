package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/system"
)

func serveCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var cfg config
	var debugAddr string
	cmd := &cobra.Command{
		Use:       "serve users|products|orders|gateway|nats",
		Short:     "Run one service (what a container runs), or the embedded NATS broker",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: append(slices.Clone(system.Services), "nats"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !cmd.Flags().Changed("addr") && getenv("MICROSHOP_ADDR") == "" {
				cfg.addr = map[string]string{
					"users": defaultUsersAddr, "products": defaultProductsAddr,
					"orders": defaultOrdersAddr, "gateway": defaultGatewayAddr, "nats": defaultNATSAddr,
				}[name]
			}
			log := logging.New(stderr, cfg.logFormat, cfg.logLevel).With("service", name)
			if name == "nats" {
				return serveBroker(cmd.Context(), cfg.addr, cfg.dataDir, log)
			}
			sc, err := cfg.system(getenv, log)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("database-url") {
				url := cfg.databaseURL
				sc.DatabaseURL = func(string) string { return url }
			}
			return serve(cmd.Context(), name, cfg.addr, debugAddr, sc, log)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&debugAddr, "debug-addr", getenv("MICROSHOP_DEBUG_ADDR"),
		"internal address for the pprof profiles (/debug/pprof/), off when empty; never expose it (MICROSHOP_DEBUG_ADDR)")
	fs.StringVar(&cfg.addr, "addr", getenv("MICROSHOP_ADDR"), "listen address (MICROSHOP_ADDR; default per service, gateway 127.0.0.1:8080)")
	fs.StringVar(&cfg.databaseURL, "database-url", "",
		"database URL: postgres://... or a SQLite path (MICROSHOP_<SERVICE>_DATABASE_URL or MICROSHOP_DATABASE_URL; default SQLite in --data-dir)")
	fs.BoolVar(&cfg.seed, "seed", envOr(getenv, "MICROSHOP_SEED", "true") == "true", "products: add the demo catalog when it is empty (MICROSHOP_SEED)")
	cfg.commonFlags(fs, getenv)
	cfg.peerFlags(fs, getenv)
	cfg.limitFlags(fs, getenv)
	return cmd
}

// system turns the flags and the environment into a system.Config. Secrets
// (keys, the admin password) come only from the environment, never from flags,
// which other users of the machine can read in the process list.
func (c *config) system(getenv func(string) string, log *slog.Logger) (system.Config, error) {
	sc := system.Config{
		DataDir:       c.dataDir,
		DatabaseURL:   func(service string) string { return databaseURL(getenv, service) },
		UsersURL:      c.usersURL,
		ProductsURL:   c.productsURL,
		OrdersURL:     c.ordersURL,
		Seed:          c.seed,
		AdminEmail:    getenv("MICROSHOP_ADMIN_EMAIL"),
		AdminPassword: getenv("MICROSHOP_ADMIN_PASSWORD"),
		Limits:        c.limits,
		NATSURL:       c.natsURL,
		NATSReplicas:  c.natsReplicas,
		Log:           log,
	}
	if k := getenv("MICROSHOP_SERVICE_KEY"); k != "" {
		key, err := auth.ParseServiceKey(k)
		if err != nil {
			return sc, fmt.Errorf("MICROSHOP_SERVICE_KEY: %w", err)
		}
		sc.ServiceKey = key
	}
	trusted, err := auth.ParseTrusted(getenv("MICROSHOP_TRUSTED_SERVICES"))
	if err != nil {
		return sc, fmt.Errorf("MICROSHOP_TRUSTED_SERVICES: %w", err)
	}
	sc.Trusted = trusted
	return sc, nil
}

// serve runs one service until ctx is done.
func serve(ctx context.Context, name, addr, debugAddr string, cfg system.Config, log *slog.Logger) error {
	m, err := system.Service(ctx, name, cfg)
	if err != nil {
		return err
	}
	if m.Close != nil {
		defer m.Close()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if m.Run != nil {
		go m.Run(ctx)
	}
	if debugAddr != "" {
		go func() {
			if err := server.ServeDebug(ctx, debugAddr, log); err != nil {
				log.Error("debug endpoints", "err", err)
			}
		}()
	}
	log.Info("listening", "addr", "http://"+ln.Addr().String())
	return server.Serve(ctx, ln, m.Handler, log)
}

// serveBroker runs the embedded NATS server (JetStream, file store in
// <data-dir>/nats, fsync on every write) until ctx is done. It is what
// `microshop run` starts as its own process, so that it can be killed and
// restarted on its own.
func serveBroker(ctx context.Context, addr, dataDir string, log *slog.Logger) error {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("nats: invalid port %q", portText)
	}
	srv, err := broker.StartServer(broker.ServerOptions{Dir: filepath.Join(dataDir, "nats"), Host: host, Port: port, Log: log})
	if err != nil {
		return err
	}
	log.Info("listening", "addr", srv.ClientURL())
	<-ctx.Done()
	log.Info("shutting down")
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}
