package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/supervisor"
)

// childEnv marks a process started by `microshop run`; the test binary uses it
// to behave as the microshop binary when the supervisor starts it.
const childEnv = "MICROSHOP_CHILD=1"

type runOptions struct {
	config
	monolith     bool
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
			if o.monolith {
				return runMonolith(cmd.Context(), &o, getenv, stdout, log)
			}
			return runServices(cmd.Context(), &o, getenv, stdout, stderr, log)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.addr, "addr", envOr(getenv, "MICROSHOP_ADDR", defaultGatewayAddr), "gateway listen address (MICROSHOP_ADDR)")
	fs.BoolVar(&o.monolith, "monolith", false, "run every module in this one process, calling each other in memory")
	fs.DurationVar(&o.restartDelay, "restart-delay", time.Second, "wait before restarting a service process that died")
	o.commonFlags(fs, getenv)
	return cmd
}

// runServices starts users, products, orders and the gateway as child processes
// of this binary on loopback ports and supervises them.
func runServices(ctx context.Context, o *runOptions, getenv func(string) string, stdout, stderr io.Writer, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dataDir, 0o750); err != nil {
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
	common := []string{"--data-dir", o.dataDir, "--log-format", o.logFormat, "--log-level", o.logLevel,
		"--users-url", "http://" + addrs["users"], "--products-url", "http://" + addrs["products"],
		"--orders-url", "http://" + addrs["orders"]}
	var procs []supervisor.Process
	for _, name := range services {
		args := append([]string{"serve", name, "--addr", addrs[name]}, common...)
		if url := databaseURL(getenv, name); url != "" && name != "gateway" {
			args = append(args, "--database-url", url)
		}
		procs = append(procs, supervisor.Process{
			Name: name, Args: args, Addr: addrs[name], HealthURL: "http://" + addrs[name] + "/healthz",
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
		fmt.Fprintf(stdout, "microshop ready at http://%s (mode: services; users %s, products %s, orders %s; state in %s)\n",
			addrs["gateway"], addrs["users"], addrs["products"], addrs["orders"], sup.StateFile)
	})
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

// runMonolith runs every module in this process. orders calls users and products
// through the same interfaces their HTTP clients implement, but in memory.
func runMonolith(ctx context.Context, o *runOptions, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	dbs := map[string]string{}
	for _, name := range []string{"users", "products", "orders"} {
		dbs[name] = databaseURL(getenv, name)
	}
	usersDB, err := openDB(ctx, dbs["users"], "users", o.dataDir)
	if err != nil {
		return err
	}
	usersSvc, usersMod := newUsers(usersDB, log.With("service", "users"))
	defer usersMod.close()

	productsDB, err := openDB(ctx, dbs["products"], "products", o.dataDir)
	if err != nil {
		return err
	}
	productsSvc, productsMod, err := newProducts(ctx, productsDB, true, log.With("service", "products"))
	if err != nil {
		productsDB.Close()
		return err
	}
	defer productsMod.close()

	ordersDB, err := openDB(ctx, dbs["orders"], "orders", o.dataDir)
	if err != nil {
		return err
	}
	ordersMod := newOrders(ordersDB, usersSvc, productsSvc, nil, log.With("service", "orders"))
	defer ordersMod.close()

	gw, err := newGateway(map[string]*module{"users": usersMod, "products": productsMod, "orders": ordersMod}, log.With("service", "gateway"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	go ordersMod.run(ctx)
	fmt.Fprintf(stdout, "microshop ready at http://%s (mode: monolith)\n", ln.Addr())
	return server.Serve(ctx, ln, gw, log)
}
