package securitytest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/auth"
)

// issuer is a JWKS endpoint that answers, fails or hangs on demand.
type issuer struct {
	srv     *httptest.Server
	mode    atomic.Int32 // issuerOK, issuerFailing or issuerHanging
	hits    atomic.Int64
	entered chan struct{} // a hanging request has arrived
	release chan struct{} // closed at the end of the test
}

const (
	issuerOK = iota
	issuerFailing
	issuerHanging
)

func newIssuer(t *testing.T, kid string, pub ed25519.PublicKey) *issuer {
	t.Helper()
	is := &issuer{entered: make(chan struct{}, 100), release: make(chan struct{})}
	set, _ := json.Marshal(auth.JWKS{Keys: []auth.JWK{auth.PublicJWK(kid, pub)}})
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		switch is.mode.Load() {
		case issuerFailing:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case issuerHanging:
			is.entered <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-is.release:
			}
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write(set)
		}
	}))
	t.Cleanup(is.srv.Close)
	t.Cleanup(func() { close(is.release) }) // runs first
	return is
}

// TestJWKSClientWhenTheIssuerFails checks the key set every service and the
// gateway verify access tokens with, while the users service (the issuer of
// the JWKS) fails or hangs: verifying a token of a known key must not wait
// for the network, and a failed fetch must not be retried by every request,
// or anyone can stall all authenticated traffic with tokens that name
// made-up key ids.
func TestJWKSClientWhenTheIssuerFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := newKey(t)
	const kid = "known"

	t.Run("a failed fetch is not retried by every verification", func(t *testing.T) {
		is := newIssuer(t, kid, key.Public().(ed25519.PublicKey))
		// MaxAge of 1 ns stands for a key set older than its MaxAge (5 min in
		// production); MinRefresh is what production uses.
		c := &auth.JWKSClient{URL: is.srv.URL, HTTP: &http.Client{Timeout: 30 * time.Second}, MaxAge: time.Nanosecond, MinRefresh: 5 * time.Second}
		if _, err := c.PublicKey(ctx, kid); err != nil {
			t.Fatal(err)
		}
		is.mode.Store(issuerFailing)
		before := is.hits.Load()
		const n = 20
		for range n {
			if _, err := c.PublicKey(ctx, kid); err != nil {
				t.Fatalf("known key while the issuer fails: %v; want the cached key", err)
			}
			if _, err := c.PublicKey(ctx, "made-up-"+newPassword()); err == nil {
				t.Fatal("a made-up kid was accepted")
			}
		}
		if got := is.hits.Load() - before; got > 1 {
			t.Errorf("%d verifications while the issuer fails made %d fetches; want at most 1 until MinRefresh has passed", 2*n, got)
		}
	})

	t.Run("a known key does not wait for a fetch", func(t *testing.T) {
		is := newIssuer(t, kid, key.Public().(ed25519.PublicKey))
		c := &auth.JWKSClient{URL: is.srv.URL, HTTP: &http.Client{Timeout: time.Minute}, MaxAge: time.Hour, MinRefresh: time.Nanosecond}
		if _, err := c.PublicKey(ctx, kid); err != nil {
			t.Fatal(err)
		}
		is.mode.Store(issuerHanging)
		go c.PublicKey(ctx, "made-up-kid") // fetches, and hangs until the test ends
		select {
		case <-is.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the made-up kid did not make the client fetch")
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.PublicKey(ctx, kid)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("known key: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("verifying a cached key waited over 5 s for another request's fetch from a hanging issuer")
		}
	})
}
