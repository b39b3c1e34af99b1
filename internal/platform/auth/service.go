package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ServiceSigner mints this service's tokens for calls to internal endpoints.
// A token is reused until shortly before it expires.
type ServiceSigner struct {
	name string
	key  ed25519.PrivateKey

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewServiceSigner returns a signer for the service name with its private key.
func NewServiceSigner(name string, key ed25519.PrivateKey) *ServiceSigner {
	return &ServiceSigner{name: name, key: key}
}

// Token returns a valid service token.
func (s *ServiceSigner) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.token != "" && now.Add(15*time.Second).Before(s.expires) {
		return s.token, nil
	}
	exp := now.Add(ServiceTTL)
	tok, err := Sign(s.name, s.key, jwt.RegisteredClaims{
		Issuer: s.name, Subject: s.name, Audience: jwt.ClaimStrings{ServiceAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	})
	if err != nil {
		return "", err
	}
	s.token, s.expires = tok, exp
	return tok, nil
}

type serviceCallKey struct{}

// AsService marks ctx so that calls made with it carry this service's own
// token (for internal endpoints such as stock reservation).
func AsService(ctx context.Context) context.Context {
	return context.WithValue(ctx, serviceCallKey{}, true)
}

// Credentials returns the header decorator for an upstream client: it forwards
// the end user's token found in ctx, and adds the service token when signer is
// set and ctx was marked with AsService.
func Credentials(signer *ServiceSigner) func(ctx context.Context, h http.Header) {
	return func(ctx context.Context, h http.Header) {
		if tok := UserToken(ctx); tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
		if signer != nil {
			if marked, _ := ctx.Value(serviceCallKey{}).(bool); marked {
				if tok, err := signer.Token(); err == nil {
					h.Set(ServiceHeader, tok)
				}
			}
		}
	}
}

// ParseServiceKey reads a private key given as the base64url (or standard
// base64) encoding of its 32-byte seed, as MICROSHOP_SERVICE_KEY holds it.
func ParseServiceKey(s string) (ed25519.PrivateKey, error) {
	seed, err := decodeB64(s)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("service key must be a base64-encoded 32-byte Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// EncodeKey encodes a private key's seed for MICROSHOP_SERVICE_KEY.
func EncodeKey(k ed25519.PrivateKey) string { return base64.RawURLEncoding.EncodeToString(k.Seed()) }

// EncodePublic encodes a public key for MICROSHOP_TRUSTED_SERVICES.
func EncodePublic(k ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(k) }

// ParseTrusted reads "name=<base64 public key>,name2=..." (MICROSHOP_TRUSTED_SERVICES).
func ParseTrusted(s string) (StaticKeys, error) {
	out := StaticKeys{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, key, ok := strings.Cut(part, "=")
		b, err := decodeB64(key)
		if !ok || name == "" || err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("trusted services: entry %q must be name=<base64 Ed25519 public key>", name)
		}
		out[name] = ed25519.PublicKey(b)
	}
	return out, nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil {
		return b, nil
	}
	return base64.StdEncoding.DecodeString(s)
}
