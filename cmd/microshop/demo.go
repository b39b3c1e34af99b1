package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// demoFile holds the demo customers' credentials, readable by the owner only.
const demoFile = "demo-credentials.txt"

// demoAccounts registers the demo customers Alice and Bob through the gateway
// at url the first time the system starts with this data directory, with
// random passwords that it prints once and keeps in a 0600 file. There are no
// default passwords: every installation has its own.
func demoAccounts(ctx context.Context, url, dataDir string, stdout io.Writer, log *slog.Logger) {
	path := filepath.Join(dataDir, demoFile)
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(stdout, "demo customers: credentials in %s\n", path)
		return
	}
	var lines []string
	for _, who := range []struct{ name, email string }{{"Alice", "alice@example.com"}, {"Bob", "bob@example.com"}} {
		password := newPassword()
		status, err := postJSON(ctx, url+"/api/v1/auth/register",
			map[string]string{"name": who.name, "email": who.email, "password": password})
		if err != nil || status != http.StatusCreated {
			log.Warn("demo customer not created", "email", who.email, "status", status, "err", err)
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s", who.email, password))
	}
	if len(lines) == 0 {
		return
	}
	body := "# microshop demo customers (email password), created " + time.Now().UTC().Format(time.RFC3339) + "\n" +
		strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		log.Warn("demo credentials not saved", "err", err)
	}
	fmt.Fprintf(stdout, "demo customers (shown once, kept in %s):\n  %s\n", path, strings.Join(lines, "\n  "))
}

func postJSON(ctx context.Context, url string, body any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
