package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func accessToken(t testing.TB, kid string, key ed25519.PrivateKey) string {
	t.Helper()
	now := time.Now()
	tok, err := auth.Sign(kid, key, auth.Claims{Role: auth.RoleCustomer, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: auth.Issuer, Audience: jwt.ClaimStrings{auth.Audience}, Subject: "u1",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwksServer serves the given keys and counts fetches; it can be switched off.
type jwksServer struct {
	*httptest.Server
	keys    atomic.Pointer[auth.JWKS]
	fetches atomic.Int32
	down    atomic.Bool
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.keys.Store(&auth.JWKS{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(s.keys.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func TestJWKSClient(t *testing.T) {
	ctx := context.Background()
	srv := newJWKSServer(t)
	pub1, key1 := newKey(t)
	pub2, key2 := newKey(t)
	srv.keys.Store(&auth.JWKS{Keys: []auth.JWK{auth.PublicJWK("k1", pub1)}})
	c := auth.NewJWKSClient(srv.URL)
	c.MinRefresh = 50 * time.Millisecond
	v := auth.NewUserVerifier(c)

	if _, err := v.VerifyUser(ctx, accessToken(t, "k1", key1)); err != nil {
		t.Fatalf("token under k1: %v", err)
	}
	// A rotation: k2 appears; the unknown kid makes the client refetch once.
	srv.keys.Store(&auth.JWKS{Keys: []auth.JWK{auth.PublicJWK("k1", pub1), auth.PublicJWK("k2", pub2)}})
	time.Sleep(60 * time.Millisecond)
	if _, err := v.VerifyUser(ctx, accessToken(t, "k2", key2)); err != nil {
		t.Fatalf("token under rotated k2: %v", err)
	}
	// Made-up key ids cannot make the client hammer the issuer.
	before := srv.fetches.Load()
	for range 20 {
		if _, err := v.VerifyUser(ctx, accessToken(t, "made-up", key2)); fault.KindOf(err) != fault.Unauthenticated {
			t.Fatalf("unknown kid: err = %v, want unauthenticated", err)
		}
	}
	if got := srv.fetches.Load() - before; got > 1 {
		t.Errorf("20 unknown-kid tokens caused %d fetches, want at most 1", got)
	}
	// The issuer down: known keys keep working; an unknown kid is a 503, not a 401.
	srv.down.Store(true)
	time.Sleep(60 * time.Millisecond)
	if _, err := v.VerifyUser(ctx, accessToken(t, "k1", key1)); err != nil {
		t.Errorf("known key while the issuer is down: %v", err)
	}
	fresh := auth.NewUserVerifier(auth.NewJWKSClient(srv.URL))
	if _, err := fresh.VerifyUser(ctx, accessToken(t, "k1", key1)); fault.KindOf(err) != fault.Unavailable {
		t.Errorf("no keys at all while the issuer is down: err = %v, want unavailable", err)
	}
}

func TestJWKRejectsOtherKeys(t *testing.T) {
	pub, _ := newKey(t)
	good := auth.PublicJWK("k", pub)
	tests := []struct {
		name   string
		mutate func(*auth.JWK)
		ok     bool
	}{
		{"ed25519", func(*auth.JWK) {}, true},
		{"RSA", func(k *auth.JWK) { k.Kty = "RSA" }, false},
		{"X25519", func(k *auth.JWK) { k.Crv = "X25519" }, false},
		{"other alg", func(k *auth.JWK) { k.Alg = "HS256" }, false},
		{"encryption key", func(k *auth.JWK) { k.Use = "enc" }, false},
		{"short key", func(k *auth.JWK) { k.X = k.X[:10] }, false},
		{"not base64", func(k *auth.JWK) { k.X = "!!!" }, false},
	}
	for _, tt := range tests {
		k := good
		tt.mutate(&k)
		if _, err := k.PublicKey(); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header      string
		token       string
		present     bool
		wantInvalid bool
	}{
		{"", "", false, false},
		{"Bearer abc", "abc", true, false},
		{"bearer abc", "abc", true, false},
		{"Bearer", "", true, true},
		{"Bearer ", "", true, true},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "", true, true},
		{"Bearer a b", "", true, true},
		{"Bearer a\tb", "", true, true},
	}
	for _, tt := range tests {
		tok, present, err := auth.BearerToken(tt.header)
		if tok != tt.token || present != tt.present || (err != nil) != tt.wantInvalid {
			t.Errorf("BearerToken(%q) = %q, %v, %v; want %q, %v, invalid %v", tt.header, tok, present, err, tt.token, tt.present, tt.wantInvalid)
		}
	}
}

func TestServiceKeysAndTrust(t *testing.T) {
	pub, key := newKey(t)
	parsed, err := auth.ParseServiceKey(auth.EncodeKey(key))
	if err != nil || !parsed.Equal(key) {
		t.Fatalf("ParseServiceKey round trip: %v", err)
	}
	trusted, err := auth.ParseTrusted("orders=" + auth.EncodePublic(pub) + ", ")
	if err != nil || !trusted["orders"].Equal(pub) {
		t.Fatalf("ParseTrusted: %v, %v", trusted, err)
	}
	for _, bad := range []string{"orders", "orders=short", "=" + auth.EncodePublic(pub), "orders=!!!"} {
		if _, err := auth.ParseTrusted(bad); err == nil {
			t.Errorf("ParseTrusted(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "short", "!!!"} {
		if _, err := auth.ParseServiceKey(bad); err == nil {
			t.Errorf("ParseServiceKey(%q) accepted", bad)
		}
	}

	// A service token verifies as its service, and only under its own name.
	ctx := context.Background()
	tok, err := auth.NewServiceSigner("orders", key).Token()
	if err != nil {
		t.Fatal(err)
	}
	if name, err := auth.NewServiceVerifier(trusted).VerifyService(ctx, tok); err != nil || name != "orders" {
		t.Errorf("VerifyService = %q, %v; want orders", name, err)
	}
	impostor, err := auth.NewServiceSigner("users", key).Token() // kid "users" is not trusted
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewServiceVerifier(trusted).VerifyService(ctx, impostor); err == nil {
		t.Error("a token under an untrusted name verified")
	}
	if _, err := auth.NewUserVerifier(trusted).VerifyUser(ctx, tok); err == nil {
		t.Error("a service token verified as a user's access token")
	}
	now := time.Now()
	long, err := auth.Sign("orders", key, jwt.RegisteredClaims{Subject: "orders", Audience: jwt.ClaimStrings{auth.ServiceAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewServiceVerifier(trusted).VerifyService(ctx, long); err == nil {
		t.Error("a service token living 10 minutes verified; service tokens live 60 s")
	}
}

// FuzzVerify feeds arbitrary tokens to the verifier: no panic, nothing accepted.
func FuzzVerify(f *testing.F) {
	pub, key := newKey(f)
	good := accessToken(f, "k1", key)
	for _, s := range []string{good, good[:len(good)-5], "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30.", "", "\x00"} {
		f.Add(s)
	}
	v := auth.NewUserVerifier(auth.StaticKeys{"k1": pub})
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.VerifyUser(context.Background(), raw)
		if err == nil && raw != good {
			t.Fatalf("accepted %q as %+v", raw, p)
		}
	})
}

// TestJWKSClientFirstFetchIsShared checks that tokens arriving while the first
// fetch of the key set runs wait for it instead of being refused.
func TestJWKSClientFirstFetchIsShared(t *testing.T) {
	pub, key := newKey(t)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		time.Sleep(100 * time.Millisecond) // a slow issuer
		json.NewEncoder(w).Encode(auth.JWKS{Keys: []auth.JWK{auth.PublicJWK("k1", pub)}})
	}))
	defer srv.Close()
	v := auth.NewUserVerifier(auth.NewJWKSClient(srv.URL))
	tok := accessToken(t, "k1", key)
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := v.VerifyUser(context.Background(), tok)
			errs <- err
		}()
		time.Sleep(5 * time.Millisecond)
	}
	for range 10 {
		if err := <-errs; err != nil {
			t.Errorf("a valid token was refused during the first key fetch: %v", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 10 concurrent verifications, want 1", n)
	}
}
