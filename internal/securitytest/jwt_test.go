package securitytest

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/auth"
)

// Forging tokens by hand, not with a JWT library, so that any header and any
// claims can be written, including ones a library would refuse to produce.

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func segment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64(b)
}

type claims map[string]any

// with returns a copy of c with key set to v, or removed when v is nil.
func (c claims) with(kv ...any) claims {
	out := maps.Clone(c)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

type header = claims

// signEd signs header.claims with an Ed25519 key.
func signEd(key ed25519.PrivateKey, h header, c claims) string {
	input := segment(h) + "." + segment(c)
	return input + "." + b64(ed25519.Sign(key, []byte(input)))
}

// signHS signs header.claims with HMAC-SHA256 under secret.
func signHS(secret []byte, h header, c claims) string {
	input := segment(h) + "." + segment(c)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

// unsigned returns header.claims. with an empty signature.
func unsigned(h header, c claims) string { return segment(h) + "." + segment(c) + "." }

// userClaims are the claims of a valid access token for sub with role.
func userClaims(sub, role string) claims {
	now := time.Now()
	return claims{"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": sub, "role": role,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
}

// serviceClaims are the claims of a valid service token of name.
func serviceClaims(name string) claims {
	now := time.Now()
	return claims{"iss": name, "aud": []string{auth.ServiceAudience}, "sub": name,
		"iat": now.Unix(), "exp": now.Add(auth.ServiceTTL).Unix()}
}

func edHeader(kid string) header { return header{"alg": "EdDSA", "typ": "JWT", "kid": kid} }

// kit is what forging needs: the real signing key (as its JWKS publishes it),
// a valid token of alice's and her refresh token, the services' keys.
type kit struct {
	kid      string
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	x        string // the key in the JWKS
	attacker ed25519.PrivateKey
	s        *System
}

func newKit(t *testing.T, s *System) *kit {
	t.Helper()
	k := &kit{s: s, attacker: newKey(t)}
	k.kid, k.key = s.SigningKey(t)
	k.pub = k.key.Public().(ed25519.PublicKey)
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	Do(t, "GET", s.Gateway+"/.well-known/jwks.json", nil).Want(t, 200).JSON(t, &jwks)
	for _, j := range jwks.Keys {
		if j["kid"] == k.kid {
			k.x, _ = j["x"].(string)
		}
	}
	if k.x != b64(k.pub) {
		t.Fatalf("the JWKS %v does not publish the active signing key %s", jwks.Keys, k.kid)
	}
	return k
}

// admin returns a valid admin token of alice's, forged with the real key: it
// proves that forging works, so that a rejected case is rejected for the one
// thing it breaks.
func (k *kit) valid(role string) string {
	return signEd(k.key, edHeader(k.kid), userClaims(k.s.Alice.ID, role))
}

// alice's claims with a role of admin, the claims an attacker wants.
func (k *kit) escalated() claims { return userClaims(k.s.Alice.ID, "admin") }

func (k *kit) serviceToken(name string, key ed25519.PrivateKey) string {
	return signEd(key, edHeader(name), serviceClaims(name))
}

// tamperRole returns tok with its role claim changed, the signature kept.
func tamperRole(t *testing.T, tok, role string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c["role"] == role {
		t.Fatalf("token already has role %s", role)
	}
	c["role"] = role
	parts[1] = segment(c)
	return strings.Join(parts, ".")
}

// nonCanonical changes the unused low bits of the last character of a
// base64url segment: lenient decoders read the same bytes.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}

// attack is one case of the matrix: the credentials sent, which must all be
// refused.
type attack struct {
	name    string
	headers []string // header pairs
	// forbidden allows 403 besides 401: the credentials are valid, but not
	// for this endpoint.
	forbidden bool
}

func bearerOf(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// userAttacks are the cases against routes that need an end user's token.
func userAttacks(t *testing.T, k *kit) []attack {
	t.Helper()
	s := k.s
	admin := k.escalated()
	hdr := edHeader(k.kid)
	now := time.Now()
	orders := k.serviceToken("orders", s.OrdersKey)
	big := signEd(k.key, hdr, userClaims(s.Alice.ID, "customer").with("pad", strings.Repeat("A", auth.MaxTokenBytes)))
	if len(big) <= auth.MaxTokenBytes {
		t.Fatalf("oversized token has %d bytes", len(big))
	}
	validParts := strings.Split(k.valid("customer"), ".")
	return []attack{
		{name: "alg none", headers: bearerOf(unsigned(header{"alg": "none", "typ": "JWT", "kid": k.kid}, admin))},
		{name: "alg None mixed case", headers: bearerOf(unsigned(header{"alg": "None", "kid": k.kid}, admin))},
		{name: "alg none without kid", headers: bearerOf(unsigned(header{"alg": "none"}, admin))},
		{name: "alg none with the real signature", headers: bearerOf(func() string {
			p := strings.Split(signEd(k.key, hdr, admin), ".")
			return segment(header{"alg": "none", "kid": k.kid}) + "." + p[1] + "." + p[2]
		}())},
		{name: "HS256 with the public key bytes as secret", headers: bearerOf(signHS(k.pub, header{"alg": "HS256", "typ": "JWT", "kid": k.kid}, admin))},
		{name: "HS256 with the JWKS x value as secret", headers: bearerOf(signHS([]byte(k.x), header{"alg": "HS256", "typ": "JWT", "kid": k.kid}, admin))},
		{name: "RS256 header with a garbage signature", headers: bearerOf(segment(header{"alg": "RS256", "kid": k.kid}) + "." + segment(admin) + "." + b64([]byte(strings.Repeat("garbage!", 32))))},
		{name: "ES256 header over a real Ed25519 signature", headers: bearerOf(signEd(k.key, header{"alg": "ES256", "kid": k.kid}, admin))},
		{name: "expired", headers: bearerOf(signEd(k.key, hdr, admin.with("iat", now.Add(-time.Hour).Unix(), "exp", now.Add(-45*time.Minute).Unix())))},
		{name: "expired beyond the leeway", headers: bearerOf(signEd(k.key, hdr, admin.with("iat", now.Add(-10*time.Minute).Unix(), "exp", now.Add(-auth.Leeway-time.Minute).Unix())))},
		{name: "not yet valid (nbf in the future)", headers: bearerOf(signEd(k.key, hdr, admin.with("nbf", now.Add(5*time.Minute).Unix())))},
		{name: "iat in the future", headers: bearerOf(signEd(k.key, hdr, admin.with("iat", now.Add(5*time.Minute).Unix(), "exp", now.Add(14*time.Minute).Unix())))},
		{name: "wrong iss", headers: bearerOf(signEd(k.key, hdr, admin.with("iss", "https://evil.example")))},
		{name: "missing iss", headers: bearerOf(signEd(k.key, hdr, admin.with("iss", nil)))},
		{name: "wrong aud (the service audience)", headers: bearerOf(signEd(k.key, hdr, admin.with("aud", []string{auth.ServiceAudience})))},
		{name: "missing aud", headers: bearerOf(signEd(k.key, hdr, admin.with("aud", nil)))},
		{name: "missing exp", headers: bearerOf(signEd(k.key, hdr, admin.with("exp", nil)))},
		{name: "missing iat", headers: bearerOf(signEd(k.key, hdr, admin.with("iat", nil)))},
		{name: "lifetime 1h, longer than 15 min", headers: bearerOf(signEd(k.key, hdr, admin.with("exp", now.Add(time.Hour).Unix())))},
		{name: "missing sub", headers: bearerOf(signEd(k.key, hdr, admin.with("sub", nil)))},
		{name: "unknown role", headers: bearerOf(signEd(k.key, hdr, admin.with("role", "superuser")))},
		{name: "unknown kid", headers: bearerOf(signEd(k.key, edHeader("no-such-key"), admin))},
		{name: "missing kid", headers: bearerOf(signEd(k.key, header{"alg": "EdDSA", "typ": "JWT"}, admin))},
		{name: "kid path traversal", headers: bearerOf(signEd(k.key, edHeader("../../../../../../dev/null"), admin))},
		{name: "kid SQL injection", headers: bearerOf(signEd(k.key, edHeader("' OR '1'='1"), admin))},
		{name: "kid of 200 characters", headers: bearerOf(signEd(k.key, edHeader(strings.Repeat("k", 200)), admin))},
		{name: "kid of a service", headers: bearerOf(signEd(s.OrdersKey, edHeader("orders"), admin))},
		{name: "tampered payload (customer to admin), original signature", headers: bearerOf(tamperRole(t, s.Alice.Access, "admin"))},
		{name: "stripped signature", headers: bearerOf(validParts[0] + "." + validParts[1] + ".")},
		{name: "stripped signature and its dot", headers: bearerOf(validParts[0] + "." + validParts[1])},
		{name: "extra segment", headers: bearerOf(strings.Join(validParts, ".") + ".AAAA")},
		{name: "signature with non-canonical base64", headers: bearerOf(validParts[0] + "." + validParts[1] + "." + nonCanonical(validParts[2]))},
		{name: "signature of another Ed25519 key under the real kid", headers: bearerOf(signEd(k.attacker, hdr, admin))},
		{name: "embedded jwk header with the attacker's key", headers: bearerOf(signEd(k.attacker, header{"alg": "EdDSA", "kid": k.kid,
			"jwk": map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(k.attacker.Public().(ed25519.PublicKey))}}, admin))},
		{name: "jku header pointing elsewhere", headers: bearerOf(signEd(k.attacker, header{"alg": "EdDSA", "kid": "attacker", "jku": "http://127.0.0.1:1/jwks.json"}, admin))},
		{name: "garbage", headers: bearerOf("not-a-token")},
		{name: "empty bearer", headers: []string{"Authorization", "Bearer "}},
		{name: "Bearer without token", headers: []string{"Authorization", "Bearer"}},
		{name: "Basic scheme", headers: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(s.Alice.Email+":"+s.Alice.Password))}},
		{name: "token without scheme", headers: []string{"Authorization", s.Alice.Access}},
		{name: "two tokens", headers: []string{"Authorization", "Bearer " + s.Alice.Access + " " + s.Alice.Access}},
		{name: "oversized token (> 4096 bytes), validly signed", headers: bearerOf(big)},
		{name: "refresh token as access token", headers: bearerOf(s.Alice.Refresh)},
		{name: "service token as access token", headers: bearerOf(orders)},
		{name: "service token in the service header", headers: []string{auth.ServiceHeader, orders}},
		{name: "access token in the service header", headers: []string{auth.ServiceHeader, s.Alice.Access}},
	}
}

// serviceAttacks are the cases against the internal endpoints, which accept
// only the service identity of orders.
func serviceAttacks(t *testing.T, k *kit) []attack {
	t.Helper()
	s := k.s
	orders := s.OrdersKey
	sc := serviceClaims("orders")
	now := time.Now()
	return []attack{
		{name: "no credentials"},
		{name: "access token in the service header", headers: []string{auth.ServiceHeader, s.Alice.Access}},
		{name: "customer access token", headers: bearerOf(s.Alice.Access)},
		{name: "admin access token", headers: bearerOf(s.Admin.Access), forbidden: true},
		{name: "admin access token in the service header", headers: []string{auth.ServiceHeader, s.Admin.Access}},
		{name: "service token in Authorization", headers: bearerOf(k.serviceToken("orders", orders))},
		{name: "orders token signed by an untrusted key", headers: []string{auth.ServiceHeader, k.serviceToken("orders", k.attacker)}},
		{name: "auditor claiming to be orders (sub differs from kid)", headers: []string{auth.ServiceHeader, signEd(s.AuditorKey, edHeader("auditor"), sc)}},
		{name: "orders token whose sub is another service", headers: []string{auth.ServiceHeader, signEd(orders, edHeader("orders"), sc.with("sub", "auditor", "iss", "auditor"))}},
		{name: "expired service token", headers: []string{auth.ServiceHeader, signEd(orders, edHeader("orders"), sc.with("iat", now.Add(-time.Hour).Unix(), "exp", now.Add(-59*time.Minute).Unix()))}},
		{name: "service token with iat in the future", headers: []string{auth.ServiceHeader, signEd(orders, edHeader("orders"), sc.with("iat", now.Add(5*time.Minute).Unix(), "exp", now.Add(6*time.Minute).Unix()))}},
		{name: "service token for the users' audience", headers: []string{auth.ServiceHeader, signEd(orders, edHeader("orders"), sc.with("aud", []string{auth.Audience}))}},
		{name: "service token without aud", headers: []string{auth.ServiceHeader, signEd(orders, edHeader("orders"), sc.with("aud", nil))}},
		{name: "service token without exp", headers: []string{auth.ServiceHeader, signEd(orders, edHeader("orders"), sc.with("exp", nil))}},
		{name: "service token alg none", headers: []string{auth.ServiceHeader, unsigned(header{"alg": "none", "kid": "orders"}, sc)}},
		{name: "service token HS256 with the orders public key", headers: []string{auth.ServiceHeader, signHS(orders.Public().(ed25519.PublicKey), header{"alg": "HS256", "kid": "orders"}, sc)}},
		{name: "service token kid path traversal", headers: []string{auth.ServiceHeader, signEd(orders, edHeader("../orders"), sc)}},
		{name: "service token tampered sub", headers: []string{auth.ServiceHeader, func() string {
			p := strings.Split(k.serviceToken("auditor", s.AuditorKey), ".")
			return segment(edHeader("orders")) + "." + segment(serviceClaims("orders")) + "." + p[2]
		}()}},
		{name: "garbage service token", headers: []string{auth.ServiceHeader, "not-a-token"}},
		{name: "trusted service that may not reserve (auditor)", headers: []string{auth.ServiceHeader, k.serviceToken("auditor", s.AuditorKey)}, forbidden: true},
	}
}

// route is a request that needs credentials.
type route struct {
	name   string
	method string
	url    string
	body   func() any
	ok     int // the status with valid credentials
}

var skuSeq atomic.Int64

func newProductBody() any {
	return map[string]any{"sku": fmt.Sprintf("MATRIX-%d", skuSeq.Add(1)), "name": "Matrix", "description": "made by the JWT matrix",
		"price": map[string]any{"amount": 100, "currency": "EUR"}, "stock": 1}
}

// userRoutes are the routes the user-token cases are sent to: through the
// gateway and, in services mode, at each service's own port.
func userRoutes(s *System) []route {
	rs := []route{{name: "gateway GET /api/v1/users/me", method: "GET", url: s.Gateway + "/api/v1/users/me", ok: 200}}
	if s.Mode == monolithMode {
		rs = append(rs,
			route{name: "gateway GET /api/v1/orders", method: "GET", url: s.Gateway + "/api/v1/orders", ok: 200},
			route{name: "gateway POST /api/v1/products", method: "POST", url: s.Gateway + "/api/v1/products", body: newProductBody, ok: 201})
		return rs
	}
	return append(rs,
		route{name: "users GET /api/v1/users/me", method: "GET", url: s.Services["users"] + "/api/v1/users/me", ok: 200},
		route{name: "orders GET /api/v1/orders", method: "GET", url: s.Services["orders"] + "/api/v1/orders", ok: 200},
		route{name: "products POST /api/v1/products", method: "POST", url: s.Services["products"] + "/api/v1/products", body: newProductBody, ok: 201})
}

// internalRoutes are the products service's internal endpoints.
func internalRoutes(s *System) []route {
	if s.Mode == monolithMode {
		return nil
	}
	p := s.Services["products"]
	return []route{
		{name: "products POST /internal/v1/reservations", method: "POST", url: p + "/internal/v1/reservations",
			body: func() any { return map[string]any{"order_id": unknownID, "lines": []any{}} }, ok: 422},
		{name: "products DELETE /internal/v1/reservations/{order_id}", method: "DELETE", url: p + "/internal/v1/reservations/" + unknownID, ok: 204},
	}
}

func (rt route) send(t *testing.T, headers []string) Response {
	t.Helper()
	var body any
	if rt.body != nil {
		body = rt.body()
	}
	return Do(t, rt.method, rt.url, body, headers...)
}

// matrixCount adds up what the matrix sent, for the summary line.
type matrixCount struct {
	cases, targets, requests, accepted int
}

// runMatrix sends every attack to every route and checks each is refused
// with 401 (or 403 where allowed), a Bearer challenge and a problem body.
func runMatrix(t *testing.T, attacks []attack, routes []route, valid []string) matrixCount {
	t.Helper()
	c := matrixCount{cases: len(attacks), targets: len(routes)}
	for _, rt := range routes {
		// The positive control: valid credentials pass, so a refusal below is
		// the refusal of what the case breaks.
		if r := rt.send(t, valid); r.Status != rt.ok {
			t.Fatalf("control %s with valid credentials: %s; want %d", rt.name, r, rt.ok)
		}
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			for _, rt := range routes {
				r := rt.send(t, a.headers)
				c.requests++
				refused := r.Status == http.StatusUnauthorized || (a.forbidden && r.Status == http.StatusForbidden)
				if !refused {
					c.accepted++
					t.Errorf("%s: got %s; want 401", rt.name, r)
					continue
				}
				if _, ok := r.Problem(); !ok {
					t.Errorf("%s: got %s (Content-Type %q); want an application/problem+json body", rt.name, r, r.Header.Get("Content-Type"))
				}
				if r.Status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate = %q; want a Bearer challenge", rt.name, r.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	return c
}

// TestJWTMatrix sends forged, broken and misplaced tokens to routes that need
// them, through the gateway, at each service's own port and on the monolith:
// every one must be refused.
func TestJWTMatrix(t *testing.T) {
	t.Parallel()
	var users, services matrixCount
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := Start(t, mode, Options{})
			k := newKit(t, s)
			t.Run("user tokens", func(t *testing.T) {
				c := runMatrix(t, userAttacks(t, k), userRoutes(s), bearerOf(k.valid("admin")))
				t.Logf("JWT matrix (%s, user tokens): %d cases x %d targets, %d accepted", mode, c.cases, c.targets, c.accepted)
				users.add(c)
			})
			if mode == monolithMode {
				return // the monolith's internal endpoints cannot be reached from outside
			}
			t.Run("service tokens", func(t *testing.T) {
				c := runMatrix(t, serviceAttacks(t, k), internalRoutes(s), []string{auth.ServiceHeader, k.serviceToken("orders", s.OrdersKey)})
				t.Logf("JWT matrix (%s, service tokens): %d cases x %d targets, %d accepted", mode, c.cases, c.targets, c.accepted)
				services.add(c)
			})
		})
	}
	t.Logf("JWT matrix: %d cases x %d targets, %d accepted (user tokens: %d cases x %d targets; service tokens: %d cases x %d targets; %d requests)",
		users.cases+services.cases, users.targets+services.targets, users.accepted+services.accepted,
		users.cases, users.targets, services.cases, services.targets, users.requests+services.requests)
}

// add sums c into m; the cases are the same in every mode.
func (m *matrixCount) add(c matrixCount) {
	m.cases = c.cases
	m.targets += c.targets
	m.requests += c.requests
	m.accepted += c.accepted
}
