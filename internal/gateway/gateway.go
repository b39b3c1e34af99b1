// Package gateway is microshop's public edge. It is the only entry from outside:
// it routes /api/v1/{users,products,orders}... to the services, never exposes
// their internal endpoints, stamps every request with an id, bounds request
// bodies, serves the public OpenAPI document and reports readiness.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/deadline"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/requestid"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/platform/traceparent"
	"github.com/microshop/microshop/internal/platform/upstream"
)

// MaxBodyBytes bounds the body of any request through the gateway.
const MaxBodyBytes = 64 << 10

// Upstream is one service behind the gateway: the public path prefixes it
// serves, the handler requests are sent to (a reverse proxy, or the service's
// own handler in the monolith) and a probe that reports its readiness.
type Upstream struct {
	Name     string
	Prefixes []string // for example /api/v1/users
	Handler  http.Handler
	Ready    func(ctx context.Context) (report any, ok bool)
}

// Handler returns the gateway's handler. spec is the public OpenAPI document;
// authn verifies access tokens; limits bound request rates.
//
// A request passes, in order: security headers, request id and deadline,
// per-client rate limit, token verification (a bad token is a 401 on any
// route), per-user rate limit, the rule that every route but the public ones
// needs a token, then the route itself.
func Handler(ups []Upstream, spec []byte, authn *auth.Authenticator, limits Limits, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	for _, u := range ups {
		for _, prefix := range u.Prefixes {
			h := inPrefix(prefix, limitBody(u.Handler))
			mux.Handle(prefix, h)
			mux.Handle(prefix+"/", h)
		}
	}
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/openapi+json")
		w.Write(spec)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		report, ok := readiness(r.Context(), ups)
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, report)
	})
	mux.HandleFunc("GET /problems/{code}", describeProblem)
	mux.HandleFunc("/", server.NotFound)
	perClient, perUser := rateLimits(limits)
	h := perClient(authn.Middleware(perUser(requireToken(mux))))
	return securityHeaders(server.Middleware(log, h))
}

// requireToken refuses anonymous requests to every service route except the
// public ones. Services check again themselves; this wall only keeps
// anonymous traffic from reaching them at all.
func requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.From(r.Context()).Authenticated() && !isPublic(r) {
			auth.Unauthorized(w, r, fault.New(fault.Unauthenticated, "authentication required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isPublic reports whether a route may be used without a token: the catalog
// (read only), the account endpoints, the JWKS and the gateway's own pages.
func isPublic(r *http.Request) bool {
	p := r.URL.Path
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case !strings.HasPrefix(p, "/api/v1/") && p != "/.well-known/jwks.json":
		return true // the gateway's own: health, readiness, problem types, unknown paths (404)
	case p == "/api/v1/openapi.json", p == "/.well-known/jwks.json":
		return read
	case p == "/api/v1/products", strings.HasPrefix(p, "/api/v1/products/"):
		return read
	case r.Method == http.MethodPost && (isCredentialRoute(p) || p == "/api/v1/auth/logout"):
		return true
	}
	return false
}

// readiness probes every upstream concurrently.
func readiness(ctx context.Context, ups []Upstream) (map[string]any, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	services := map[string]any{}
	ok := true
	for _, u := range ups {
		wg.Go(func() {
			report, ready := u.Ready(ctx)
			mu.Lock()
			defer mu.Unlock()
			services[u.Name] = report
			ok = ok && ready
		})
	}
	wg.Wait()
	return map[string]any{"status": map[bool]string{true: "ok", false: "unavailable"}[ok], "services": services}, ok
}

// inPrefix answers 404 unless the decoded path is clean and under prefix. The mux
// matches the escaped path, so /api/v1/users/%2e%2e/%2e%2e/internal/... or
// /api/v1/users/..%2F..%2Finternal/... match the users prefix although they
// decode to a path outside it, which the service (or anything that normalizes
// paths) would then see.
func inPrefix(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		clean := path.Clean(p)
		if strings.HasSuffix(p, "/") && clean != "/" {
			clean += "/"
		}
		if clean != p || (p != prefix && !strings.HasPrefix(p, prefix+"/")) {
			server.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody rejects bodies larger than MaxBodyBytes with 413: at once when the
// declared length is too big, or when reading passes the limit.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			problem.Write(w, r, tooLarge())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func tooLarge() *problem.Problem {
	return problem.New(http.StatusRequestEntityTooLarge, "too-large",
		"request body exceeds "+strconv.Itoa(MaxBodyBytes)+" bytes")
}

// gatewayHeaders are the response headers the gateway sets itself.
var gatewayHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Cache-Control", "no-store"},
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range gatewayHeaders {
			h.Set(kv[0], kv[1])
		}
		next.ServeHTTP(w, r)
	})
}

