package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
)

// The gateway tests' issuer: one key, known to the gateway's verifier.
var testPub, testKey, _ = ed25519.GenerateKey(rand.Reader)

func testAuthn() *auth.Authenticator {
	return &auth.Authenticator{Users: auth.NewUserVerifier(auth.StaticKeys{"k1": testPub}), Log: logging.Discard()}
}

// testToken mints a valid access token for a fixed user with role.
func testToken(t testing.TB, role string) string {
	t.Helper()
	now := time.Now()
	tok, err := auth.Sign("k1", testKey, auth.Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: auth.Issuer, Audience: jwt.ClaimStrings{auth.Audience}, Subject: "0190f000-0000-7000-8000-00000000000" + strconv.Itoa(len(role)%10),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenWall checks which routes the gateway lets through without a token,
// and that a bad token is refused everywhere, before any service sees it.
func TestTokenWall(t *testing.T) {
	f := newFixture(t, options{})
	tests := []struct {
		method, path, authz string
		want                int
	}{
		{"GET", "/api/v1/products", "-", 200},
		{"GET", "/api/v1/products/abc", "-", 200},
		{"POST", "/api/v1/products", "-", 401},
		{"PATCH", "/api/v1/products/abc", "-", 401},
		{"GET", "/api/v1/orders", "-", 401},
		{"GET", "/api/v1/orders/abc", "-", 401},
		{"GET", "/api/v1/users/me", "-", 401},
		{"GET", "/api/v1/users", "-", 401},
		{"GET", "/api/v1/orders", "", 200},
		{"GET", "/api/v1/products", "Bearer not-a-jwt", 401},
		{"GET", "/api/v1/orders", "Bearer not-a-jwt", 401},
		{"GET", "/api/v1/orders", "Basic YWxpY2U6c2VjcmV0", 401},
		{"GET", "/healthz", "-", 200},
		{"GET", "/api/v1/openapi.json", "-", 200},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.authz, func(t *testing.T) {
			f.rec.reset()
			req, err := http.NewRequest(tt.method, f.gw.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.authz != "" {
				req.Header.Set("Authorization", tt.authz)
			}
			res := send(t, http.DefaultClient, req)
			problemtest.Check(t, res.status, res.header, res.body, tt.want, "")
			if tt.want == 401 {
				if res.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if hits := f.rec.all(); len(hits) > 0 {
					t.Errorf("a refused request reached %v", hits)
				}
			}
		})
	}
}

// TestRateLimits drives each limit past its burst.
func TestRateLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits gateway.Limits
		method string
		path   string
		authz  string
		burst  int // requests allowed at once
	}{
		{"per client", gateway.Limits{PerClient: 2, PerUser: -1, AuthPerMin: -1}, "GET", "/api/v1/products", "-", 4},
		{"per user", gateway.Limits{PerClient: -1, PerUser: 3, AuthPerMin: -1}, "GET", "/api/v1/orders", "", 6},
		{"authentication endpoints", gateway.Limits{PerClient: -1, PerUser: -1, AuthPerMin: 6}, "POST", "/api/v1/users", "-", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, options{limits: tt.limits})
			path := tt.path
			if tt.name == "authentication endpoints" {
				path = "/api/v1/auth/login"
				f = newFixtureWithAuthRoute(t, tt.limits)
			}
			var last response
			for i := 0; i <= tt.burst; i++ {
				req, _ := http.NewRequest(tt.method, f.gw.URL+path, nil)
				if tt.authz != "" {
					req.Header.Set("Authorization", tt.authz)
				}
				last = send(t, http.DefaultClient, req)
				if i < tt.burst && last.status == 429 {
					t.Fatalf("request %d refused within the burst of %d", i+1, tt.burst)
				}
			}
			problemtest.Check(t, last.status, last.header, last.body, 429, "/problems/rate-limited")
			if ra, err := strconv.Atoi(last.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After = %q, want whole seconds ≥ 1", last.header.Get("Retry-After"))
			}
		})
	}
}

// newFixtureWithAuthRoute is a fixture whose users upstream also serves /api/v1/auth.
func newFixtureWithAuthRoute(t *testing.T, limits gateway.Limits) *fixture {
	t.Helper()
	f := newFixture(t, options{limits: limits})
	h, err := gateway.Proxy("users", f.backends["users"].URL, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ups := []gateway.Upstream{{Name: "users", Prefixes: []string{"/api/v1/auth"}, Handler: h, Ready: gateway.ProbeURL(f.backends["users"].URL)}}
	f.gw.Close()
	f.gw = newServer(t, gateway.Handler(ups, []byte("{}"), testAuthn(), limits, logging.Discard()))
	return f
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
