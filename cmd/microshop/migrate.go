package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/microshop/microshop/internal/system"
)

func migrateCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:       "migrate [users|products|orders]...",
		Short:     "Apply the embedded database migrations (all services when none is named)",
		Args:      cobra.OnlyValidArgs,
		ValidArgs: []string{"users", "products", "orders"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"users", "products", "orders"}
			}
			for _, name := range args {
				url := cfg.databaseURL
				if url == "" {
					url = databaseURL(getenv, name)
				}
				db, err := system.OpenDB(cmd.Context(), url, name, cfg.dataDir)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				db.Close()
				fmt.Fprintf(stdout, "%s: migrations applied (%s)\n", name, db.Dialect)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.databaseURL, "database-url", "", "database URL for every named service (default: per-service MICROSHOP_* variables, then SQLite)")
	cfg.commonFlags(cmd.Flags(), getenv)
	return cmd
}
