package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/system"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

func keysCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var cfg config
	keys := &cobra.Command{Use: "keys", Short: "Manage the keys that sign access tokens"}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new signing key; tokens signed with the previous one stay valid until they expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := cfg.databaseURL
			if url == "" {
				url = databaseURL(getenv, "users")
			}
			db, err := system.OpenDB(cmd.Context(), url, "users", cfg.dataDir)
			if err != nil {
				return err
			}
			defer db.Close()
			svc := users.NewService(usersdb.New(db), logging.New(stderr, cfg.logFormat, cfg.logLevel))
			kid, err := svc.RotateSigningKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "new signing key %s is active; running users services pick it up within 10 seconds\n", kid)
			return nil
		},
	}
	rotate.Flags().StringVar(&cfg.databaseURL, "database-url", "", "the users database (default: MICROSHOP_USERS_DATABASE_URL, MICROSHOP_DATABASE_URL, then SQLite in --data-dir)")
	cfg.commonFlags(rotate.Flags(), getenv)
	keys.AddCommand(rotate)
	return keys
}
