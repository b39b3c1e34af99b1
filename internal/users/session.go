package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
)

// RefreshTTL is how long a refresh token may be used. Each refresh replaces the
// token with a new one of the same family.
const RefreshTTL = 7 * 24 * time.Hour

// refreshTokenLen is the length of an encoded refresh token: 32 random bytes,
// base64url without padding.
const refreshTokenLen = 43

// Tokens are what a login or a refresh returns (RFC 6749 §5.1).
type Tokens struct {
	AccessToken  string `json:"access_token" doc:"JWT (EdDSA) to send as 'Authorization: Bearer <token>'."`
	TokenType    string `json:"token_type" enum:"Bearer"`
	ExpiresIn    int    `json:"expires_in" doc:"Seconds until the access token expires."`
	RefreshToken string `json:"refresh_token" doc:"Single-use token that obtains new tokens; keep it secret."`
}

// String hides the tokens, should Tokens ever be printed.
func (t Tokens) String() string { return "Tokens{redacted}" }

// LogValue hides the tokens, should Tokens ever be logged.
func (t Tokens) LogValue() slog.Value { return slog.StringValue("redacted") }

// RefreshToken is a stored refresh token: only the SHA-256 of the token itself
// is kept.
type RefreshToken struct {
	ID        string
	FamilyID  string // every token issued from one login
	UserID    string
	Hash      string // hex SHA-256 of the token
	ExpiresAt time.Time
	UsedAt    time.Time // zero until refreshed
	RevokedAt time.Time // zero unless revoked
	CreatedAt time.Time
}

// RegisterRequest is the input to Register.
type RegisterRequest struct {
	Email    string
	Password string
	Name     string
}

// String hides the password, should a RegisterRequest ever be printed.
func (r RegisterRequest) String() string {
	return fmt.Sprintf("RegisterRequest{Email:%q Name:%q Password:redacted}", r.Email, r.Name)
}

// LogValue hides the password, should a RegisterRequest ever be logged.
func (r RegisterRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("email", r.Email), slog.String("name", r.Name))
}

func invalidCredentials() error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: "invalid-credentials", Msg: "the email or password is wrong"}
}

func invalidToken(cause error) error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: "invalid-token", Msg: "the refresh token is invalid or expired", Err: cause}
}

// Register creates a customer account that can log in with password. A taken
// email is a fault.Conflict error with code "email-taken".
func (s *Service) Register(ctx context.Context, in RegisterRequest) (User, error) {
	u, err := s.newCustomer(in.Name, in.Email)
	if err != nil {
		return User{}, err
	}
	if err := ValidPassword(in.Password); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password) // last: it is the expensive step
	if err != nil {
		return User{}, err
	}
	if err := s.store.CreateUser(ctx, u, hash); err != nil {
		return User{}, err
	}
	s.log.InfoContext(ctx, "registered", "user_id", u.ID)
	return u, nil
}

// Login checks an email and password and returns new tokens. A wrong password,
// an unknown email and an account without a password are one and the same
// fault.Unauthenticated error (code "invalid-credentials"), and each costs
// exactly one password verification, so neither the answer nor its timing tells
// which emails have accounts. Repeated failures lock the account for a while
// (see MaxLoginFailures): a fault.RateLimited error with code
// "too-many-attempts" and a RetryAfter.
func (s *Service) Login(ctx context.Context, email, password string) (Tokens, error) {
	done, err := s.throttle.begin(throttleKeyOf(email), s.now())
	if err != nil {
		s.log.InfoContext(ctx, "login refused: too many failed attempts")
		return Tokens{}, err
	}
	u, ok, err := s.checkPassword(ctx, email, password)
	switch {
	case err != nil:
		done(attemptAbandoned, s.now())
		return Tokens{}, err
	case !ok:
		done(attemptFailed, s.now())
		// The user id only: the email might be a password typed in the wrong field.
		s.log.InfoContext(ctx, "login failed", "user_id", u.ID)
		return Tokens{}, invalidCredentials()
	}
	done(attemptSucceeded, s.now())
	tokens, err := s.issue(ctx, u, uuid.NewString())
	if err != nil {
		return Tokens{}, err
	}
	s.log.InfoContext(ctx, "logged in", "user_id", u.ID)
	return tokens, nil
}

// checkPassword reports whether password is that of the account with email,
// doing one verification whatever the case. u is the account when there is
// one. err is set only when nothing could be decided (the database or the
// deadline failed).
func (s *Service) checkPassword(ctx context.Context, email, password string) (u User, ok bool, err error) {
	hash := ""
	if addr, verr := ValidEmail(email); verr == nil && len(password) <= MaxPasswordBytes {
		u, hash, err = s.store.Credentials(ctx, addr)
		if err != nil && !fault.Is(err, fault.NotFound) {
			return User{}, false, err
		}
	}
	if hash != "" {
		ok, err = s.hasher.Verify(ctx, hash, password)
		if !errors.Is(err, ErrMalformedHash) {
			if err == nil && ok && s.hasher.NeedsRehash(hash) {
				s.rehash(ctx, u.ID, password)
			}
			return u, ok, err
		}
		s.log.ErrorContext(ctx, "stored password hash is unreadable", "user_id", u.ID, "err", err)
	}
	return u, false, s.hasher.verifyDummy(ctx, password)
}

