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
	"path/filepath"
	"time"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordersevents"
	"github.com/microshop/microshop/internal/orders/ordershttp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
	"github.com/microshop/microshop/internal/products/productsevents"
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

	NATSURL      string // the broker; empty in the monolith starts an embedded one
	NATSReplicas int    // replicas of each stream (1 embedded, 3 on a cluster)

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
	if service == "products" || service == "orders" { // they publish and consume events
		if err := sqldb.Migrate(ctx, db, outbox.Migrations()); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// connectBroker connects a service to NATS and makes sure the streams exist.
func connectBroker(ctx context.Context, cfg Config, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if cfg.NATSURL == "" {
		return nil, nil, errors.New(name + " needs a NATS URL (MICROSHOP_NATS_URL)")
	}
	nc, js, err := broker.Connect(ctx, cfg.NATSURL, "microshop-"+name, log)
	if err != nil {
		return nil, nil, err
	}
	replicas := max(cfg.NATSReplicas, 1)
	if err := broker.EnsureStreams(ctx, js, replicas); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// brokerCheck reports the NATS connection in readiness.
func brokerCheck(nc *nats.Conn) server.Check {
	return server.Check{Name: "broker", Run: func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected to NATS")
		}
		return nil
	}}
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
		nc, js, err := connectBroker(ctx, cfg, name, log)
		if err != nil {
			db.Close()
			return nil, err
		}
		authn := &auth.Authenticator{Users: auth.NewUserVerifier(jwks), Services: auth.NewServiceVerifier(cfg.Trusted), Log: log}
		_, m, err := newProducts(ctx, db, cfg.Seed, authn, nc, js, log)
		if err != nil {
			nc.Close()
			return nil, err
		}
		m.Close = chain(m.Close, nc.Close)
		return m, nil
	case "orders":
		db, err := OpenDB(ctx, cfg.dbURL(name), name, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		var signer *auth.ServiceSigner // only for calls to internal endpoints
		if cfg.ServiceKey != nil {
			signer = auth.NewServiceSigner("orders", cfg.ServiceKey)
		}
		creds := auth.Credentials(signer)
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
		nc, js, err := connectBroker(ctx, cfg, name, log)
		if err != nil {
			db.Close()
			return nil, err
		}
		authn := &auth.Authenticator{Users: auth.NewUserVerifier(jwks), Log: log}
		m := newOrders(db, uc, pc, authn, info, nc, js, log)
		m.Close = chain(m.Close, nc.Close)
		return m, nil
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
	if cfg.NATSURL == "" { // the same broker, in this process
		srv, err := broker.StartServer(broker.ServerOptions{Dir: filepath.Join(cfg.DataDir, "nats"), Log: cfg.Log.With("service", "nats")})
		if err != nil {
			return nil, err
		}
		closers = append(closers, srv.Shutdown)
		cfg.NATSURL = srv.ClientURL()
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
	nc, js, err := connectBroker(ctx, cfg, "monolith", cfg.Log)
	if err != nil {
		closeAll()
		return nil, err
	}
	closers = append(closers, nc.Close)
	productsSvc, productsMod, err := newProducts(ctx, dbs["products"], cfg.Seed, authn("products"), nc, js, cfg.Log.With("service", "products"))
	if err != nil {
		closeAll()
		return nil, err
	}
	ordersMod := newOrders(dbs["orders"], usersSvc, productsSvc, authn("orders"), nil, nc, js, cfg.Log.With("service", "orders"))
	gw, err := newGateway(map[string]*Module{"users": usersMod, "products": productsMod, "orders": ordersMod},
		keys, cfg.Limits, cfg.Log.With("service", "gateway"))
	if err != nil {
		closeAll()
		return nil, err
	}
	gw.Run = func(ctx context.Context) {
		go usersMod.Run(ctx)
		go productsMod.Run(ctx)
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

func newProducts(ctx context.Context, db *sqldb.DB, seed bool, authn *auth.Authenticator, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) (*products.Service, *Module, error) {
	svc := products.NewService(productsdb.New(db))
	if seed {
		if err := svc.Seed(ctx); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("seed catalog: %w", err)
		}
	}
	relay := outbox.NewRelay(db, js, log)
	checks := append(dbCheck(db), brokerCheck(nc))
	info := outboxInfo(relay)
	return svc, &Module{
		Handler: productshttp.Handler(svc, authn, checks, log),
		Ready:   readyFunc(checks, info),
		Run: func(ctx context.Context) {
			go relay.Run(ctx)
			consume(ctx, log, func() (func(), error) { return productsevents.Start(ctx, js, svc, relay, log) })
		},
		Close: func() { db.Close() },
	}, nil
}

// sweepEvery is how often orders looks for pending orders past their deadline.
const sweepEvery = 2 * time.Second

func newOrders(db *sqldb.DB, dir orders.UserDirectory, cat orders.Catalog, authn *auth.Authenticator, info func(context.Context) map[string]any, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) *Module {
	relay := outbox.NewRelay(db, js, log)
	svc := orders.NewService(ordersdb.New(db), dir, cat, log, orders.WithKick(relay.Kick))
	checks := append(dbCheck(db), brokerCheck(nc))
	pending := outboxInfo(relay)
	return &Module{
		Handler: ordershttp.Handler(svc, authn, checks, merge(info, pending), log),
		Ready:   readyFunc(checks, merge(info, pending)),
		Run: func(ctx context.Context) {
			go relay.Run(ctx)
			go svc.RunSweeper(ctx, sweepEvery)
			consume(ctx, log, func() (func(), error) { return ordersevents.RunConsumer(ctx, js, svc, log) })
		},
		Close: func() { db.Close() },
	}
}

// consume starts a consumer, retrying until it starts or ctx ends, and stops
// it when ctx ends.
func consume(ctx context.Context, log *slog.Logger, start func() (func(), error)) {
	for {
		stop, err := start()
		if err == nil {
			<-ctx.Done()
			stop()
			return
		}
		log.Warn("event consumer not started; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// outboxInfo reports the outbox backlog in readiness.
func outboxInfo(relay *outbox.Relay) func(context.Context) map[string]any {
	return func(ctx context.Context) map[string]any {
		n, err := relay.Pending(ctx)
		if err != nil {
			return map[string]any{"outbox_pending": "unknown"}
		}
		return map[string]any{"outbox_pending": n}
	}
}

// merge combines readiness reports; nil ones are skipped.
func merge(infos ...func(context.Context) map[string]any) func(context.Context) map[string]any {
	return func(ctx context.Context) map[string]any {
		out := map[string]any{}
		for _, info := range infos {
			if info == nil {
				continue
			}
			for k, v := range info(ctx) {
				out[k] = v
			}
		}
		return out
	}
}

// chain returns a function that calls each non-nil f in order.
func chain(fs ...func()) func() {
	return func() {
		for _, f := range fs {
			if f != nil {
				f()
			}
		}
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
