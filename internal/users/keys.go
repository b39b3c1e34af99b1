package users

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/microshop/microshop/internal/platform/auth"
)

// Signing keys: the service signs access tokens with its newest active key.
// Rotating adds a new active key and retires the previous one, which stays
// published (and accepted) for KeyRetention, longer than any token it signed
// lives; after that it is neither published nor accepted, and the next rotation
// deletes it.
const (
	KeyRetention = 24 * time.Hour
	// KeyCacheTTL bounds how long the service uses its copy of the keys before
	// reading them again, so a rotation made by another process (microshop keys
	// rotate) reaches every replica within it.
	KeyCacheTTL = 10 * time.Second
	// keyMinReload bounds how often a token naming a key id the cache does not
	// know (a key just added by another replica, or a made-up one) can make the
	// service read the keys before KeyCacheTTL has passed.
	keyMinReload = time.Second
)

// SigningKey is a key that signs access tokens.
type SigningKey struct {
	ID        string // kid: the RFC 7638 thumbprint of the public key
	Key       ed25519.PrivateKey
	CreatedAt time.Time
	RetiredAt time.Time // zero while the key is active
}

// Active reports whether k signs new tokens.
func (k SigningKey) Active() bool { return k.RetiredAt.IsZero() }

// published reports whether tokens signed with k are still accepted at now.
func (k SigningKey) published(now time.Time) bool {
	return k.Active() || now.Before(k.RetiredAt.Add(KeyRetention))
}

func (k SigningKey) public() ed25519.PublicKey { return k.Key.Public().(ed25519.PublicKey) }

// newSigningKey makes a fresh active key created at now.
func newSigningKey(now time.Time) (SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("users: generate signing key: %w", err)
	}
	return SigningKey{ID: Thumbprint(pub), Key: priv, CreatedAt: now.UTC().Truncate(time.Microsecond)}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key (SHA-256,
// base64url), used as its key id.
func Thumbprint(pub ed25519.PublicKey) string {
	// The required members of an OKP key, in lexicographic order, no spaces.
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// keyCache is the service's copy of the signing keys.
type keyCache struct {
	mu     sync.Mutex
	keys   []SigningKey // newest first
	loaded bool
	at     time.Time // when keys were read
	tried  time.Time // when a read was last started
}

func (c *keyCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at, c.tried = time.Time{}, time.Time{}
	c.loaded = false
}

// signingKeys returns the keys, read from the store when the copy is older than
// KeyCacheTTL, or when kid is not empty and not in the copy (at most once per
// keyMinReload). When the store cannot answer, the last copy is used.
func (s *Service) signingKeys(ctx context.Context, kid string) ([]SigningKey, error) {
	c := &s.keys
	c.mu.Lock()
	now := s.now()
	fresh := c.loaded && now.Sub(c.at) < KeyCacheTTL && !now.Before(c.at)
	justTried := !c.tried.IsZero() && now.Sub(c.tried) < keyMinReload && !now.Before(c.tried)
	if c.loaded && (justTried || (fresh && (kid == "" || hasKey(c.keys, kid)))) {
		keys := c.keys
		c.mu.Unlock()
		return keys, nil
	}
	c.tried = now
	c.mu.Unlock()

	keys, err := s.store.SigningKeys(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.loaded {
			s.log.WarnContext(ctx, "cannot read the signing keys; using the last copy", "err", err)
			return c.keys, nil
		}
		return nil, err
	}
	c.keys, c.at, c.loaded = keys, s.now(), true
	return keys, nil
}

func hasKey(keys []SigningKey, kid string) bool {
	for _, k := range keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// activeKey returns the key that signs new tokens: the newest active one. If
// there is none (EnsureSigningKey was not called), one is created.
func (s *Service) activeKey(ctx context.Context) (SigningKey, error) {
	for range 2 {
		keys, err := s.signingKeys(ctx, "")
		if err != nil {
			return SigningKey{}, err
		}
		for _, k := range keys {
			if k.Active() {
				return k, nil
			}
		}
		if err := s.EnsureSigningKey(ctx); err != nil {
			return SigningKey{}, err
		}
	}
	return SigningKey{}, errors.New("users: no active signing key")
}

// EnsureSigningKey creates an active signing key unless one exists. Replicas
// that start together create one between them.
func (s *Service) EnsureSigningKey(ctx context.Context) error {
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Active() {
			return nil
		}
	}
	k, err := newSigningKey(s.now())
	if err != nil {
		return err
	}
	added, err := s.store.AddSigningKey(ctx, k)
	if err != nil {
		return err
	}
	s.keys.invalidate()
	if added {
		s.log.InfoContext(ctx, "created a signing key", "kid", k.ID)
	}
	return nil
}

// RotateSigningKey makes a new active signing key and retires the previous one
// (published for KeyRetention more). It returns the new key's id. Running
// replicas start signing with it within KeyCacheTTL.
func (s *Service) RotateSigningKey(ctx context.Context) (string, error) {
	now := s.now()
	k, err := newSigningKey(now)
	if err != nil {
		return "", err
	}
	if err := s.store.RotateSigningKey(ctx, k, k.CreatedAt.Add(-KeyRetention)); err != nil {
		return "", err
	}
	s.keys.invalidate()
	s.log.InfoContext(ctx, "rotated the signing key", "kid", k.ID)
	return k.ID, nil
}

// JWKS returns the public keys that verify access tokens: the active key and
// those retired less than KeyRetention ago, newest first.
func (s *Service) JWKS(ctx context.Context) (auth.JWKS, error) {
	keys, err := s.signingKeys(ctx, "")
	if err != nil {
		return auth.JWKS{}, err
	}
	now := s.now()
	set := auth.JWKS{Keys: []auth.JWK{}}
	for _, k := range keys {
		if k.published(now) {
			set.Keys = append(set.Keys, auth.PublicJWK(k.ID, k.public()))
		}
	}
	return set, nil
}

// KeySet returns the keys that verify access tokens, backed by the service's
// copy of the signing keys (for its own verifier, or for every module of the
// monolith).
func (s *Service) KeySet() auth.KeySet { return keySet{s} }

type keySet struct{ s *Service }

var errUnknownKey = errors.New("users: unknown or retired signing key")

func (ks keySet) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	keys, err := ks.s.signingKeys(ctx, kid)
	if err != nil {
		return nil, err
	}
	now := ks.s.now()
	for _, k := range keys {
		if k.ID == kid && k.published(now) {
			return k.public(), nil
		}
	}
	return nil, errUnknownKey
}
