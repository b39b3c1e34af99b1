package securitytest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/system"
)

// FuzzBearerToken sends arbitrary strings as bearer tokens (and as service
// tokens) to the monolith's gateway handler, in process, on routes that need
// a user: no input may panic, be accepted (2xx) or fail the server (5xx).
// The seeds hold no valid token, and a valid one cannot be made without the
// signing key, so every input must be refused.
func FuzzBearerToken(f *testing.F) {
	m, err := system.Monolith(context.Background(), system.Config{
		DataDir:       f.TempDir(),
		AdminEmail:    adminEmail,
		AdminPassword: newPassword(),
		Limits:        gateway.Limits{PerClient: -1, PerUser: -1, AuthPerMin: -1},
		Log:           slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Close)
	h := m.Handler

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &jwks); err != nil || len(jwks.Keys) == 0 {
		f.Fatalf("JWKS: %d %s", rec.Code, rec.Body)
	}
	kid := jwks.Keys[0].Kid
	attacker := newKey(f)
	admin := userClaims(unknownID, "admin")
	for _, seed := range []string{
		"",
		"not-a-token",
		"a.b.c",
		"..",
		"e30.e30.",
		strings.Repeat("A", auth.MaxTokenBytes+1),
		unsigned(header{"alg": "none", "kid": kid}, admin),
		signHS(attacker.Public().(ed25519.PublicKey), header{"alg": "HS256", "kid": kid}, admin),
		signEd(attacker, edHeader(kid), admin),
		signEd(attacker, edHeader(kid), admin.with("exp", time.Now().Add(-time.Hour).Unix())),
		signEd(attacker, edHeader("orders"), serviceClaims("orders")),
		signEd(attacker, edHeader(kid+"\x00"), admin),
		"Bearer " + signEd(attacker, edHeader(kid), admin),
		"\x00\r\n\t ",
		"eyJhbGciOiJFZERTQSIsImtpZCI6IiJ9.eyJzdWIiOiIifQ.",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, c := range []struct {
			method, path string
			header       http.Header
		}{
			{"GET", "/api/v1/users/me", http.Header{"Authorization": {"Bearer " + tok}}},
			{"GET", "/api/v1/orders", http.Header{"Authorization": {tok}}},
			{"POST", "/api/v1/products", http.Header{"Authorization": {"Bearer " + tok}, auth.ServiceHeader: {tok}}},
		} {
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(`{}`))
			req.Header = c.header
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code < 300 || rec.Code >= 500 {
				t.Errorf("%s %s with token %q: %d %s; want a 4xx refusal", c.method, c.path, tok, rec.Code, rec.Body)
			}
		}
	})
}
