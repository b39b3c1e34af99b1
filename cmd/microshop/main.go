// Command microshop runs the microshop system: every service as its own process
// (run), all of them in one process (run --monolith), or one service (serve).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "microshop:", err)
		os.Exit(1)
	}
}

// run is the whole program: main only supplies the process's context,
// arguments, environment and output, so tests can call run the same way.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "microshop",
		Short:         "A reference microservices shop: users, products, orders and a gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		runCommand(getenv, stdout, stderr),
		serveCommand(getenv, stdout, stderr),
		migrateCommand(getenv, stdout, stderr),
		keysCommand(getenv, stdout, stderr),
		loadCommand(getenv, stdout, stderr),
		benchCommand(getenv, stdout, stderr),
	)
	return root.ExecuteContext(ctx)
}
