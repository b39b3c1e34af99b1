package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordershttp"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
	"github.com/microshop/microshop/internal/products/productshttp"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
	"github.com/microshop/microshop/internal/users/usershttp"
)

// services are the names `serve` accepts, in start order.
var services = []string{"users", "products", "orders", "gateway"}

// migrations returns each data-owning service's embedded migrations.
func migrations() map[string]fs.FS {
	return map[string]fs.FS{
		"users":    usersdb.Migrations(),
		"products": productsdb.Migrations(),
		"orders":   ordersdb.Migrations(),
	}
}

// openDB opens and migrates the database of one service.
func openDB(ctx context.Context, url, service, dataDir string) (*sqldb.DB, error) {
	db, err := sqldb.Open(ctx, url, service, dataDir)
	if err != nil {
		return nil, err
	}
	if err := sqldb.Migrate(ctx, db, migrations()[service]); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func dbCheck(db *sqldb.DB) []server.Check {
	return []server.Check{{Name: "database", Run: db.Ping}}
}

// module is one service assembled: its handler, readiness and what to close.
type module struct {
	handler http.Handler
	ready   func(ctx context.Context) (any, bool)
	run     func(ctx context.Context) // background work, if any
	close   func()
}

func newUsers(db *sqldb.DB, log *slog.Logger) (*users.Service, *module) {
	svc := users.NewService(usersdb.New(db))
	checks := dbCheck(db)
	return svc, &module{
		handler: usershttp.Handler(svc, checks, log),
		ready:   readyFunc(checks, nil),
		close:   func() { db.Close() },
	}
}

func newProducts(ctx context.Context, db *sqldb.DB, seed bool, log *slog.Logger) (*products.Service, *module, error) {
	svc := products.NewService(productsdb.New(db))
	if seed {
		if err := svc.Seed(ctx); err != nil {
			return nil, nil, fmt.Errorf("seed catalog: %w", err)
		}
	}
	checks := dbCheck(db)
	return svc, &module{
		handler: productshttp.Handler(svc, checks, log),
		ready:   readyFunc(checks, nil),
		close:   func() { db.Close() },
	}, nil
}

// Sweeper settings: a checkout that has not finished after pendingTimeout is
// compensated (its stock released) and rejected.
const (
	sweepEvery     = 10 * time.Second
	pendingTimeout = 30 * time.Second
)

func newOrders(db *sqldb.DB, dir orders.UserDirectory, cat orders.Catalog, info func(context.Context) map[string]any, log *slog.Logger) *module {
	svc := orders.NewService(ordersdb.New(db), dir, cat, log)
	checks := dbCheck(db)
	return &module{
		handler: ordershttp.Handler(svc, checks, info, log),
		ready:   readyFunc(checks, info),
		run:     func(ctx context.Context) { svc.RunSweeper(ctx, sweepEvery, pendingTimeout) },
		close:   func() { db.Close() },
	}
}

// peerClients returns the HTTP clients orders uses in the microservices mode.
func peerClients(cfg *config, log *slog.Logger) (*usershttp.Client, *productshttp.Client, error) {
	u, err := upstream.New(upstream.Options{Name: "users", BaseURL: cfg.usersURL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	p, err := upstream.New(upstream.Options{Name: "products", BaseURL: cfg.productsURL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return usershttp.NewClient(u), productshttp.NewClient(p), nil
}

func readyFunc(checks []server.Check, info func(context.Context) map[string]any) func(context.Context) (any, bool) {
	return func(ctx context.Context) (any, bool) { return server.Readiness(ctx, checks, info) }
}

// publicSpec is the OpenAPI document the gateway serves.
func publicSpec() ([]byte, error) {
	return gateway.OpenAPI(usershttp.Describe, productshttp.Describe, ordershttp.Describe)
}

// newGateway builds the gateway over the three services, given as handlers
// (in-process or proxies) with their readiness probes.
func newGateway(ups map[string]*module, log *slog.Logger) (http.Handler, error) {
	spec, err := publicSpec()
	if err != nil {
		return nil, err
	}
	var list []gateway.Upstream
	for _, name := range []string{"users", "products", "orders"} {
		m := ups[name]
		list = append(list, gateway.Upstream{Name: name, Prefix: "/api/v1/" + name, Handler: m.handler, Ready: m.ready})
	}
	return gateway.Handler(list, spec, log), nil
}
