// Package system assembles microshop: each service alone (what `serve` runs),
// or every module in one process (the monolith). It is the one place where
// the services, their stores, their peers and their credentials are wired.
package system

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordershttp"
	"github.com/microshop/microshop/internal/platform/auth"
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

// Services are the names of the services, in start order.
var Services = []string{"users", "products", "orders", "gateway"}

// Config is what assembling a service needs.
type Config struct {
	DataDir     string
	DatabaseURL func(service string) string // "" means SQLite in DataDir
	UsersURL    string
	ProductsURL string
	OrdersURL   string
	Seed        bool // products: add the demo catalog when empty

	// ServiceKey is this service's own key for calling internal endpoints
	// (orders needs one to reserve stock).
	ServiceKey ed25519.PrivateKey
	// Trusted lists the services whose tokens internal endpoints accept.
	Trusted auth.StaticKeys

	AdminEmail    string // with AdminPassword: the admin account ensured at start
	AdminPassword string
	Limits        gateway.Limits
	Log           *slog.Logger
}

// Module is an assembled service: its handler, readiness, background work and
// what to close when it stops.
type Module struct {
	Handler http.Handler
	Ready   func(ctx context.Context) (any, bool)
	Run     func(ctx context.Context) // nil when there is no background work
	Close   func()
}

// Migrations returns each data-owning service's embedded migrations.
func Migrations() map[string]fs.FS {
	return map[string]fs.FS{
		"users":    usersdb.Migrations(),
		"products": productsdb.Migrations(),
		"orders":   ordersdb.Migrations(),
	}
}

