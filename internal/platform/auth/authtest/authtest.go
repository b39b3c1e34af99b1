// Package authtest mints real credentials for the tests of services that check
// them with package auth. An Issuer signs end users' access tokens as the users
// service does; a Service signs service tokens with its own key, as a service
// calling another's internal endpoints does. The tokens are checked by the real
// verifiers: nothing is mocked.
package authtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microshop/microshop/internal/platform/auth"
)

// KeyID is the key id under which an Issuer signs.
const KeyID = "test-key"

// Garbage is a bearer token that is not a token at all.
const Garbage = "not-a-token"

// Issuer signs end users' access tokens with a key of its own.
type Issuer struct {
	KeyID  string
	Key    ed25519.PrivateKey
	Public ed25519.PublicKey
}

// NewIssuer returns an issuer with a fresh Ed25519 key, signing under KeyID.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{KeyID: KeyID, Key: key, Public: pub}
}

// Keys returns the issuer's public key as a key set, as the JWKS would give it.
func (i *Issuer) Keys() auth.StaticKeys { return auth.StaticKeys{i.KeyID: i.Public} }

// Verifier returns a verifier of the issuer's access tokens.
func (i *Issuer) Verifier() *auth.Verifier { return auth.NewUserVerifier(i.Keys()) }

// TokenAt returns an access token for userID with role, issued at iat and
// valid for ttl (at most auth.AccessTTL, or verifiers refuse it).
func (i *Issuer) TokenAt(t testing.TB, userID, role string, iat time.Time, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign(i.KeyID, i.Key, auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    auth.Issuer,
			Audience:  jwt.ClaimStrings{auth.Audience},
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(ttl)),
		},
		Role: role,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Token returns an access token for userID with role, valid from now for
// auth.AccessTTL.
func (i *Issuer) Token(t testing.TB, userID, role string) string {
	t.Helper()
	return i.TokenAt(t, userID, role, time.Now(), auth.AccessTTL)
}

// Customer returns an access token of a customer.
func (i *Issuer) Customer(t testing.TB, userID string) string {
	t.Helper()
	return i.Token(t, userID, auth.RoleCustomer)
}

// Admin returns an access token of an administrator.
func (i *Issuer) Admin(t testing.TB, userID string) string {
	t.Helper()
	return i.Token(t, userID, auth.RoleAdmin)
}

// Expired returns an access token that expired long ago, well beyond the
// verifiers' leeway.
func (i *Issuer) Expired(t testing.TB, userID, role string) string {
	t.Helper()
	return i.TokenAt(t, userID, role, time.Now().Add(-time.Hour), auth.AccessTTL)
}

// Context returns ctx acting for the user, as the Authenticator would leave it:
// the principal is the one a fresh token verifies to, so it also carries the
// token, and auth.Credentials forwards it on calls made with the context.
func (i *Issuer) Context(t testing.TB, ctx context.Context, userID, role string) context.Context {
	t.Helper()
	p, err := i.Verifier().VerifyUser(ctx, i.Token(t, userID, role))
	if err != nil {
		t.Fatal(err)
	}
	return auth.WithPrincipal(ctx, p)
}

// Service is a service's identity: its name and its own key.
type Service struct {
	Name   string
	Key    ed25519.PrivateKey
	Public ed25519.PublicKey
	Signer *auth.ServiceSigner
}

// NewService returns the identity of the service name with a fresh key.
func NewService(t testing.TB, name string) *Service {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Service{Name: name, Key: key, Public: pub, Signer: auth.NewServiceSigner(name, key)}
}

// Token returns a valid service token of s.
func (s *Service) Token(t testing.TB) string {
	t.Helper()
	tok, err := s.Signer.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Trust returns the public keys of services by name, as a service verifier
// that trusts them holds them.
func Trust(services ...*Service) auth.StaticKeys {
	keys := auth.StaticKeys{}
	for _, s := range services {
		keys[s.Name] = s.Public
	}
	return keys
}

// Authenticator returns an authenticator that accepts the access tokens of
// users and the tokens of the given services. Without services it has no
// service verifier, as for a service without internal endpoints, and refuses
// every service token. It logs nothing.
func Authenticator(users *Issuer, services ...*Service) *auth.Authenticator {
	a := &auth.Authenticator{Users: users.Verifier(), Log: slog.New(slog.DiscardHandler)}
	if len(services) > 0 {
		a.Services = auth.NewServiceVerifier(Trust(services...))
	}
	return a
}

// Header returns request headers carrying an access token (Authorization:
// Bearer) and a service token (auth.ServiceHeader); empty ones are left out.
func Header(userToken, serviceToken string) http.Header {
	h := http.Header{}
	if userToken != "" {
		h.Set("Authorization", "Bearer "+userToken)
	}
	if serviceToken != "" {
		h.Set(auth.ServiceHeader, serviceToken)
	}
	return h
}
