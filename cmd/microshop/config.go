package main

import (
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/microshop/microshop/internal/gateway"
)

// config is what a service needs to start. Every field has a flag, whose default
// comes from a MICROSHOP_* environment variable (12-factor).
type config struct {
	addr         string
	dataDir      string
	databaseURL  string
	usersURL     string
	productsURL  string
	ordersURL    string
	logFormat    string
	logLevel     string
	seed         bool
	limits       gateway.Limits
	natsURL      string
	natsReplicas int
}

// Default addresses of the services when they run on one machine.
const (
	defaultGatewayAddr  = "127.0.0.1:8080"
	defaultUsersAddr    = "127.0.0.1:8081"
	defaultProductsAddr = "127.0.0.1:8082"
	defaultOrdersAddr   = "127.0.0.1:8083"
	defaultDataDir      = "microshop-data"
	defaultNATSAddr     = "127.0.0.1:4222"
)

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// commonFlags adds the flags every subcommand shares.
func (c *config) commonFlags(fs *pflag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.dataDir, "data-dir", envOr(getenv, "MICROSHOP_DATA_DIR", defaultDataDir),
		"directory for SQLite files and run state (MICROSHOP_DATA_DIR)")
	fs.StringVar(&c.logFormat, "log-format", envOr(getenv, "MICROSHOP_LOG_FORMAT", "text"),
		"log format: text or json (MICROSHOP_LOG_FORMAT)")
	fs.StringVar(&c.logLevel, "log-level", envOr(getenv, "MICROSHOP_LOG_LEVEL", "info"),
		"log level: debug, info, warn or error (MICROSHOP_LOG_LEVEL)")
}

// peerFlags adds the URLs of the other services.
func (c *config) peerFlags(fs *pflag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.usersURL, "users-url", envOr(getenv, "MICROSHOP_USERS_URL", "http://"+defaultUsersAddr),
		"base URL of the users service (MICROSHOP_USERS_URL)")
	fs.StringVar(&c.productsURL, "products-url", envOr(getenv, "MICROSHOP_PRODUCTS_URL", "http://"+defaultProductsAddr),
		"base URL of the products service (MICROSHOP_PRODUCTS_URL)")
	fs.StringVar(&c.natsURL, "nats-url", envOr(getenv, "MICROSHOP_NATS_URL", "nats://"+defaultNATSAddr),
		"NATS server or cluster URL(s), comma-separated (MICROSHOP_NATS_URL)")
	replicas, _ := strconv.Atoi(envOr(getenv, "MICROSHOP_NATS_REPLICAS", "1"))
	fs.IntVar(&c.natsReplicas, "nats-replicas", replicas, "replicas of each JetStream stream: 1 embedded, 3 on a cluster (MICROSHOP_NATS_REPLICAS)")
	fs.StringVar(&c.ordersURL, "orders-url", envOr(getenv, "MICROSHOP_ORDERS_URL", "http://"+defaultOrdersAddr),
		"base URL of the orders service (MICROSHOP_ORDERS_URL)")
}

// databaseURL returns the database URL for service: MICROSHOP_<SERVICE>_DATABASE_URL,
// else MICROSHOP_DATABASE_URL, else "" (SQLite in the data directory).
func databaseURL(getenv func(string) string, service string) string {
	if v := getenv("MICROSHOP_" + strings.ToUpper(service) + "_DATABASE_URL"); v != "" {
		return v
	}
	return getenv("MICROSHOP_DATABASE_URL")
}

// limitFlags adds the gateway's rate limits.
func (c *config) limitFlags(fs *pflag.FlagSet, getenv func(string) string) {
	fs.Float64Var(&c.limits.PerClient, "rate-per-client", envFloat(getenv, "MICROSHOP_RATE_PER_CLIENT"),
		"gateway: requests per second per client address, 0 for the default (100), negative for none (MICROSHOP_RATE_PER_CLIENT)")
	fs.Float64Var(&c.limits.PerUser, "rate-per-user", envFloat(getenv, "MICROSHOP_RATE_PER_USER"),
		"gateway: requests per second per user, 0 for the default (50), negative for none (MICROSHOP_RATE_PER_USER)")
	fs.Float64Var(&c.limits.AuthPerMin, "auth-per-minute", envFloat(getenv, "MICROSHOP_AUTH_PER_MINUTE"),
		"gateway: register/login/refresh per minute per client address, 0 for the default (20), negative for none (MICROSHOP_AUTH_PER_MINUTE)")
}

func envFloat(getenv func(string) string, key string) float64 {
	f, _ := strconv.ParseFloat(getenv(key), 64)
	return f
}
