package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/logging/logtest"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
)

// TestMain lets the test binary stand in for the microshop binary: when `run`
// starts its services as child processes it executes os.Executable(), which
// under `go test` is this binary, with MICROSHOP_CHILD=1 set.
func TestMain(m *testing.M) {
	if os.Getenv("MICROSHOP_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "microshop:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// system is a microshop started through run for one test.
type running struct {
	URL           string // the gateway
	DataDir       string
	AdminPassword string
	Stdout        *lockedBuffer // what run printed
	logs          *lockedBuffer
}

const adminEmail = "admin@example.com"

// lockedBuffer collects output written from several goroutines.
type lockedBuffer = logtest.Buffer

// startSystem calls run with the given extra arguments on a free port and a
// fresh data directory, waits until it says it is ready, and stops it (and
// checks that it stopped cleanly) when the test ends.
func startSystem(t *testing.T, extra ...string) *running {
	t.Helper()
	s := &running{DataDir: t.TempDir(), logs: &lockedBuffer{}, Stdout: &lockedBuffer{}}
	args := append([]string{"run", "--addr", "127.0.0.1:0", "--data-dir", s.DataDir, "--log-level", "warn"}, extra...)
	if url := externalNATS(t); url != "" {
		args = append(args, "--nats-url", url)
	}
	s.AdminPassword = newPassword()
	env := map[string]string{"MICROSHOP_ADMIN_EMAIL": adminEmail, "MICROSHOP_ADMIN_PASSWORD": s.AdminPassword}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, getenv, pw, s.logs)
		pw.Close()
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.Stdout.Write([]byte(line + "\n"))
			if i := strings.Index(line, "ready at "); i >= 0 {
				ready <- strings.Fields(line[i+len("ready at "):])[0]
			}
		}
	}()
	select {
	case s.URL = <-ready:
	case err := <-errc:
		t.Fatalf("run exited before it was ready: %v\n%s", err, s.logs)
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatalf("system not ready after 90s\n%s", s.logs)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("run did not stop within 30s of cancellation")
		}
		if t.Failed() {
			t.Logf("system logs:\n%s", s.logs)
		}
	})
	return s
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call sends a request with an optional JSON body and extra headers (pairs).
func call(t *testing.T, method, url string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// expect checks a status code and returns the response.
func expect(t *testing.T, want int, r response) response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, want, r.Body)
	}
	return r
}

// eventually polls cond until it returns true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < timeout; time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not true after %v", what, timeout)
}

// startChild starts one service as a separate process of this test binary and
// waits until it is healthy. It is stopped when the test ends.
func startChild(t *testing.T, logs io.Writer, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), "MICROSHOP_CHILD=1"), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	return cmd
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	eventually(t, 60*time.Second, url+" healthy", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// login returns an access token for email and password.
func login(t *testing.T, base, email, password string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	expect(t, 200, call(t, "POST", base+"/api/v1/auth/login", map[string]string{"email": email, "password": password})).json(t, &tok)
	if tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("login as %s: %+v", email, tok)
	}
	return tok.AccessToken
}

// register creates a customer and returns it with an access token.
func register(t *testing.T, base, name, email string) (apiUser, string) {
	t.Helper()
	password := newPassword()
	var u apiUser
	expect(t, 201, call(t, "POST", base+"/api/v1/auth/register", map[string]string{"name": name, "email": email, "password": password})).json(t, &u)
	return u, login(t, base, email, password)
}

// bearer returns the header pair for a token.
func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// awaitFinal polls an order until the saga has decided it (any status but
// pending) and returns it.
func awaitFinal(t *testing.T, api, id string, headers []string) apiOrder {
	t.Helper()
	var o apiOrder
	eventually(t, 30*time.Second, "order "+id+" decided", func() bool {
		r := call(t, "GET", api+"/orders/"+id, nil, headers...)
		return r.Status == 200 && json.Unmarshal(r.Body, &o) == nil && o.Status != "pending"
	})
	return o
}

// externalNATS returns the NATS server the system tests should use instead of
// the embedded broker, from MICROSHOP_TEST_NATS_URL (the production path:
// `run` then starts no broker), after deleting the streams a previous test
// left there. It returns "" when the variable is not set.
func externalNATS(t *testing.T) string {
	t.Helper()
	url := os.Getenv("MICROSHOP_TEST_NATS_URL")
	if url == "" {
		return ""
	}
	_, js := brokertest.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stream := range []string{broker.StreamOrders, broker.StreamStock, broker.StreamDLQ} {
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("reset %s on %s: %v", stream, url, err)
		}
	}
	return url
}

// needsBrokerProcess skips a test that stops or kills the broker's process,
// which only exists with the embedded broker.
func needsBrokerProcess(t *testing.T) {
	t.Helper()
	if os.Getenv("MICROSHOP_TEST_NATS_URL") != "" {
		t.Skip("signals the broker process, which `run` starts only without an external NATS")
	}
}
