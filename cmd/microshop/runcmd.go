package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/supervisor"
	"github.com/microshop/microshop/internal/system"
)

// childEnv marks a process started by `microshop run`; the test binary uses it
// to behave as the microshop binary when the supervisor starts it.
const childEnv = "MICROSHOP_CHILD=1"

type runOptions struct {
	config
	monolith     bool
	debug        bool
	restartDelay time.Duration
}

func runCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the whole system on this machine: each service as its own process, or one process with --monolith",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logging.New(stderr, o.logFormat, o.logLevel)
			if err := os.MkdirAll(o.dataDir, 0o750); err != nil {
				return err
			}
			if o.monolith {
				return runMonolith(cmd.Context(), &o, getenv, stdout, log)
			}
			return runServices(cmd.Context(), &o, getenv, stdout, stderr, log)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.addr, "addr", envOr(getenv, "MICROSHOP_ADDR", defaultGatewayAddr), "gateway listen address (MICROSHOP_ADDR)")
	fs.BoolVar(&o.monolith, "monolith", false, "run every module in this one process, calling each other in memory")
	fs.BoolVar(&o.debug, "debug", false, "serve each service's pprof profiles on an internal loopback port of its own (logged at start)")
	fs.DurationVar(&o.restartDelay, "restart-delay", time.Second, "wait before restarting a service process that died")
	fs.StringVar(&o.natsURL, "nats-url", getenv("MICROSHOP_NATS_URL"),
		"an external NATS cluster (MICROSHOP_NATS_URL); empty starts the embedded broker")
	replicas, _ := strconv.Atoi(envOr(getenv, "MICROSHOP_NATS_REPLICAS", "1"))
	fs.IntVar(&o.natsReplicas, "nats-replicas", replicas, "replicas of each JetStream stream (MICROSHOP_NATS_REPLICAS)")
	o.commonFlags(fs, getenv)
	o.limitFlags(fs, getenv)
	return cmd
}

// runServices starts users, products, orders and the gateway as child processes
// of this binary on loopback ports and supervises them.
func runServices(ctx context.Context, o *runOptions, getenv func(string) string, stdout, stderr io.Writer, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	addrs := map[string]string{"gateway": o.addr}
	for _, name := range []string{"users", "products", "orders"} {
		if addrs[name], err = freeAddr(); err != nil {
			return err
		}
	}
	if _, port, _ := net.SplitHostPort(o.addr); port == "0" {
		if addrs["gateway"], err = freeAddr(); err != nil {
			return err
		}
	}
	// orders proves who it is to products with its own key; products trusts
	// that key alone for its internal endpoints.
	ordersKey, err := serviceKey(filepath.Join(o.dataDir, "keys", "orders.key"))
	if err != nil {
		return err
	}
	env := map[string][]string{
		"orders":   {"MICROSHOP_SERVICE_KEY=" + auth.EncodeKey(ordersKey)},
		"products": {"MICROSHOP_TRUSTED_SERVICES=orders=" + auth.EncodePublic(ordersKey.Public().(ed25519.PublicKey))},
		"users":    {"MICROSHOP_ADMIN_EMAIL=" + getenv("MICROSHOP_ADMIN_EMAIL"), "MICROSHOP_ADMIN_PASSWORD=" + getenv("MICROSHOP_ADMIN_PASSWORD")},
	}
	var procs []supervisor.Process
	natsURL := o.natsURL
	if natsURL == "" { // the embedded broker, as a process of its own
		if addrs["nats"], err = freeAddr(); err != nil {
			return err
		}
		natsURL = "nats://" + addrs["nats"]
		procs = append(procs, supervisor.Process{Name: "nats", Addr: addrs["nats"],
			Args: []string{"serve", "nats", "--addr", addrs["nats"], "--data-dir", o.dataDir, "--log-format", o.logFormat, "--log-level", o.logLevel}})
	}
	common := []string{"--data-dir", o.dataDir, "--log-format", o.logFormat, "--log-level", o.logLevel,
		"--users-url", "http://" + addrs["users"], "--products-url", "http://" + addrs["products"],
		"--orders-url", "http://" + addrs["orders"], "--nats-url", natsURL, "--nats-replicas", strconv.Itoa(o.natsReplicas)}
	for _, name := range system.Services {
		args := append([]string{"serve", name, "--addr", addrs[name]}, common...)
		if url := databaseURL(getenv, name); url != "" && name != "gateway" {
			args = append(args, "--database-url", url)
		}
		debugAddr := ""
		if o.debug {
			debugAddr, err = freeAddr()
			if err != nil {
				return err
			}
			args = append(args, "--debug-addr", debugAddr) // each child logs where its profiles are
		}
		if name == "gateway" {
			args = append(args, "--rate-per-client", ftoa(o.limits.PerClient), "--rate-per-user", ftoa(o.limits.PerUser),
				"--auth-per-minute", ftoa(o.limits.AuthPerMin))
		}
		procs = append(procs, supervisor.Process{
			Name: name, Args: args, Env: env[name], Addr: addrs[name], DebugAddr: debugAddr, HealthURL: "http://" + addrs[name] + "/healthz",
		})
	}
	sup := &supervisor.Supervisor{
		Executable:   exe,
		Env:          append(os.Environ(), childEnv),
		Output:       stderr,
		Log:          log,
		RestartDelay: o.restartDelay,
		StateFile:    filepath.Join(o.dataDir, "run", "services.json"),
	}
	return sup.Run(ctx, procs, func() {
		url := "http://" + addrs["gateway"]
		demoAccounts(ctx, url, o.dataDir, stdout, log)
		fmt.Fprintf(stdout, "microshop ready at %s (mode: services; users %s, products %s, orders %s, nats %s; state in %s)\n",
			url, addrs["users"], addrs["products"], addrs["orders"], natsURL, sup.StateFile)
	})
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// serviceKey reads a service's private key from path, creating it (0600) on
// first use, so that keys survive restarts of `microshop run`.
func serviceKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return auth.ParseServiceKey(string(b))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(auth.EncodeKey(key)), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// freeAddr asks the kernel for a free loopback port. The port is released
// before the child binds it; on loopback the window for another process to take
// it is negligible, and a clash only fails that child, which is restarted.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// runMonolith runs every module in this process behind the gateway.
func runMonolith(ctx context.Context, o *runOptions, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	o.seed = true
	cfg, err := o.system(getenv, log)
	if err != nil {
		return err
	}
	m, err := system.Monolith(ctx, cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	go m.Run(ctx)
	if o.debug {
		go func() {
			if err := server.ServeDebug(ctx, "127.0.0.1:0", log); err != nil {
				log.Error("debug endpoints", "err", err)
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(ctx, ln, m.Handler, log) }()
	url := "http://" + ln.Addr().String()
	demoAccounts(ctx, url, o.dataDir, stdout, log)
	fmt.Fprintf(stdout, "microshop ready at %s (mode: monolith)\n", url)
	return <-errc
}

// newPassword returns a random password of 22 URL-safe characters (128 bits).
func newPassword() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