// OpenDB opens and migrates the database of one service.
func OpenDB(ctx context.Context, url, service, dataDir string) (*sqldb.DB, error) {
	db, err := sqldb.Open(ctx, url, service, dataDir)
	if err != nil {
		return nil, err
	}
	if err := sqldb.Migrate(ctx, db, Migrations()[service]); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (c *Config) dbURL(service string) string {
	if c.DatabaseURL == nil {
		return ""
	}
	return c.DatabaseURL(service)
}

// Service assembles the named service on its own, talking to its peers over HTTP.
func Service(ctx context.Context, name string, cfg Config) (*Module, error) {
	log := cfg.Log
	jwks := auth.NewJWKSClient(cfg.UsersURL + "/.well-known/jwks.json")
	switch name {
	case "gateway":
		ups := map[string]*Module{}
		for svc, url := range map[string]string{"users": cfg.UsersURL, "products": cfg.ProductsURL, "orders": cfg.OrdersURL} {
			h, err := gateway.Proxy(svc, url, log)
			if err != nil {
				return nil, err
			}
			ups[svc] = &Module{Handler: h, Ready: gateway.ProbeURL(url)}
		}
		return newGateway(ups, jwks, cfg.Limits, log)
	case "users":
		db, err := OpenDB(ctx, cfg.dbURL(name), name, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		_, m, err := newUsers(ctx, db, cfg, log)
		return m, err
	case "products":
		db, err := OpenDB(ctx, cfg.dbURL(name), name, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		authn := &auth.Authenticator{Users: auth.NewUserVerifier(jwks), Services: auth.NewServiceVerifier(cfg.Trusted), Log: log}
		_, m, err := newProducts(ctx, db, cfg.Seed, authn, log)
		return m, err
	case "orders":
		if cfg.ServiceKey == nil {
			return nil, errors.New("orders needs its service key (MICROSHOP_SERVICE_KEY) to reserve stock")
		}
		db, err := OpenDB(ctx, cfg.dbURL(name), name, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		creds := auth.Credentials(auth.NewServiceSigner("orders", cfg.ServiceKey))
		u, err := upstream.New(upstream.Options{Name: "users", BaseURL: cfg.UsersURL, Logger: log, Decorate: creds})
		if err != nil {
			db.Close()
			return nil, err
		}
		p, err := upstream.New(upstream.Options{Name: "products", BaseURL: cfg.ProductsURL, Logger: log, Decorate: creds})
		if err != nil {
			db.Close()
			return nil, err
		}
		uc, pc := usershttp.NewClient(u), productshttp.NewClient(p)
		info := func(context.Context) map[string]any {
			return map[string]any{"upstreams": map[string]any{"users": uc.State(), "products": pc.State()}}
		}
		authn := &auth.Authenticator{Users: auth.NewUserVerifier(jwks), Log: log}
		return newOrders(db, uc, pc, authn, info, log), nil
	}
	return nil, fmt.Errorf("unknown service %q", name)
}

// Monolith assembles every module in one process behind the gateway. orders
// calls users and products in memory, through the same interfaces their HTTP
// clients implement; every module still checks credentials itself.
func Monolith(ctx context.Context, cfg Config) (*Module, error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	dbs := map[string]*sqldb.DB{}
	for _, name := range []string{"users", "products", "orders"} {
		db, err := OpenDB(ctx, cfg.dbURL(name), name, cfg.DataDir)
		if err != nil {
			closeAll()
			return nil, err
		}
		closers = append(closers, func() { db.Close() })
		dbs[name] = db
	}
	usersSvc, usersMod, err := newUsers(ctx, dbs["users"], cfg, cfg.Log.With("service", "users"))
	if err != nil {
		closeAll()
		return nil, err
	}
	keys := usersSvc.KeySet()
	authn := func(service string) *auth.Authenticator {
		return &auth.Authenticator{Users: auth.NewUserVerifier(keys), Log: cfg.Log.With("service", service)}
	}
	productsSvc, productsMod, err := newProducts(ctx, dbs["products"], cfg.Seed, authn("products"), cfg.Log.With("service", "products"))
	if err != nil {
		closeAll()
		return nil, err
	}
	ordersMod := newOrders(dbs["orders"], usersSvc, productsSvc, authn("orders"), nil, cfg.Log.With("service", "orders"))
	gw, err := newGateway(map[string]*Module{"users": usersMod, "products": productsMod, "orders": ordersMod},
		keys, cfg.Limits, cfg.Log.With("service", "gateway"))
	if err != nil {
		closeAll()
		return nil, err
	}
	gw.Run = func(ctx context.Context) {
		go usersMod.Run(ctx)
		ordersMod.Run(ctx)
	}
	gw.Close = closeAll
	return gw, nil
}

// every runs fn now and then at each interval until ctx is done.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func dbCheck(db *sqldb.DB) []server.Check {
	return []server.Check{{Name: "database", Run: db.Ping}}
}

func readyFunc(checks []server.Check, info func(context.Context) map[string]any) func(context.Context) (any, bool) {
	return func(ctx context.Context) (any, bool) { return server.Readiness(ctx, checks, info) }
}

func newUsers(ctx context.Context, db *sqldb.DB, cfg Config, log *slog.Logger) (*users.Service, *Module, error) {
	svc := users.NewService(usersdb.New(db), log)
	if err := svc.EnsureSigningKey(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("signing key: %w", err)
	}
	if cfg.AdminEmail != "" && cfg.AdminPassword != "" {
		if err := svc.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("admin account: %w", err)
		}
	}
	checks := dbCheck(db)
	authn := &auth.Authenticator{Users: auth.NewUserVerifier(svc.KeySet()), Log: log}
	return svc, &Module{
		Handler: usershttp.Handler(svc, authn, checks, log),
		Ready:   readyFunc(checks, nil),
		Run:     func(ctx context.Context) { every(ctx, time.Hour, func() { svc.PurgeRefreshTokens(ctx) }) },
		Close:   func() { db.Close() },
	}, nil
}

func newProducts(ctx context.Context, db *sqldb.DB, seed bool, authn *auth.Authenticator, log *slog.Logger) (*products.Service, *Module, error) {
	svc := products.NewService(productsdb.New(db))
	if seed {
		if err := svc.Seed(ctx); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("seed catalog: %w", err)
		}
	}
	checks := dbCheck(db)
	return svc, &Module{
		Handler: productshttp.Handler(svc, authn, checks, log),
		Ready:   readyFunc(checks, nil),
		Close:   func() { db.Close() },
	}, nil
}

// Sweeper settings: a checkout that has not finished after pendingTimeout is
// compensated (its stock released) and rejected.
const (
	sweepEvery     = 10 * time.Second
	pendingTimeout = 30 * time.Second
)

func newOrders(db *sqldb.DB, dir orders.UserDirectory, cat orders.Catalog, authn *auth.Authenticator, info func(context.Context) map[string]any, log *slog.Logger) *Module {
	svc := orders.NewService(ordersdb.New(db), dir, cat, log)
	checks := dbCheck(db)
	return &Module{
		Handler: ordershttp.Handler(svc, authn, checks, info, log),
		Ready:   readyFunc(checks, info),
		Run:     func(ctx context.Context) { svc.RunSweeper(ctx, sweepEvery, pendingTimeout) },
		Close:   func() { db.Close() },
	}
}

// publicPrefixes are the paths the gateway routes to each service.
var publicPrefixes = map[string][]string{
	"users":    {"/api/v1/users", "/api/v1/auth", "/.well-known/jwks.json"},
	"products": {"/api/v1/products"},
	"orders":   {"/api/v1/orders"},
}

// PublicSpec is the OpenAPI document the gateway serves.
func PublicSpec() ([]byte, error) {
	return gateway.OpenAPI(usershttp.Describe, productshttp.Describe, ordershttp.Describe)
}

// newGateway builds the gateway over the three services, given as handlers (in
// process or proxies) with their readiness probes.
func newGateway(ups map[string]*Module, keys auth.KeySet, limits gateway.Limits, log *slog.Logger) (*Module, error) {
	spec, err := PublicSpec()
	if err != nil {
		return nil, err
	}
	var list []gateway.Upstream
	for _, name := range []string{"users", "products", "orders"} {
		m := ups[name]
		list = append(list, gateway.Upstream{Name: name, Prefixes: publicPrefixes[name], Handler: m.Handler, Ready: m.Ready})
	}
	authn := &auth.Authenticator{Users: auth.NewUserVerifier(keys), Log: log}
	return &Module{Handler: gateway.Handler(list, spec, authn, limits, log)}, nil
}
