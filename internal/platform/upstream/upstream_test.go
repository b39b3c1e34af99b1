package upstream_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/deadline"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/requestid"
	"github.com/microshop/microshop/internal/platform/tcpfault"
	"github.com/microshop/microshop/internal/platform/upstream"
)

func newClient(t *testing.T, url string, o upstream.Options) *upstream.Client {
	t.Helper()
	o.Name, o.BaseURL = "peer", url
	c, err := upstream.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorsBecomeFaults(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		idempotent bool
		wantKind   fault.Kind
		wantCode   string
		wantCalls  int64
	}{
		{"404 problem travels on", 404, `{"type":"/problems/not-found","title":"Not found","status":404,"detail":"user not found"}`, true, fault.NotFound, "", 1},
		{"409 keeps its code", 409, `{"type":"/problems/email-taken","title":"Conflict","status":409,"detail":"taken"}`, false, fault.Conflict, "email-taken", 1},
		{"400 with garbage body", 400, `not json`, true, fault.Invalid, "", 1},
		{"500 is retried then bad gateway", 500, `{"detail":"secret stack trace"}`, true, fault.BadGateway, "upstream-failed", 3},
		{"500 on a non-idempotent call is not retried", 500, ``, false, fault.BadGateway, "upstream-failed", 1},
		{"503 becomes unavailable", 503, ``, true, fault.Unavailable, "upstream-unavailable", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", problem.ContentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := newClient(t, srv.URL, upstream.Options{BreakerFailures: 100})
			err := c.Do(context.Background(), http.MethodPost, "/x", map[string]int{"a": 1}, nil, tt.idempotent)
			if got := fault.KindOf(err); got != tt.wantKind {
				t.Errorf("kind = %v, want %v (err %v)", got, tt.wantKind, err)
			}
			if got := fault.CodeOf(err); got != tt.wantCode {
				t.Errorf("code = %q, want %q", got, tt.wantCode)
			}
			if p := problem.From(err); p.Detail == "secret stack trace" {
				t.Errorf("a peer's 5xx text leaked: %q", p.Detail)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRetryRecovers(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, upstream.Options{})
	var out struct{ OK bool }
	if err := c.Get(context.Background(), "/x", &out); err != nil || !out.OK {
		t.Fatalf("Get = %v, %+v; want success after retries", err, out)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("calls = %d, want 3", got)
	}
}

func TestHeadersPropagate(t *testing.T) {
	var gotID, gotBudget string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID, gotBudget = r.Header.Get(requestid.Header), r.Header.Get(deadline.Header)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, upstream.Options{AttemptTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(requestid.With(context.Background(), "req-1"), 800*time.Millisecond)
	defer cancel()
	if err := c.Get(ctx, "/x", nil); err != nil {
		t.Fatal(err)
	}
	if gotID != "req-1" {
		t.Errorf("request id = %q, want req-1", gotID)
	}
	ms, err := strconv.Atoi(gotBudget)
	if err != nil || ms <= 0 || ms > 800 {
		t.Errorf("deadline header = %q, want 1..800 ms (the caller's remaining budget)", gotBudget)
	}
}

// TestBreakerOpensAndCloses drives the breaker over a real TCP fault.
func TestBreakerOpensAndCloses(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	proxy, err := tcpfault.Listen(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	c := newClient(t, "http://"+proxy.Addr(), upstream.Options{
		BreakerFailures: 3, BreakerDelay: 200 * time.Millisecond, MaxRetries: 1,
		Transport: &http.Transport{DisableKeepAlives: true},
	})
	ctx := context.Background()

	proxy.SetRefuse(true)
	for range 3 {
		c.Get(ctx, "/x", nil)
	}
	if got := c.State()["breaker"]; got != "open" {
		t.Fatalf("breaker after failures = %v, want open", got)
	}
	err = c.Get(ctx, "/x", nil)
	if fault.KindOf(err) != fault.Unavailable || problem.From(err).RetryAfter() <= 0 {
		t.Errorf("call with open breaker = %v, want Unavailable with Retry-After", err)
	}
	before := calls.Load()
	proxy.SetRefuse(false)
	if calls.Load() != before {
		t.Errorf("open breaker let a call through")
	}
	var lastErr error
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
		if lastErr = c.Get(ctx, "/x", nil); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("breaker never let calls through again: %v", lastErr)
	}
	if got := c.State()["breaker"]; got != "closed" {
		t.Errorf("breaker after recovery = %v, want closed", got)
	}
}

// TestDeadlineHolds checks that a slow peer cannot hold a call past its budget.
func TestDeadlineHolds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	proxy, err := tcpfault.Listen(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.SetLatency(30 * time.Second)
	c := newClient(t, "http://"+proxy.Addr(), upstream.Options{AttemptTimeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Get(ctx, "/x", nil)
	if fault.KindOf(err) != fault.Timeout {
		t.Errorf("err = %v (kind %v), want Timeout", err, fault.KindOf(err))
	}
	// Generous bound: the point is that the 30 s latency did not hold the call.
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("call took %v, the 300ms deadline did not hold", elapsed)
	}
}
