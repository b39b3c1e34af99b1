package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// JWK is one public key in a JSON Web Key Set (RFC 7517, OKP keys of RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK describes an Ed25519 public key as a JWK.
func PublicJWK(kid string, pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Use: "sig", Alg: Algorithm}
}

// PublicKey returns the Ed25519 key of a JWK, refusing anything else.
func (k JWK) PublicKey() (ed25519.PublicKey, error) {
	if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != Algorithm) || (k.Use != "" && k.Use != "sig") {
		return nil, fmt.Errorf("jwk %q: not an Ed25519 signing key", k.Kid)
	}
	b, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("jwk %q: bad key material", k.Kid)
	}
	return ed25519.PublicKey(b), nil
}

// JWKSClient is a KeySet read from a JWKS URL (the users service's
// /.well-known/jwks.json). It caches the set and refreshes it in the
// background every MaxAge; an unknown key id (a rotation) makes it fetch at
// once, but at most once per MinRefresh whatever the outcome, so tokens with
// made-up key ids cannot flood the issuer. Fetches never run under the lock
// and concurrent ones are merged, so a slow issuer never holds up tokens
// signed with keys already known.
type JWKSClient struct {
	URL        string
	HTTP       *http.Client
	MaxAge     time.Duration
	MinRefresh time.Duration

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	fetched   time.Time     // last successful fetch
	attempted time.Time     // last fetch started, successful or not
	lastErr   error         // outcome of the last fetch
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
}

// NewJWKSClient returns a client for the JWKS at url.
func NewJWKSClient(url string) *JWKSClient {
	return &JWKSClient{URL: url, HTTP: &http.Client{Timeout: 2 * time.Second}, MaxAge: 5 * time.Minute, MinRefresh: 5 * time.Second}
}

// PublicKey returns the key for kid, fetching the set when needed.
func (c *JWKSClient) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	c.mu.Lock()
	k, known := c.keys[kid]
	stale := time.Since(c.fetched) >= c.MaxAge
	recent := time.Since(c.attempted) < c.MinRefresh
	lastErr, inflight := c.lastErr, c.inflight
	c.mu.Unlock()
	if known {
		if stale && !recent {
			c.start() // refresh in the background; the known key serves meanwhile
		}
		return k, nil
	}
	if recent && inflight == nil {
		if lastErr != nil {
			return nil, &keysUnavailable{lastErr}
		}
		return nil, errUnknownKey
	}
	// Either no fetch was tried lately, or one is running (the first fetch
	// after a start, say): wait for its outcome rather than refuse a token
	// that the keys being fetched may well verify.
	if err := c.wait(ctx, c.start()); err != nil {
		return nil, &keysUnavailable{err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[kid]; ok {
		return k, nil
	}
	return nil, errUnknownKey
}

// start begins a fetch unless one is running, and returns the channel closed
// when the running fetch ends.
func (c *JWKSClient) start() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		return c.inflight
	}
	done := make(chan struct{})
	c.inflight, c.attempted = done, time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		keys, err := c.fetch(ctx)
		cancel()
		c.mu.Lock()
		if err == nil {
			c.keys, c.fetched = keys, time.Now()
		}
		c.lastErr, c.inflight = err, nil
		c.mu.Unlock()
		close(done)
	}()
	return done
}

// wait waits for a fetch to end, or for ctx, and returns the fetch's error.
func (c *JWKSClient) wait(ctx context.Context, done chan struct{}) error {
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

func (c *JWKSClient) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", resp.StatusCode)
	}
	var set JWKS
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if pub, err := k.PublicKey(); err == nil {
			keys[k.Kid] = pub
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable key")
	}
	return keys, nil
}

// keysUnavailable means the key set could not be fetched: the token may well be
// valid, so the answer is 503, not 401.
type keysUnavailable struct{ err error }

func (e *keysUnavailable) Error() string { return "signing keys unavailable: " + e.err.Error() }
func (e *keysUnavailable) Unwrap() error { return e.err }