// Proxy returns a reverse proxy to the service at baseURL. It forwards the
// request id and the remaining deadline, and turns transport failures into
// problems: 503 when the service cannot be reached, 504 when it is too slow,
// 413 when the body was too large.
func Proxy(name, baseURL string, log *slog.Logger) (http.Handler, error) {
	target, err := url.Parse(baseURL)
	if err != nil || target.Host == "" {
		return nil, errors.New("gateway: invalid URL for " + name)
	}
	transport := upstream.DefaultTransport()
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			ctx := pr.In.Context()
			pr.Out.Header.Set(requestid.Header, requestid.From(ctx))
			pr.Out.Header.Set(traceparent.Header, traceparent.From(ctx))
			deadline.Set(ctx, pr.Out.Header)
		},
		// The proxy adds the service's headers to those the gateway already set:
		// drop the service's copies of the gateway's own, or clients get two
		// request ids and two, possibly contradicting, security headers.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del(requestid.Header)
			for _, kv := range gatewayHeaders {
				resp.Header.Del(kv[0])
			}
			return nil
		},
		Transport:  transport,
		BufferPool: copyBuffers,
		// No flush interval: an answer is written once, when it is complete.
		// ReverseProxy flushes every write by itself for text/event-stream
		// answers and answers of unknown length, so the order status stream
		// (SSE) still streams. With -1 it also flushed the headers at once from a
		// timer goroutine, before the body: two writes and a goroutine per
		// answer, 14 % of the gateway's CPU in the read benchmark.
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var p *problem.Problem
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				p = tooLarge()
			case errors.Is(err, context.DeadlineExceeded):
				p = problem.New(http.StatusGatewayTimeout, "upstream-timeout", name+" did not answer in time")
			case errors.Is(err, context.Canceled):
				return // the client went away
			default:
				p = problem.New(http.StatusServiceUnavailable, "upstream-unavailable", name+" is unavailable")
				w.Header().Set("Retry-After", "1")
			}
			log.WarnContext(r.Context(), "proxy error", "upstream", name, "err", err)
			p.RequestID = requestid.From(r.Context())
			problem.Write(w, r, p)
		},
	}, nil
}

// copyBuffers lends the proxies their 32 KiB copy buffers: without a pool,
// ReverseProxy allocates one per answer, which made the gateway's garbage
// collector a seventh of its CPU in the read benchmark.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// ProbeURL returns a readiness probe that asks the service at baseURL for /readyz.
func ProbeURL(baseURL string) func(ctx context.Context) (any, bool) {
	client := &http.Client{Transport: upstream.DefaultTransport()}
	return func(ctx context.Context) (any, bool) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
		if err != nil {
			return map[string]string{"status": "unavailable"}, false
		}
		req.Header.Set(requestid.Header, requestid.From(ctx))
		resp, err := client.Do(req)
		if err != nil {
			return map[string]string{"status": "unreachable"}, false
		}
		defer resp.Body.Close()
		var report map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<16)).Decode(&report); err != nil {
			return map[string]string{"status": "invalid readiness report"}, false
		}
		return report, resp.StatusCode == http.StatusOK
	}
}

// OpenAPI builds the public OpenAPI 3.1 document from the services' own
// operation registrations, so the document cannot drift from the code.
func OpenAPI(describe ...func(huma.API)) ([]byte, error) {
	cfg := server.Config("microshop")
	cfg.Info.Description = "The public API of microshop, served through the gateway. Errors are RFC 9457 problem details."
	api := huma.NewAPI(cfg, nopAdapter{})
	for _, d := range describe {
		d(api)
	}
	return json.Marshal(api.OpenAPI())
}

// nopAdapter lets huma collect operations without serving them.
type nopAdapter struct{}

func (nopAdapter) Handle(*huma.Operation, func(huma.Context))   {}
func (nopAdapter) ServeHTTP(http.ResponseWriter, *http.Request) {}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
