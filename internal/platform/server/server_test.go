package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/logging/logtest"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/microshop/microshop/internal/platform/deadline"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
	"github.com/microshop/microshop/internal/platform/requestid"
	"github.com/microshop/microshop/internal/platform/server"
)

const secret = "dial tcp 10.1.2.3:5432: password=hunter2"

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// syncBuffer collects output written from several goroutines.
type syncBuffer = logtest.Buffer

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, h http.Handler, method, target string, body io.Reader, header map[string]string) response {
	t.Helper()
	r := httptest.NewRequest(method, target, body)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

type seen struct {
	ctxID    string
	headerID string
	deadline time.Duration
	hasDL    bool
}

func echo(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ctxID = requestid.From(r.Context())
		s.headerID = r.Header.Get(requestid.Header)
		var d time.Time
		d, s.hasDL = r.Context().Deadline()
		s.deadline = time.Until(d)
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestMiddlewareRequestID(t *testing.T) {
	tests := []struct {
		name     string
		sent     string // "" sends no header
		wantKept bool
	}{
		{"missing is generated", "", false},
		{"valid is kept", "client-id_1.2", true},
		{"newline is replaced", "abc\u2028def", false},
		{"too long is replaced", strings.Repeat("a", 129), false},
		{"spaces are replaced", "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seen
			h := server.Middleware(logging.Discard(), echo(&s))
			hdr := map[string]string{}
			if tt.sent != "" {
				hdr[requestid.Header] = tt.sent
			}
			res := do(t, h, http.MethodGet, "/x", nil, hdr)
			got := res.header.Get(requestid.Header)
			if tt.wantKept {
				if got != tt.sent {
					t.Errorf("response id = %q, want the client's %q", got, tt.sent)
				}
			} else if !generatedID.MatchString(got) {
				t.Errorf("response id = %q, want a generated one", got)
			}
			if s.ctxID != got || s.headerID != got {
				t.Errorf("handler saw id %q in ctx and %q in header, want %q in both", s.ctxID, s.headerID, got)
			}
		})
	}
}

func TestMiddlewareDeadline(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		min, max time.Duration
	}{
		{"no header: the service maximum", "", 9 * time.Second, server.MaxBudget},
		{"small budget caps the context", "200", 100 * time.Millisecond, 200 * time.Millisecond},
		{"larger than the maximum is capped", "600000", 9 * time.Second, server.MaxBudget},
		{"garbage is ignored", "soon", 9 * time.Second, server.MaxBudget},
		{"negative is ignored", "-1", 9 * time.Second, server.MaxBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seen
			hdr := map[string]string{}
			if tt.header != "" {
				hdr[deadline.Header] = tt.header
			}
			do(t, server.Middleware(logging.Discard(), echo(&s)), http.MethodGet, "/", nil, hdr)
			if !s.hasDL || s.deadline < tt.min || s.deadline > tt.max {
				t.Errorf("handler deadline = %v (set %v), want in [%v, %v]", s.deadline, s.hasDL, tt.min, tt.max)
			}
		})
	}
}

func TestMiddlewarePanic(t *testing.T) {
	var logs syncBuffer
	log := logging.New(&logs, "json", "info")
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantBody   bool // a problem body is expected
	}{
		{"panic before writing", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			panic(secret)
		}, http.StatusInternalServerError, true},
		{"panic with an error value", func(w http.ResponseWriter, r *http.Request) {
			panic(errors.New(secret))
		}, http.StatusInternalServerError, true},
		{"panic after the header was written keeps it", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			panic(secret)
		}, http.StatusAccepted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, server.Middleware(log, tt.handler), http.MethodGet, "/boom", nil,
				map[string]string{requestid.Header: "rid-panic"})
			if res.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", res.status, tt.wantStatus)
			}
			if strings.Contains(string(res.body), "hunter2") {
				t.Errorf("the body leaks the panic: %s", res.body)
			}
			if !tt.wantBody {
				return
			}
			p := problemtest.Decode(t, res.status, res.header, res.body)
			want := problem.Problem{Type: "/problems/internal", Title: "Internal error", Status: 500,
				Detail: "an internal error occurred", Instance: "/boom", RequestID: "rid-panic"}
			if diff := cmp.Diff(want, p, cmpopts.IgnoreUnexported(problem.Problem{})); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
		})
	}
	if !strings.Contains(logs.String(), `"request_id":"rid-panic"`) || !strings.Contains(logs.String(), `"msg":"panic"`) {
		t.Errorf("the panic was not logged with its request id:\n%s", logs.String())
	}
}

