package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/platform/deadline"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
	"github.com/microshop/microshop/internal/platform/requestid"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/platform/tcpfault"
)

var services = []string{"users", "products", "orders"}

// hit is one request an upstream received.
type hit struct {
	Service   string
	Path      string // decoded
	RawPath   string // as sent
	RequestID string
	Timeout   string // the deadline header
	BodyBytes int
}

// recorder keeps every request that reached any upstream.
type recorder struct {
	mu   sync.Mutex
	hits []hit
}

func (r *recorder) add(h hit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits = append(r.hits, h)
}

func (r *recorder) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits = nil
}

// service returns the handler of a fake service like the real ones: the
// standard middleware, health endpoints, a public prefix that echoes what it got
// and internal endpoints that must never be reached through the gateway.
func service(name string, rec *recorder, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	record := func(w http.ResponseWriter, r *http.Request) hit {
		n, _ := io.Copy(io.Discard, r.Body)
		h := hit{Service: name, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), RequestID: r.Header.Get(requestid.Header),
			Timeout: r.Header.Get(deadline.Header), BodyBytes: int(n)}
		rec.add(h)
		return h
	}
	public := func(w http.ResponseWriter, r *http.Request) {
		h := record(w, r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		json.NewEncoder(w).Encode(h)
	}
	mux.HandleFunc("/api/v1/"+name, public)
	mux.HandleFunc("/api/v1/"+name+"/", public)
	mux.HandleFunc("/internal/", func(w http.ResponseWriter, r *http.Request) {
		record(w, r)
		io.WriteString(w, `{"internal":true}`)
	})
	server.Health(mux, nil, func(context.Context) map[string]any { return map[string]any{"service": name} })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		record(w, r)
		server.NotFound(w, r)
	})
	return server.Middleware(log, mux)
}

type fixture struct {
	gw       *httptest.Server
	rec      *recorder
	backends map[string]*httptest.Server
}

// options change a fixture's upstream base URLs before the gateway is built.
type options struct {
	baseURL map[string]string // service -> URL that replaces the backend's
	limits  gateway.Limits
}

func newFixture(t *testing.T, o options) *fixture {
	t.Helper()
	log := logging.Discard()
	f := &fixture{rec: &recorder{}, backends: map[string]*httptest.Server{}}
	var ups []gateway.Upstream
	for _, name := range services {
		srv := httptest.NewServer(service(name, f.rec, log))
		t.Cleanup(srv.Close)
		f.backends[name] = srv
		base := srv.URL
		if u, ok := o.baseURL[name]; ok {
			base = u
		}
		h, err := gateway.Proxy(name, base, log)
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, gateway.Upstream{Name: name, Prefixes: []string{"/api/v1/" + name}, Handler: h, Ready: gateway.ProbeURL(base)})
	}
	spec, err := gateway.OpenAPI(describeSample)
	if err != nil {
		t.Fatal(err)
	}
	f.gw = httptest.NewServer(gateway.Handler(ups, spec, testAuthn(), o.limits, log))
	t.Cleanup(f.gw.Close)
	return f
}

// describeSample registers a sample operation, like a service's Describe.
func describeSample(api huma.API) {
	type in struct {
		ID string `path:"id" maxLength:"64"`
	}
	type out struct {
		Body struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
	}
	server.Register(api, huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/api/v1/users/{id}",
		Summary: "Get a user", Tags: []string{"users"},
	}, func(context.Context, *in) (*out, error) { return nil, nil })
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// send sends req with a valid customer token unless it already has an
// Authorization header (set it to "-" to send none).
func send(t *testing.T, client *http.Client, req *http.Request) response {
	t.Helper()
	switch req.Header.Get("Authorization") {
	case "":
		req.Header.Set("Authorization", "Bearer "+testToken(t, "customer"))
	case "-":
		req.Header.Del("Authorization")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (f *fixture) get(t *testing.T, target string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.gw.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return send(t, http.DefaultClient, req)
}

func TestRoutes(t *testing.T) {
	f := newFixture(t, options{})
	tests := []struct {
		target      string
		wantService string
		wantPath    string
	}{
		{"/api/v1/users", "users", "/api/v1/users"},
		{"/api/v1/users/", "users", "/api/v1/users/"},
		{"/api/v1/users/123", "users", "/api/v1/users/123"},
		{"/api/v1/users?limit=5&cursor=abc", "users", "/api/v1/users"},
		{"/api/v1/products", "products", "/api/v1/products"},
		{"/api/v1/products/p-1", "products", "/api/v1/products/p-1"},
		{"/api/v1/orders", "orders", "/api/v1/orders"},
		{"/api/v1/orders/o-1/cancel", "orders", "/api/v1/orders/o-1/cancel"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			f.rec.reset()
			res := f.get(t, tt.target, nil)
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, want 200: %s", res.status, res.body)
			}
			var got hit
			if err := json.Unmarshal(res.body, &got); err != nil {
				t.Fatalf("body: %v: %s", err, res.body)
			}
			if got.Service != tt.wantService || got.Path != tt.wantPath {
				t.Errorf("reached %s %s, want %s %s", got.Service, got.Path, tt.wantService, tt.wantPath)
			}
			if n := len(f.rec.all()); n != 1 {
				t.Errorf("upstream hits = %d, want 1", n)
			}
		})
	}
}

