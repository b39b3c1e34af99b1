package securitytest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/users"
)

// TestAPI2Authentication (OWASP API2:2023, broken authentication): logins
// tell nothing about which accounts exist, guessing is throttled, refresh
// tokens are single-use with reuse detection, logout revokes, and access
// tokens are short-lived.
func TestAPI2Authentication(t *testing.T) {
	t.Parallel()
	s := StartServices(t, Options{})
	targets := s.Targets("users")

	for _, tg := range targets {
		t.Run(tg.Name+"/wrong password and unknown email answer alike", func(t *testing.T) {
			c := s.NewCustomer(t, "Peggy")
			wrong := Do(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": c.Email, "password": c.Password + "x"})
			unknown := Do(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": "nobody-" + strings.ToLower(newPassword()[:8]) + "@example.com", "password": c.Password})
			p1, p2 := wrong.WantProblem(t, http.StatusUnauthorized), unknown.WantProblem(t, http.StatusUnauthorized)
			if !sameProblem(p1, p2) {
				t.Errorf("wrong password: %s\nunknown email: %s\nwant the same answer", wrong, unknown)
			}
			for _, h := range []string{"WWW-Authenticate", "Retry-After", "Cache-Control"} {
				if wrong.Header.Get(h) != unknown.Header.Get(h) {
					t.Errorf("%s: %q for a wrong password, %q for an unknown email", h, wrong.Header.Get(h), unknown.Header.Get(h))
				}
			}
		})
	}

	for _, tg := range targets {
		t.Run(tg.Name+"/guessing is throttled per account", func(t *testing.T) {
			victim, bystander := s.NewCustomer(t, "Victim"), s.NewCustomer(t, "Bystander")
			var locked Response
			for i := range 30 {
				// A changing X-Forwarded-For must not escape the throttle.
				r := Do(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": victim.Email, "password": "wrong-password-" + strconv.Itoa(i)},
					"X-Forwarded-For", "10.0.0."+strconv.Itoa(i+1))
				if r.Status == http.StatusTooManyRequests {
					locked = r
					break
				}
				r.WantProblem(t, http.StatusUnauthorized)
			}
			if locked.Status != http.StatusTooManyRequests {
				t.Fatalf("30 wrong passwords and no 429")
			}
			if p := locked.WantProblem(t, http.StatusTooManyRequests); p.Type != "/problems/too-many-attempts" {
				t.Errorf("%s: type %q, want /problems/too-many-attempts", locked, p.Type)
			}
			if ra, err := strconv.Atoi(locked.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("%s: Retry-After = %q, want a positive number of seconds", locked, locked.Header.Get("Retry-After"))
			}
			// While locked, even the right password is refused: the lock is not
			// an oracle that tells a right guess from a wrong one.
			Do(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": victim.Email, "password": victim.Password}).
				WantProblem(t, http.StatusTooManyRequests)
			// Other accounts are not locked out.
			Do(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": bystander.Email, "password": bystander.Password}).Want(t, 200)
		})
	}

	for _, tg := range targets {
		t.Run(tg.Name+"/parallel guesses do not slip past the throttle", func(t *testing.T) {
			victim := s.NewCustomer(t, "Parallel")
			const n = 20
			rs := Parallel(t, n, func(i int) *http.Request {
				return NewRequest(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": victim.Email, "password": "wrong-password-" + strconv.Itoa(i)})
			})
			got := statuses(rs)
			if got[http.StatusUnauthorized] > users.MaxLoginFailures || got[http.StatusUnauthorized]+got[http.StatusTooManyRequests] != n {
				t.Errorf("%d parallel wrong passwords: statuses %v; want at most %d checked (401), the rest 429", n, got, users.MaxLoginFailures)
			}
		})
	}

	for _, tg := range targets {
		t.Run(tg.Name+"/parallel reuse of a refresh token", func(t *testing.T) {
			c := s.NewCustomer(t, "Racer")
			const n = 10
			rs := Parallel(t, n, func(int) *http.Request {
				return NewRequest(t, "POST", tg.URL+"/api/v1/auth/refresh", map[string]string{"refresh_token": c.Refresh})
			})
			got := statuses(rs)
			if got[http.StatusOK] > 1 || got[http.StatusOK]+got[http.StatusUnauthorized] != n {
				t.Fatalf("%d parallel refreshes of one token: statuses %v; want at most one 200, the rest 401", n, got)
			}
			// The token was presented more than once: its family is revoked,
			// the winner's new token included.
			for _, r := range rs {
				if r.Status == http.StatusOK {
					var tok TokenResponse
					r.JSON(t, &tok)
					refresh(t, tg.URL, tok.RefreshToken).WantUnauthorized(t)
				}
			}
		})
		t.Run(tg.Name+"/refresh token reuse revokes the family", func(t *testing.T) {
			c := s.NewCustomer(t, "Rita")
			first := refresh(t, tg.URL, c.Refresh).Want(t, 200)
			var next TokenResponse
			first.JSON(t, &next)
			if next.RefreshToken == "" || next.RefreshToken == c.Refresh || next.AccessToken == "" {
				t.Fatalf("refresh: %s; want new tokens", first)
			}
			wantTokenLifetime(t, first)
			// The stolen first token is replayed: refused, and the whole family
			// with it, so the thief's fresh token is dead too.
			refresh(t, tg.URL, c.Refresh).WantUnauthorized(t)
			refresh(t, tg.URL, next.RefreshToken).WantUnauthorized(t)
			// Logging in again works.
			s.Login(t, c.Email, c.Password)
		})
		t.Run(tg.Name+"/logout revokes", func(t *testing.T) {
			c := s.NewCustomer(t, "Lou")
			Do(t, "POST", tg.URL+"/api/v1/auth/logout", map[string]string{"refresh_token": c.Refresh}).Want(t, http.StatusNoContent)
			refresh(t, tg.URL, c.Refresh).WantUnauthorized(t)
		})
		t.Run(tg.Name+"/refresh refuses what is not a refresh token", func(t *testing.T) {
			for name, tok := range map[string]string{
				"garbage":          "not-a-refresh-token",
				"43 random chars":  b64([]byte(strings.Repeat("r", 32))),
				"an access token":  s.Alice.Access[:min(len(s.Alice.Access), 128)],
				"another's access": s.Bob.Access[:min(len(s.Bob.Access), 128)],
			} {
				r := refresh(t, tg.URL, tok)
				if r.Status != http.StatusUnauthorized && r.Status != http.StatusUnprocessableEntity {
					t.Errorf("refresh with %s: %s; want 401 (or 422)", name, r)
				}
			}
		})
	}

	t.Run("access tokens are short-lived EdDSA tokens with a key id", func(t *testing.T) {
		c := s.NewCustomer(t, "Tess")
		r := Do(t, "POST", s.Gateway+"/api/v1/auth/login", map[string]string{"email": c.Email, "password": c.Password}).Want(t, 200)
		wantTokenLifetime(t, r)
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("token answer Cache-Control = %q, want no-store", cc)
		}
		if direct := Do(t, "POST", s.Services["users"]+"/api/v1/auth/login", map[string]string{"email": c.Email, "password": c.Password}).Want(t, 200); !strings.Contains(direct.Header.Get("Cache-Control"), "no-store") {
			t.Errorf("users: token answer Cache-Control = %q, want no-store", direct.Header.Get("Cache-Control"))
		}
	})

	t.Run("the JWKS publishes public keys only", func(t *testing.T) {
		var jwks struct {
			Keys []map[string]any `json:"keys"`
		}
		Do(t, "GET", s.Gateway+"/.well-known/jwks.json", nil).Want(t, 200).JSON(t, &jwks)
		if len(jwks.Keys) == 0 {
			t.Fatal("empty JWKS")
		}
		for _, k := range jwks.Keys {
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := k[private]; ok {
					t.Errorf("JWK %v has private member %q", k["kid"], private)
				}
			}
			if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != auth.Algorithm {
				t.Errorf("JWK %v: want an Ed25519 EdDSA key", k)
			}
		}
	})

	t.Run("weak passwords are refused", func(t *testing.T) {
		for _, pw := range []string{"", "short", "elevenchars"} {
			r := Do(t, "POST", s.Gateway+"/api/v1/auth/register", map[string]string{"email": "weak-" + strings.ToLower(newPassword()[:8]) + "@example.com", "password": pw, "name": "Weak"})
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
				t.Errorf("password %q: %s; want 400 or 422", pw, r)
			}
			if pw != "" && strings.Contains(string(r.Body), pw) {
				t.Errorf("the answer echoes the password: %s", r)
			}
		}
	})
}

func refresh(t *testing.T, base, token string) Response {
	t.Helper()
	return Do(t, "POST", base+"/api/v1/auth/refresh", map[string]string{"refresh_token": token})
}

// wantTokenLifetime checks a login or refresh answer: a Bearer access token
// that lives at most auth.AccessTTL, by expires_in and by its own claims.
func wantTokenLifetime(t *testing.T, r Response) {
	t.Helper()
	var tok TokenResponse
	r.JSON(t, &tok)
	maxSecs := int(auth.AccessTTL.Seconds())
	if tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.ExpiresIn > maxSecs {
		t.Errorf("token_type %q, expires_in %d; want Bearer and 1..%d", tok.TokenType, tok.ExpiresIn, maxSecs)
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want 3", len(parts))
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var c struct {
		Iat, Exp int64
		Role     string
	}
	for i, v := range []any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if h.Alg != auth.Algorithm || h.Kid == "" {
		t.Errorf("access token header alg %q kid %q; want %s with a kid", h.Alg, h.Kid, auth.Algorithm)
	}
	if c.Iat == 0 || c.Exp-c.Iat <= 0 || c.Exp-c.Iat > int64(maxSecs) {
		t.Errorf("access token iat %d exp %d: lives %ds, want 1..%d", c.Iat, c.Exp, c.Exp-c.Iat, maxSecs)
	}
}
