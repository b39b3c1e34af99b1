// Package auth verifies who is calling: end users with access tokens (JWTs signed
// with Ed25519 by the users service and published as a JWKS), and services with
// short-lived service tokens signed by each service's own key. Every service
// verifies tokens itself; the gateway is not the only wall.
package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/microshop/microshop/internal/platform/fault"
)

// Token parameters shared by the issuer and every verifier.
const (
	Issuer          = "microshop-users"    // iss of access tokens
	Audience        = "microshop"          // aud of access tokens
	ServiceAudience = "microshop-internal" // aud of service tokens
	AccessTTL       = 15 * time.Minute
	ServiceTTL      = time.Minute
	MaxTokenBytes   = 4096 // a longer bearer token is rejected before parsing
	Leeway          = 30 * time.Second
	Algorithm       = "EdDSA" // the only algorithm accepted
)

// Roles of end users.
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
)

// ServiceHeader carries a service token, beside the Authorization header that
// carries the end user's token being forwarded.
const ServiceHeader = "X-Microshop-Service"

// Claims are an access token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Role string `json:"role"`
}

// Principal is who a request acts for: an end user, a service, or both (a
// service calling on behalf of a user). The zero value is anonymous.
type Principal struct {
	UserID  string
	Role    string
	Service string
	token   string // the user's raw access token, to forward on calls made for them
}

// Authenticated reports whether an end user is known.
func (p Principal) Authenticated() bool { return p.UserID != "" }

// IsAdmin reports whether the end user is an administrator.
func (p Principal) IsAdmin() bool { return p.UserID != "" && p.Role == RoleAdmin }

// CanSee reports whether the user may see data owned by ownerID: their own, or
// anything for an admin.
func (p Principal) CanSee(ownerID string) bool {
	return p.IsAdmin() || (p.UserID != "" && p.UserID == ownerID)
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// From returns the principal in ctx (anonymous if none).
func From(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// UserToken returns the raw access token of the user ctx acts for, or "".
func UserToken(ctx context.Context) string { return From(ctx).token }

// RequireUser returns the authenticated user, or a fault.Unauthenticated error.
func RequireUser(ctx context.Context) (Principal, error) {
	p := From(ctx)
	if !p.Authenticated() {
		return p, fault.New(fault.Unauthenticated, "authentication required")
	}
	return p, nil
}

// RequireAdmin returns the user if they are an admin: anonymous callers get a
// fault.Unauthenticated error, other users a fault.Forbidden one.
func RequireAdmin(ctx context.Context) (Principal, error) {
	p, err := RequireUser(ctx)
	if err != nil {
		return p, err
	}
	if !p.IsAdmin() {
		return p, fault.New(fault.Forbidden, "this operation requires the admin role")
	}
	return p, nil
}

// RequireService checks that the request carries a valid token of one of the
// named services. Internal endpoints accept nothing else.
func RequireService(ctx context.Context, names ...string) error {
	p := From(ctx)
	if p.Service == "" {
		return fault.New(fault.Unauthenticated, "a service identity is required")
	}
	for _, n := range names {
		if p.Service == n {
			return nil
		}
	}
	return fault.New(fault.Forbidden, "service %s may not call this endpoint", p.Service)
}

// KeySet finds the public key that verifies tokens signed under a key id.
type KeySet interface {
	PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// StaticKeys is a fixed KeySet.
type StaticKeys map[string]ed25519.PublicKey

// PublicKey returns the key for kid.
func (s StaticKeys) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, errUnknownKey
}

var errUnknownKey = errors.New("unknown key id")

// Verifier checks tokens: signature (EdDSA only), key id, issuer, audience,
// expiry (required), not-before and issued-at, with a small clock leeway.
//
// A token whose signature has been verified is remembered (see verifiedCache),
// so the same token presented again costs a map lookup and the time checks
// instead of an Ed25519 verification: on a request that crosses the gateway and
// three services, the user's token was otherwise verified four times.
type Verifier struct {
	keys      KeySet
	issuer    string
	maxTTL    time.Duration // the longest lifetime (exp - iat) accepted
	now       func() time.Time
	parser    *jwt.Parser
	validator *jwt.Validator
	verified  verifiedCache
}

// NewUserVerifier verifies end users' access tokens against keys (the JWKS).
func NewUserVerifier(keys KeySet) *Verifier {
	return newVerifier(keys, Issuer, Audience, AccessTTL, time.Now)
}

// NewServiceVerifier verifies service tokens against the trusted services'
// public keys, keyed by service name.
func NewServiceVerifier(trusted StaticKeys) *Verifier {
	return newVerifier(trusted, "", ServiceAudience, ServiceTTL, time.Now)
}

func newVerifier(keys KeySet, issuer, audience string, maxTTL time.Duration, now func() time.Time) *Verifier {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now() }),
		jwt.WithStrictDecoding(),
	}
	if issuer != "" {
		opts = append(opts, jwt.WithIssuer(issuer))
	}
	return &Verifier{keys: keys, issuer: issuer, maxTTL: maxTTL, now: now,
		parser: jwt.NewParser(opts...), validator: jwt.NewValidator(opts...),
		verified: verifiedCache{max: verifiedCacheSize}}
}

