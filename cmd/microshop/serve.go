package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"

	"github.com/spf13/cobra"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/server"
)

func serveCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:       "serve users|products|orders|gateway",
		Short:     "Run one service (what a container runs)",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: services,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !cmd.Flags().Changed("addr") && getenv("MICROSHOP_ADDR") == "" {
				cfg.addr = map[string]string{
					"users": defaultUsersAddr, "products": defaultProductsAddr,
					"orders": defaultOrdersAddr, "gateway": defaultGatewayAddr,
				}[name]
			}
			if !cmd.Flags().Changed("database-url") {
				cfg.databaseURL = databaseURL(getenv, name)
			}
			log := logging.New(stderr, cfg.logFormat, cfg.logLevel).With("service", name)
			return serve(cmd.Context(), name, &cfg, log)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.addr, "addr", getenv("MICROSHOP_ADDR"), "listen address (MICROSHOP_ADDR; default per service, gateway 127.0.0.1:8080)")
	fs.StringVar(&cfg.databaseURL, "database-url", "",
		"database URL: postgres://... or a SQLite path (MICROSHOP_<SERVICE>_DATABASE_URL or MICROSHOP_DATABASE_URL; default SQLite in --data-dir)")
	fs.BoolVar(&cfg.seed, "seed", envOr(getenv, "MICROSHOP_SEED", "true") == "true", "products: add the demo catalog when it is empty (MICROSHOP_SEED)")
	cfg.commonFlags(fs, getenv)
	cfg.peerFlags(fs, getenv)
	return cmd
}

// serve runs one service until ctx is done.
func serve(ctx context.Context, name string, cfg *config, log *slog.Logger) error {
	if !slices.Contains(services, name) {
		return fmt.Errorf("unknown service %q", name)
	}
	m, err := buildService(ctx, name, cfg, log)
	if err != nil {
		return err
	}
	if m.close != nil {
		defer m.close()
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	if m.run != nil {
		go m.run(ctx)
	}
	log.Info("listening", "addr", "http://"+ln.Addr().String())
	return server.Serve(ctx, ln, m.handler, log)
}

func buildService(ctx context.Context, name string, cfg *config, log *slog.Logger) (*module, error) {
	if name == "gateway" {
		ups := map[string]*module{}
		for svc, url := range map[string]string{"users": cfg.usersURL, "products": cfg.productsURL, "orders": cfg.ordersURL} {
			h, err := gateway.Proxy(svc, url, log)
			if err != nil {
				return nil, err
			}
			ups[svc] = &module{handler: h, ready: gateway.ProbeURL(url)}
		}
		h, err := newGateway(ups, log)
		if err != nil {
			return nil, err
		}
		return &module{handler: h}, nil
	}
	db, err := openDB(ctx, cfg.databaseURL, name, cfg.dataDir)
	if err != nil {
		return nil, err
	}
	switch name {
	case "users":
		_, m := newUsers(db, log)
		return m, nil
	case "products":
		_, m, err := newProducts(ctx, db, cfg.seed, log)
		if err != nil {
			db.Close()
		}
		return m, err
	default: // orders
		uc, pc, err := peerClients(cfg, log)
		if err != nil {
			db.Close()
			return nil, err
		}
		info := func(context.Context) map[string]any {
			return map[string]any{"upstreams": map[string]any{"users": uc.State(), "products": pc.State()}}
		}
		return newOrders(db, uc, pc, info, log), nil
	}
}