// rehash replaces a hash made with older parameters. Failing is not fatal: the
// old hash still works.
func (s *Service) rehash(ctx context.Context, id, password string) {
	hash, err := s.hasher.Hash(ctx, password)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, id, hash)
	}
	if err != nil {
		s.log.WarnContext(ctx, "cannot update a password hash to the current parameters", "user_id", id, "err", err)
	}
}

// Refresh exchanges a refresh token for new tokens. The token is single-use:
// presenting it again (even concurrently) is taken as a sign of theft and
// revokes every token of its family, so the thief and the victim both have to
// log in again. Any failure is a fault.Unauthenticated error with code
// "invalid-token".
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	hash, ok := refreshHash(refreshToken)
	if !ok {
		return Tokens{}, invalidToken(errors.New("malformed"))
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	next, raw, err := newRefreshToken(now, "", "")
	if err != nil {
		return Tokens{}, err
	}
	old, err := s.store.RotateRefreshToken(ctx, hash, next, now)
	switch {
	case errors.Is(err, ErrTokenReused):
		s.log.WarnContext(ctx, "refresh token reused: its family is revoked", "user_id", old.UserID, "family_id", old.FamilyID)
		return Tokens{}, invalidToken(err)
	case errors.Is(err, ErrTokenInvalid):
		return Tokens{}, invalidToken(err)
	case err != nil:
		return Tokens{}, err
	}
	u, err := s.store.User(ctx, old.UserID) // the role may have changed since the login
	if fault.Is(err, fault.NotFound) {
		return Tokens{}, invalidToken(err)
	}
	if err != nil {
		return Tokens{}, err
	}
	access, err := s.accessToken(ctx, u, now)
	if err != nil {
		return Tokens{}, err
	}
	return tokens(access, raw), nil
}

// Logout revokes the family of refreshToken: it and every token issued from the
// same login. An unknown token is not an error.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	hash, ok := refreshHash(refreshToken)
	if !ok {
		return nil
	}
	return s.store.RevokeRefreshFamily(ctx, hash, s.now().UTC().Truncate(time.Microsecond))
}

// PurgeRefreshTokens deletes the refresh tokens that expired more than
// RefreshTTL ago (kept that long so that presenting one still revokes its
// family) and returns how many. Run it now and then (say, hourly) so the table
// does not grow without bound; any replica may.
func (s *Service) PurgeRefreshTokens(ctx context.Context) (int64, error) {
	return s.store.DeleteRefreshTokens(ctx, s.now().UTC().Truncate(time.Microsecond).Add(-RefreshTTL))
}

// EnsureAdmin makes the account with email an admin whose password is
// password, creating it if needed: the environment is the source of truth.
// When the password or role changes, every refresh token of the account is
// revoked.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) error {
	addr, err := ValidEmail(email)
	if err != nil {
		return fmt.Errorf("admin email: %w", err)
	}
	if err := ValidPassword(password); err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	u, hash, err := s.store.Credentials(ctx, addr)
	switch {
	case err == nil && u.Role == RoleAdmin && hash != "":
		if ok, verr := s.hasher.Verify(ctx, hash, password); verr == nil && ok {
			return nil // already as configured
		}
	case err != nil && !fault.Is(err, fault.NotFound):
		return err
	}
	hash, err = s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	u, err = s.store.UpsertAdmin(ctx, User{
		ID: uuid.Must(uuid.NewV7()).String(), Name: "Administrator", Email: addr, Role: RoleAdmin, CreatedAt: now,
	}, hash, now)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "admin account set from the configuration", "user_id", u.ID, "email", addr)
	return nil
}

// issue returns new tokens for u, starting a refresh token family.
func (s *Service) issue(ctx context.Context, u User, family string) (Tokens, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	access, err := s.accessToken(ctx, u, now)
	if err != nil {
		return Tokens{}, err
	}
	rt, raw, err := newRefreshToken(now, family, u.ID)
	if err != nil {
		return Tokens{}, err
	}
	if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
		return Tokens{}, err
	}
	return tokens(access, raw), nil
}

func tokens(access, refresh string) Tokens {
	return Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(auth.AccessTTL / time.Second), RefreshToken: refresh}
}

// accessToken signs an access token for u with the active key.
func (s *Service) accessToken(ctx context.Context, u User, now time.Time) (string, error) {
	k, err := s.activeKey(ctx)
	if err != nil {
		return "", err
	}
	return auth.Sign(k.ID, k.Key, auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    auth.Issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{auth.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(auth.AccessTTL)),
			ID:        rand.Text(),
		},
		Role: u.Role,
	})
}

// newRefreshToken returns a new token of family for user, created at now, and
// its encoded value (given to the client, never stored).
func newRefreshToken(now time.Time, family, user string) (RefreshToken, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return RefreshToken{}, "", err
	}
	raw := base64.RawURLEncoding.EncodeToString(b[:])
	hash, _ := refreshHash(raw)
	return RefreshToken{
		ID: uuid.NewString(), FamilyID: family, UserID: user, Hash: hash,
		ExpiresAt: now.Add(RefreshTTL), CreatedAt: now,
	}, raw, nil
}

// refreshHash returns the stored form of a refresh token, or false if token
// cannot be one (so that garbage never reaches the store).
func refreshHash(token string) (string, bool) {
	if len(token) != refreshTokenLen {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != 32 {
		return "", false
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:]), true
}