func TestMiddlewareAbortHandlerPanics(t *testing.T) {
	h := server.Middleware(logging.Discard(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler to pass through", v)
		}
	}()
	do(t, h, http.MethodGet, "/", nil, nil)
}

func TestMiddlewareFlushes(t *testing.T) {
	h := server.Middleware(logging.Discard(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the middleware: %v", err)
		}
	}))
	do(t, h, http.MethodGet, "/", nil, nil)
}

func TestNotFound(t *testing.T) {
	res := do(t, http.HandlerFunc(server.NotFound), http.MethodGet, "/nope", nil, nil)
	p := problemtest.Decode(t, res.status, res.header, res.body)
	if res.status != 404 || p.Type != "/problems/not-found" || p.Instance != "/nope" {
		t.Errorf("NotFound = %d %+v", res.status, p)
	}
}

func TestHealth(t *testing.T) {
	ok := server.Check{Name: "db", Run: func(context.Context) error { return nil }}
	failing := server.Check{Name: "cache", Run: func(context.Context) error { return errors.New(secret) }}
	info := func(context.Context) map[string]any {
		return map[string]any{"upstreams": map[string]any{"users": "closed"}}
	}
	tests := []struct {
		name       string
		checks     []server.Check
		info       func(context.Context) map[string]any
		wantStatus int
		want       map[string]any
	}{
		{"no checks", nil, nil, 200, map[string]any{"status": "ok", "checks": map[string]any{}}},
		{"passing checks with info", []server.Check{ok}, info, 200, map[string]any{
			"status": "ok", "checks": map[string]any{"db": "ok"},
			"upstreams": map[string]any{"users": "closed"},
		}},
		{"a failing check", []server.Check{ok, failing}, info, 503, map[string]any{
			"status": "unavailable", "checks": map[string]any{"db": "ok", "cache": "unavailable"},
			"upstreams": map[string]any{"users": "closed"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			server.Health(mux, tt.checks, tt.info)

			res := do(t, mux, http.MethodGet, "/healthz", nil, nil)
			if res.status != 200 || strings.TrimSpace(string(res.body)) != `{"status":"ok"}` {
				t.Errorf("/healthz = %d %s, want 200 {\"status\":\"ok\"}", res.status, res.body)
			}

			res = do(t, mux, http.MethodGet, "/readyz", nil, nil)
			if res.status != tt.wantStatus {
				t.Errorf("/readyz status = %d, want %d", res.status, tt.wantStatus)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("/readyz Content-Type = %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(res.body, &got); err != nil {
				t.Fatalf("/readyz body: %v: %s", err, res.body)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("/readyz report (-want +got):\n%s", diff)
			}
			if strings.Contains(string(res.body), "hunter2") {
				t.Errorf("/readyz leaks a check's error: %s", res.body)
			}
		})
	}
}

// --- huma API ---

type thingInput struct {
	Body struct {
		Name  string `json:"name" maxLength:"5"`
		Count int    `json:"count" minimum:"1"`
	}
}

type idInput struct {
	ID string `path:"id"`
}

type thingOutput struct {
	Body struct {
		ID string `json:"id"`
	}
}

func newAPI(t *testing.T, log *slog.Logger) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	api := server.NewAPI(mux, "test", log)
	server.Register(api, huma.Operation{OperationID: "boom", Method: http.MethodGet, Path: "/boom"},
		func(ctx context.Context, _ *struct{}) (*thingOutput, error) {
			return nil, errors.New(secret)
		})
	server.Register(api, huma.Operation{OperationID: "wrapped-internal", Method: http.MethodGet, Path: "/internal-fault"},
		func(ctx context.Context, _ *struct{}) (*thingOutput, error) {
			return nil, fault.Wrap(errors.New(secret), fault.Internal, secret)
		})
	server.Register(api, huma.Operation{OperationID: "get-thing", Method: http.MethodGet, Path: "/things/{id}"},
		func(ctx context.Context, in *idInput) (*thingOutput, error) {
			switch in.ID {
			case "busy":
				return nil, &fault.Error{Kind: fault.Unavailable, Msg: "try later", RetryAfter: 1500 * time.Millisecond}
			case "ok":
				out := &thingOutput{}
				out.Body.ID = "ok"
				return out, nil
			}
			return nil, fault.New(fault.NotFound, "thing %s not found", in.ID)
		})
	server.Register(api, huma.Operation{OperationID: "create-thing", Method: http.MethodPost, Path: "/things"},
		func(ctx context.Context, in *thingInput) (*thingOutput, error) {
			out := &thingOutput{}
			out.Body.ID = in.Body.Name
			return out, nil
		})
	mux.HandleFunc("/", server.NotFound)
	return server.Middleware(log, mux)
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name           string
		method, target string
		body           string
		wantStatus     int
		want           problem.Problem // zero: not a problem
		wantRetryAfter string
		wantFields     []string // locations
	}{
		{name: "success", method: "GET", target: "/things/ok", wantStatus: 200},
		{name: "plain error is a 500 without its text", method: "GET", target: "/boom", wantStatus: 500,
			want: problem.Problem{Type: "/problems/internal", Title: "Internal error", Status: 500, Detail: "an internal error occurred", Instance: "/boom"}},
		{name: "internal fault hides its message", method: "GET", target: "/internal-fault", wantStatus: 500,
			want: problem.Problem{Type: "/problems/internal", Title: "Internal error", Status: 500, Detail: "an internal error occurred", Instance: "/internal-fault"}},
		{name: "not found keeps its message", method: "GET", target: "/things/t9", wantStatus: 404,
			want: problem.Problem{Type: "/problems/not-found", Title: "Not found", Status: 404, Detail: "thing t9 not found", Instance: "/things/t9"}},
		{name: "retry after is rounded up", method: "GET", target: "/things/busy", wantStatus: 503, wantRetryAfter: "2",
			want: problem.Problem{Type: "/problems/unavailable", Title: "Service unavailable", Status: 503, Detail: "try later", Instance: "/things/busy"}},
		{name: "validation error does not echo the input", method: "POST", target: "/things",
			body: `{"name":"hunter2-too-long","count":-7}`, wantStatus: 422,
			want:       problem.Problem{Type: "/problems/validation-failed", Title: "Unprocessable request", Status: 422, Detail: "validation failed", Instance: "/things"},
			wantFields: []string{"body.count", "body.name"}},
		{name: "unknown field is a validation error", method: "POST", target: "/things",
			body: `{"name":"a","count":1,"extra":"hunter2"}`, wantStatus: 422,
			want:       problem.Problem{Type: "/problems/validation-failed", Title: "Unprocessable request", Status: 422, Detail: "validation failed", Instance: "/things"},
			wantFields: []string{"body.extra"}},
		{name: "unknown query parameter is a validation error", method: "GET", target: "/things/ok?extra=hunter2", wantStatus: 422,
			want:       problem.Problem{Type: "/problems/validation-failed", Title: "Unprocessable request", Status: 422, Detail: "validation failed", Instance: "/things/ok"},
			wantFields: []string{"query.extra"}},
		{name: "malformed JSON does not echo the input", method: "POST", target: "/things",
			body: `{"name":"hunter2", count:`, wantStatus: 400,
			want:       problem.Problem{Type: "/problems/invalid-request", Title: "Invalid request", Status: 400, Instance: "/things"},
			wantFields: []string{"body"}},
		{name: "body over the limit", method: "POST", target: "/things",
			body: `{"name":"` + strings.Repeat("x", server.MaxBodyBytes) + `","count":1}`, wantStatus: 413,
			want: problem.Problem{Type: "/problems/too-large", Title: "Request too large", Status: 413, Instance: "/things"}},
		{name: "unmatched path", method: "GET", target: "/nowhere", wantStatus: 404,
			want: problem.Problem{Type: "/problems/not-found", Title: "Not found", Status: 404, Detail: "no such resource", Instance: "/nowhere"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			h := newAPI(t, logging.New(&logs, "json", "info"))
			var body io.Reader
			hdr := map[string]string{requestid.Header: "rid-1"}
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				hdr["Content-Type"] = "application/json"
			}
			res := do(t, h, tt.method, tt.target, body, hdr)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", res.status, tt.wantStatus, res.body)
			}
			if tt.want.Type == "" {
				return
			}
			if strings.Contains(string(res.body), "hunter2") {
				t.Errorf("the body leaks input or error text: %s", res.body)
			}
			p := problemtest.Decode(t, res.status, res.header, res.body)
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Location)
			}
			if diff := cmp.Diff(tt.wantFields, fields, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("error locations (-want +got):\n%s", diff)
			}
			want := tt.want
			want.RequestID = "rid-1"
			ignore := cmpopts.IgnoreFields(problem.Problem{}, "Errors")
			if tt.want.Detail == "" {
				ignore = cmpopts.IgnoreFields(problem.Problem{}, "Errors", "Detail")
			}
			if diff := cmp.Diff(want, p, cmpopts.IgnoreUnexported(problem.Problem{}), ignore); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			if got := res.header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if tt.wantStatus == 500 && !strings.Contains(logs.String(), "hunter2") {
				t.Errorf("the cause of a %d was not logged:\n%s", tt.wantStatus, logs.String())
			}
		})
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hi")
		}), logging.Discard())
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Errorf("body = %q, want hi", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
}