// invalid is the one error a client sees for any bad token: which check failed
// is logged, never told.
func invalid(cause error) *fault.Error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: "invalid-token", Msg: "the token is invalid or expired", Err: cause}
}

// Verify parses and checks raw, returning its claims.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c, _, err := v.verify(ctx, raw)
	return c, err
}

// verify checks raw and returns its claims and the id of the key that signed it.
func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, string, error) {
	if len(raw) == 0 || len(raw) > MaxTokenBytes {
		return nil, "", invalid(errors.New("token size"))
	}
	if e, ok := v.verified.get(raw); ok {
		// Same bytes, already verified: the signature holds. What can have
		// changed since is the time and the key set, so check both again.
		key, err := v.keys.PublicKey(ctx, e.kid)
		switch {
		case err != nil, !key.Equal(e.key):
			v.verified.remove(raw) // the key is gone or replaced: verify in full below
		default:
			if err := v.validator.Validate(e.claims); err != nil {
				return nil, "", invalid(err)
			}
			return copyClaims(e.claims), e.kid, nil
		}
	}
	var claims Claims
	var kid string
	var key ed25519.PublicKey
	_, err := v.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" || len(kid) > 128 {
			return nil, errors.New("missing kid")
		}
		k, err := v.keys.PublicKey(ctx, kid)
		key = k
		return k, err
	})
	if err != nil {
		if _, ok := errors.AsType[*keysUnavailable](err); ok {
			return nil, "", &fault.Error{Kind: fault.Unavailable, Code: "upstream-unavailable", Err: err,
				Msg: "tokens cannot be verified right now", RetryAfter: time.Second}
		}
		return nil, "", invalid(err)
	}
	if claims.Subject == "" {
		return nil, "", invalid(errors.New("missing sub"))
	}
	if claims.IssuedAt == nil {
		return nil, "", invalid(errors.New("missing iat"))
	}
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > v.maxTTL+Leeway {
		return nil, "", invalid(errors.New("lifetime too long"))
	}
	v.verified.put(raw, verifiedToken{claims: copyClaims(&claims), kid: kid, key: key})
	return &claims, kid, nil
}

// copyClaims returns a deep copy of c, so that what a caller does with the
// claims it was given cannot change those a remembered token is checked with.
func copyClaims(c *Claims) *Claims {
	out := *c
	out.Audience = slices.Clone(c.Audience)
	for _, d := range []**jwt.NumericDate{&out.ExpiresAt, &out.NotBefore, &out.IssuedAt} {
		if *d != nil {
			t := **d
			*d = &t
		}
	}
	return &out
}

// VerifyUser verifies an access token and returns the user it names.
func (v *Verifier) VerifyUser(ctx context.Context, raw string) (Principal, error) {
	c, err := v.Verify(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	if c.Role != RoleCustomer && c.Role != RoleAdmin {
		return Principal{}, invalid(fmt.Errorf("unknown role %q", c.Role))
	}
	return Principal{UserID: c.Subject, Role: c.Role, token: raw}, nil
}

// VerifyService verifies a service token and returns the service's name. The
// subject must match the key id: a service can only speak for itself.
func (v *Verifier) VerifyService(ctx context.Context, raw string) (string, error) {
	c, kid, err := v.verify(ctx, raw)
	if err != nil {
		return "", err
	}
	if kid != c.Subject {
		return "", invalid(errors.New("service subject does not match its key"))
	}
	return c.Subject, nil
}

// Sign signs claims with key under key id kid.
func Sign(kid string, key ed25519.PrivateKey, claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = kid
	return t.SignedString(key)
}

// BearerToken extracts the token of an "Authorization: Bearer <token>" value.
// ok is false when the header is absent; a present but malformed header gives
// a non-nil error.
func BearerToken(header string) (token string, ok bool, err error) {
	if header == "" {
		return "", false, nil
	}
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", true, invalid(errors.New("malformed Authorization header"))
	}
	return token, true, nil
}