func TestNotRouted(t *testing.T) {
	f := newFixture(t, options{})
	for _, target := range []string{
		"/internal/v1/reservations",
		"/internal/v1/users/123",
		"/metrics",
		"/api/v1/usersX",
		"/api/v1/users-internal",
		"/api/v1/productsX/1",
		"/api/v2/users",
		"/api/v1",
		"/api/v1/",
		"/",
		"/readyz/extra",
	} {
		t.Run(target, func(t *testing.T) {
			f.rec.reset()
			res := f.get(t, target, nil)
			if res.status != http.StatusNotFound {
				t.Errorf("status = %d, want 404: %s", res.status, res.body)
			}
			if p := problemtest.Decode(t, res.status, res.header, res.body); p.Type != "/problems/not-found" {
				t.Errorf("type = %q, want /problems/not-found", p.Type)
			}
			if hits := f.rec.all(); len(hits) != 0 {
				t.Errorf("an upstream was reached: %+v", hits)
			}
		})
	}
}

func TestPathTricksNeverReachInternal(t *testing.T) {
	f := newFixture(t, options{})
	tests := []struct {
		target     string
		wantStatus int // after following redirects
	}{
		{"/api/v1/users/../../internal/v1/reservations", 404},
		{"/api/v1/users/../../../internal/v1/reservations", 404},
		{"/api/v1/users/./../../internal/v1/reservations", 404},
		{"/api/v1/users//../../internal/v1/reservations", 404},
		{"/api/v1/users/%2e%2e/%2e%2e/internal/v1/reservations", 404},
		{"/api/v1/users/%2e%2e/%2e%2e/%2e%2e/internal/v1/reservations", 404},
		{"/api/v1/users/%2E%2E/%2E%2E/internal/v1/reservations", 404},
		{"/api/v1/users/.%2e/.%2e/internal/v1/reservations", 404},
		{"/api/v1/users/..%2F..%2Finternal%2Fv1%2Freservations", 404},
		{"/api/v1/users/..%2F..%2F..%2Finternal/v1/reservations", 404},
		{"/api/v1/users/..%2f..%2finternal/v1/reservations", 404},
		{"/api/v1/users/%2e%2e%2f%2e%2e%2finternal/v1/reservations", 404},
		{"/api/v1/users%2F..%2F..%2Finternal/v1/reservations", 404},
		{"/api/v1/users/%2e%2e/products/p1", 404},
		{"/api/v1/users/%2e/123", 404},
		{"/api/v1/users/a%2F%2Fb", 404},
		// These decode to a path that stays under /api/v1/users: the service
		// sees them as odd ids, and nothing is normalized away.
		{"/api/v1/users/%252e%252e/%252e%252e/internal/v1/reservations", 200},
		{"/api/v1/users/..;/..;/internal/v1/reservations", 200},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			f.rec.reset()
			req, err := http.NewRequest(http.MethodGet, f.gw.URL+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Follow redirects: a cleaned path must not lead anywhere internal either.
			res := send(t, http.DefaultClient, req)
			if res.status != tt.wantStatus {
				t.Errorf("status = %d, want %d: %s", res.status, tt.wantStatus, res.body)
			}
			if res.status == 404 {
				if p := problemtest.Decode(t, res.status, res.header, res.body); p.Type != "/problems/not-found" {
					t.Errorf("type = %q, want /problems/not-found", p.Type)
				}
			}
			for _, h := range f.rec.all() {
				if clean := path.Clean(h.Path); clean != h.Path || !strings.HasPrefix(clean, "/api/v1/"+h.Service+"/") {
					t.Errorf("upstream %s reached at %q (raw %q, cleaned %q)", h.Service, h.Path, h.RawPath, clean)
				}
			}
			if strings.Contains(string(res.body), `"internal":true`) {
				t.Errorf("internal endpoint answered: %s", res.body)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, options{})
	tests := []struct {
		name       string
		size       int
		chunked    bool
		wantStatus int
	}{
		{"at the limit", gateway.MaxBodyBytes, false, 200},
		{"at the limit, chunked", gateway.MaxBodyBytes, true, 200},
		{"over the limit with Content-Length", gateway.MaxBodyBytes + 1, false, 413},
		{"far over the limit with Content-Length", 10 * gateway.MaxBodyBytes, false, 413},
		{"over the limit, chunked", gateway.MaxBodyBytes + 1, true, 413},
		{"far over the limit, chunked", 10 * gateway.MaxBodyBytes, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.rec.reset()
			var body io.Reader = strings.NewReader(strings.Repeat("x", tt.size))
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, f.gw.URL+"/api/v1/users", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			res := send(t, http.DefaultClient, req)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", res.status, tt.wantStatus, res.body)
			}
			if tt.wantStatus == 200 {
				return
			}
			p := problemtest.Decode(t, res.status, res.header, res.body)
			if p.Type != "/problems/too-large" {
				t.Errorf("type = %q, want /problems/too-large", p.Type)
			}
			for _, h := range f.rec.all() {
				if h.BodyBytes > gateway.MaxBodyBytes {
					t.Errorf("upstream received %d body bytes", h.BodyBytes)
				}
			}
			if !tt.chunked && len(f.rec.all()) != 0 {
				t.Errorf("upstream reached despite a too-large Content-Length")
			}
		})
	}
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestIDAndDeadlineForwarded(t *testing.T) {
	f := newFixture(t, options{})
	tests := []struct {
		name        string
		header      map[string]string
		wantID      string // "" means generated
		wantMaxMs   int64
		wantMinMs   int64
		description string
	}{
		{"no headers", nil, "", 10000, 9000, ""},
		{"client id kept", map[string]string{requestid.Header: "client-1"}, "client-1", 10000, 9000, ""},
		{"invalid client id replaced", map[string]string{requestid.Header: "bad id; DROP"}, "", 10000, 9000, ""},
		{"huge timeout capped", map[string]string{deadline.Header: "3600000"}, "", 10000, 9000, ""},
		{"small timeout kept", map[string]string{deadline.Header: "1500"}, "", 1500, 1000, ""},
		{"garbage timeout ignored", map[string]string{deadline.Header: "-1"}, "", 10000, 9000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.rec.reset()
			req, err := http.NewRequest(http.MethodGet, f.gw.URL+"/api/v1/products/p1", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = []string{v} // raw, so invalid values are sent as they are
			}
			res := send(t, http.DefaultClient, req)
			if res.status != 200 {
				t.Fatalf("status = %d: %s", res.status, res.body)
			}
			ids := res.header.Values(requestid.Header)
			if len(ids) != 1 {
				t.Fatalf("response has %d request ids %q, want exactly one", len(ids), ids)
			}
			id := ids[0]
			if tt.wantID != "" && id != tt.wantID {
				t.Errorf("response id = %q, want %q", id, tt.wantID)
			}
			if tt.wantID == "" && !generatedID.MatchString(id) {
				t.Errorf("response id = %q, want a generated one", id)
			}
			hits := f.rec.all()
			if len(hits) != 1 {
				t.Fatalf("upstream hits = %d, want 1", len(hits))
			}
			if hits[0].RequestID != id {
				t.Errorf("upstream saw request id %q, want %q", hits[0].RequestID, id)
			}
			ms, err := strconv.ParseInt(hits[0].Timeout, 10, 64)
			if err != nil || ms > tt.wantMaxMs || ms < tt.wantMinMs {
				t.Errorf("upstream saw %s = %q, want in [%d, %d]", deadline.Header, hits[0].Timeout, tt.wantMinMs, tt.wantMaxMs)
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, options{})
	want := map[string][]string{
		"X-Content-Type-Options": {"nosniff"},
		"X-Frame-Options":        {"DENY"},
		"Referrer-Policy":        {"no-referrer"},
		"Cache-Control":          {"no-store"},
	}
	for _, target := range []string{"/api/v1/users/1", "/api/v1/orders", "/nowhere", "/healthz", "/readyz", "/api/v1/openapi.json", "/problems/not-found"} {
		t.Run(target, func(t *testing.T) {
			res := f.get(t, target, nil)
			got := map[string][]string{}
			for k := range want {
				got[k] = res.header.Values(k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("security headers (-want +got):\n%s", diff)
			}
		})
	}
}

// closedURL returns the URL of a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestUpstreamDown(t *testing.T) {
	f := newFixture(t, options{baseURL: map[string]string{"orders": closedURL(t)}})
	res := f.get(t, "/api/v1/orders/o1", map[string]string{requestid.Header: "rid-down"})
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503: %s", res.status, res.body)
	}
	p := problemtest.Decode(t, res.status, res.header, res.body)
	want := problem.Problem{Type: "/problems/upstream-unavailable", Title: "Service unavailable", Status: 503,
		Detail: "orders is unavailable", Instance: "/api/v1/orders/o1", RequestID: "rid-down"}
	if diff := cmp.Diff(want, p, cmpopts.IgnoreUnexported(problem.Problem{})); diff != "" {
		t.Errorf("problem (-want +got):\n%s", diff)
	}
	if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q, want a positive number of seconds", res.header.Get("Retry-After"))
	}
	// The other services still answer.
	if res := f.get(t, "/api/v1/users/1", nil); res.status != 200 {
		t.Errorf("users with orders down: status %d", res.status)
	}
}

func TestSlowUpstreamTimesOut(t *testing.T) {
	f := newFixture(t, options{})
	px, err := tcpfault.Listen(f.backends["products"].Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	px.SetLatency(1500 * time.Millisecond)
	h, err := gateway.Proxy("products", "http://"+px.Addr(), logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(gateway.Handler([]gateway.Upstream{{Name: "products", Prefixes: []string{"/api/v1/products"}, Handler: h,
		Ready: func(context.Context) (any, bool) { return nil, true }}}, []byte("{}"), testAuthn(), gateway.Limits{}, logging.Discard()))
	t.Cleanup(gw.Close)

	req, err := http.NewRequest(http.MethodGet, gw.URL+"/api/v1/products/p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(deadline.Header, "200")
	start := time.Now()
	res := send(t, http.DefaultClient, req)
	elapsed := time.Since(start)
	if res.status != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504: %s", res.status, res.body)
	}
	if p := problemtest.Decode(t, res.status, res.header, res.body); p.Type != "/problems/upstream-timeout" || p.Detail != "products did not answer in time" {
		t.Errorf("problem = %+v, want upstream-timeout", p)
	}
	if elapsed > time.Second {
		t.Errorf("504 took %v; the budget was 200ms", elapsed)
	}
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name       string
		down       string
		wantStatus int
		want       map[string]any
	}{
		{"all up", "", 200, map[string]any{"status": "ok", "services": map[string]any{
			"users":    map[string]any{"status": "ok", "checks": map[string]any{}, "service": "users"},
			"products": map[string]any{"status": "ok", "checks": map[string]any{}, "service": "products"},
			"orders":   map[string]any{"status": "ok", "checks": map[string]any{}, "service": "orders"},
		}}},
		{"products down", "products", 503, map[string]any{"status": "unavailable", "services": map[string]any{
			"users":    map[string]any{"status": "ok", "checks": map[string]any{}, "service": "users"},
			"products": map[string]any{"status": "unreachable"},
			"orders":   map[string]any{"status": "ok", "checks": map[string]any{}, "service": "orders"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options{}
			if tt.down != "" {
				o.baseURL = map[string]string{tt.down: closedURL(t)}
			}
			f := newFixture(t, o)
			res := f.get(t, "/readyz", nil)
			if res.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", res.status, tt.wantStatus)
			}
			var got map[string]any
			if err := json.Unmarshal(res.body, &got); err != nil {
				t.Fatalf("body: %v: %s", err, res.body)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if res := f.get(t, "/healthz", nil); res.status != 200 {
				t.Errorf("/healthz = %d, want 200 whatever the upstreams", res.status)
			}
		})
	}
}

func TestOpenAPI(t *testing.T) {
	f := newFixture(t, options{})
	res := f.get(t, "/api/v1/openapi.json", nil)
	if res.status != 200 {
		t.Fatalf("status = %d", res.status)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/openapi+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title string `json:"title"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if doc.Info.Title != "microshop" {
		t.Errorf("title = %q", doc.Info.Title)
	}
	if got := doc.Paths["/api/v1/users/{id}"]["get"].OperationID; got != "get-user" {
		t.Errorf("paths = %+v, want GET /api/v1/users/{id} as get-user", doc.Paths)
	}
	if n := len(f.rec.all()); n != 0 {
		t.Errorf("the document was fetched from an upstream (%d hits)", n)
	}
}

func TestDescribeProblem(t *testing.T) {
	f := newFixture(t, options{})
	res := f.get(t, "/problems/not-found", nil)
	if res.status != 200 {
		t.Fatalf("status = %d: %s", res.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	if body := string(res.body); !strings.HasPrefix(body, "/problems/not-found\n\n") || !strings.Contains(body, "does not exist") {
		t.Errorf("body = %q", body)
	}
	res = f.get(t, "/problems/no-such-problem", nil)
	if res.status != 404 {
		t.Errorf("unknown type: status = %d, want 404", res.status)
	}
	if p := problemtest.Decode(t, res.status, res.header, res.body); p.Type != "/problems/not-found" {
		t.Errorf("unknown type: %+v", p)
	}
}

// TestInProcessUpstreams runs the gateway as the monolith does: the services'
// handlers are called directly, without a network hop.
func TestInProcessUpstreams(t *testing.T) {
	rec := &recorder{}
	log := logging.Discard()
	var ups []gateway.Upstream
	for _, name := range services {
		ups = append(ups, gateway.Upstream{Name: name, Prefixes: []string{"/api/v1/" + name}, Handler: service(name, rec, log),
			Ready: func(context.Context) (any, bool) { return map[string]string{"status": "ok"}, true }})
	}
	gw := httptest.NewServer(gateway.Handler(ups, []byte(`{"openapi":"3.1.0"}`), testAuthn(), gateway.Limits{}, log))
	t.Cleanup(gw.Close)

	tests := []struct {
		method, target string
		body           string
		wantStatus     int
		wantService    string
	}{
		{"GET", "/api/v1/users/u1", "", 200, "users"},
		{"GET", "/api/v1/products", "", 200, "products"},
		{"POST", "/api/v1/orders", `{"x":1}`, 200, "orders"},
		{"GET", "/internal/v1/reservations", "", 404, ""},
		{"GET", "/api/v1/users/%2e%2e/%2e%2e/internal/v1/reservations", "", 404, ""},
		{"POST", "/api/v1/orders", strings.Repeat("x", gateway.MaxBodyBytes+1), 413, ""},
		{"GET", "/readyz", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec.reset()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, gw.URL+tt.target, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(requestid.Header, "rid-inproc")
			res := send(t, http.DefaultClient, req)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", res.status, tt.wantStatus, res.body)
			}
			if ids := res.header.Values(requestid.Header); len(ids) != 1 || ids[0] != "rid-inproc" {
				t.Errorf("request ids = %q, want [rid-inproc]", ids)
			}
			hits := rec.all()
			if tt.wantService == "" {
				if len(hits) != 0 {
					t.Errorf("a service was reached: %+v", hits)
				}
				return
			}
			if len(hits) != 1 || hits[0].Service != tt.wantService || hits[0].RequestID != "rid-inproc" {
				t.Errorf("hits = %+v, want one on %s with the request id", hits, tt.wantService)
			}
		})
	}
}

// TestProxyStreamsEventsAndBuffersJSON: an event stream reaches the client
// event by event, while the service is still writing it; a JSON answer goes
// keeps its Content-Length (not chunked).
func TestProxyStreamsEventsAndBuffersJSON(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/orders/o1/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: status\ndata: {\"status\":\"pending\"}\n\n")
			w.(http.Flusher).Flush()
			select { // the second event only once the client saw the first
			case <-release:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "event: status\ndata: {\"status\":\"confirmed\"}\n\n")
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"o1","status":"confirmed"}`)
		}
	}))
	t.Cleanup(backend.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	h, err := gateway.Proxy("orders", backend.URL, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(h)
	t.Cleanup(gw.Close)

	tests := []struct {
		name, path string
		check      func(t *testing.T, res *http.Response)
	}{
		{"json answer has a length", "/api/v1/orders/o1", func(t *testing.T, res *http.Response) {
			body, _ := io.ReadAll(res.Body)
			if res.ContentLength != int64(len(body)) || len(res.TransferEncoding) != 0 {
				t.Errorf("Content-Length %d, Transfer-Encoding %v for a %d-byte body; want the length, not chunks",
					res.ContentLength, res.TransferEncoding, len(body))
			}
		}},
		{"events stream one by one", "/api/v1/orders/o1/events", func(t *testing.T, res *http.Response) {
			buf := make([]byte, 256)
			n, err := res.Body.Read(buf) // blocks until the first event is flushed through
			if err != nil || !strings.Contains(string(buf[:n]), `"pending"`) {
				t.Fatalf("first read = %q, %v; want the pending event before the stream ends", buf[:n], err)
			}
			close(release)
			rest, _ := io.ReadAll(res.Body)
			if !strings.Contains(string(rest), `"confirmed"`) {
				t.Errorf("rest of the stream = %q, want the confirmed event", rest)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			tc.check(t, res)
		})
	}
}
