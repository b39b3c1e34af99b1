package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microshop/microshop/internal/platform/fault"
)

// mutableKeys is a KeySet a test can change.
type mutableKeys struct{ keys StaticKeys }

func (c *mutableKeys) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	return c.keys.PublicKey(ctx, kid)
}

func genKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// TestVerifiedCache checks that a remembered token is accepted again only
// when verifying it afresh would accept it too: the cache skips the signature
// check, never the time checks or the key lookup.
func TestVerifiedCache(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		change func(now *time.Time, keys *mutableKeys, other ed25519.PublicKey)
		ok     bool
	}{
		{"same token again", func(*time.Time, *mutableKeys, ed25519.PublicKey) {}, true},
		{"within the leeway after expiry", func(now *time.Time, _ *mutableKeys, _ ed25519.PublicKey) {
			*now = now.Add(AccessTTL + Leeway - time.Second)
		}, true},
		{"expired since it was remembered", func(now *time.Time, _ *mutableKeys, _ ed25519.PublicKey) {
			*now = now.Add(AccessTTL + Leeway + time.Second)
		}, false},
		{"key removed from the set", func(_ *time.Time, keys *mutableKeys, _ ed25519.PublicKey) {
			keys.keys = StaticKeys{}
		}, false},
		{"key id now names another key", func(_ *time.Time, keys *mutableKeys, other ed25519.PublicKey) {
			keys.keys = StaticKeys{"k1": other}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, priv := genKey(t)
			other, _ := genKey(t)
			now := t0
			keys := &mutableKeys{keys: StaticKeys{"k1": pub}}
			v := newVerifier(keys, Issuer, Audience, AccessTTL, func() time.Time { return now })
			tok, err := Sign("k1", priv, Claims{Role: RoleCustomer, RegisteredClaims: jwt.RegisteredClaims{
				Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, Subject: "u1",
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(AccessTTL)),
			}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.VerifyUser(context.Background(), tok); err != nil {
				t.Fatalf("first verification: %v", err)
			}
			if v.verified.len() != 1 {
				t.Fatalf("remembered %d tokens, want 1", v.verified.len())
			}
			tc.change(&now, keys, other)
			p, err := v.VerifyUser(context.Background(), tok)
			if tc.ok != (err == nil) {
				t.Fatalf("second verification: err = %v, want ok = %v", err, tc.ok)
			}
			if err != nil {
				if fe, _ := errors.AsType[*fault.Error](err); fe == nil || fe.Kind != fault.Unauthenticated {
					t.Fatalf("err = %v, want an unauthenticated fault", err)
				}
				return
			}
			if p.UserID != "u1" || p.Role != RoleCustomer {
				t.Fatalf("principal = %+v", p)
			}
		})
	}
}

// TestVerifiedCacheRemembersOnlySuccesses: a token that fails verification
// (a bad signature) is not remembered, so it fails every time.
func TestVerifiedCacheRemembersOnlySuccesses(t *testing.T) {
	pub, _ := genKey(t)
	_, forger := genKey(t)
	v := NewUserVerifier(StaticKeys{"k1": pub})
	now := time.Now()
	forged, err := Sign("k1", forger, Claims{Role: RoleAdmin, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, Subject: "u1",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := v.VerifyUser(context.Background(), forged); err == nil {
			t.Fatalf("attempt %d: forged token accepted", i)
		}
	}
	if n := v.verified.len(); n != 0 {
		t.Fatalf("remembered %d tokens after failures, want 0", n)
	}
}

// TestVerifiedCacheServiceSubject: the check that a service token's subject
// matches its key id applies to remembered tokens too.
func TestVerifiedCacheServiceSubject(t *testing.T) {
	pub, priv := genKey(t)
	v := NewServiceVerifier(StaticKeys{"orders": pub})
	now := time.Now()
	for _, sub := range []string{"orders", "products"} {
		tok, err := Sign("orders", priv, jwt.RegisteredClaims{Subject: sub, Audience: jwt.ClaimStrings{ServiceAudience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ServiceTTL))})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 { // the second call is served from the cache
			name, err := v.VerifyService(context.Background(), tok)
			if want := sub == "orders"; want != (err == nil) || (err == nil && name != "orders") {
				t.Fatalf("subject %s, call %d: name %q err %v", sub, i, name, err)
			}
		}
	}
}

// TestVerifiedCacheBounded: the cache never holds more than two generations.
func TestVerifiedCacheBounded(t *testing.T) {
	c := verifiedCache{max: 10}
	for i := range 1000 {
		c.put(fmt.Sprint(i), verifiedToken{})
		if n := c.len(); n > 2*c.max {
			t.Fatalf("after %d puts the cache holds %d entries, want at most %d", i+1, n, 2*c.max)
		}
	}
	// The newest entries are kept; an old one looked up moves to the current generation.
	if _, ok := c.get("999"); !ok {
		t.Fatal("newest entry lost")
	}
	if _, ok := c.get("0"); ok {
		t.Fatal("oldest entry kept")
	}
	if _, ok := c.get("985"); !ok {
		t.Fatal("entry of the previous generation lost")
	}
	if _, ok := c.cur["985"]; !ok {
		t.Fatal("entry looked up in the old generation was not moved to the current one")
	}
}

// TestVerifiedCacheKeepsItsOwnClaims: changing the claims a caller was given
// does not change those the remembered token is checked with.
func TestVerifiedCacheKeepsItsOwnClaims(t *testing.T) {
	pub, priv := genKey(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	v := newVerifier(StaticKeys{"k1": pub}, Issuer, Audience, AccessTTL, func() time.Time { return now })
	tok, err := Sign("k1", priv, Claims{Role: RoleCustomer, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, Subject: "u1",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(AccessTTL)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // verified, then served from the cache: both copies are the caller's
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpiresAt.Time = now.Add(24 * time.Hour)
		c.Audience[0] = "elsewhere"
	}
	now = now.Add(AccessTTL + Leeway + time.Second)
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("an expired token was accepted after a caller changed its copy of the claims")
	}
}
