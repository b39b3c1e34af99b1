// Package users is the users service's domain: accounts, their validation and
// the rules about them. It knows nothing of HTTP or SQL.
package users

import (
	"context"
	"errors"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
)

// Roles a user can have.
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
)

// Limits on user fields.
const (
	MaxNameLen  = 100
	MaxEmailLen = 254
)

// User is an account.
type User struct {
	ID        string    `json:"id" doc:"User id (UUID)."`
	Name      string    `json:"name"`
	Email     string    `json:"email" format:"email"`
	Role      string    `json:"role" enum:"customer,admin"`
	CreatedAt time.Time `json:"created_at"`
}

// NewUser is the input to Create.
type NewUser struct {
	Name  string
	Email string
}

// Store keeps users, their credentials, refresh tokens and signing keys.
// Implementations return a fault.NotFound error for an unknown id or email and
// a fault.Conflict error (code "email-taken") for a duplicate email. Times are
// UTC and passed in by the Service (its clock), never read from the database's.
type Store interface {
	// CreateUser stores u with passwordHash ("" for an account that cannot log in).
	CreateUser(ctx context.Context, u User, passwordHash string) error
	User(ctx context.Context, id string) (User, error)
	// Users returns up to limit users with ids greater than after, in id order.
	Users(ctx context.Context, after string, limit int) ([]User, error)
	// Credentials returns the user with email and their password hash ("" if
	// they have none).
	Credentials(ctx context.Context, email string) (User, string, error)
	// SetPasswordHash replaces the password hash of the user with id.
	SetPasswordHash(ctx context.Context, id, passwordHash string) error
	// UpsertAdmin, in one transaction, creates u (an admin) with passwordHash or,
	// when a user has u.Email, makes that user an admin with passwordHash; then
	// it revokes (at now) every refresh token of the account, so no session
	// opened before survives the change. It returns the stored user.
	UpsertAdmin(ctx context.Context, u User, passwordHash string, now time.Time) (User, error)

	// CreateRefreshToken stores t.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken, in one transaction, finds the token whose hash is
	// hash and, if it is neither revoked, used nor expired at now, marks it used
	// (conditionally: only if it still is unused, so that of two concurrent
	// rotations one wins) and stores next in its family, for its user. It
	// returns the presented token (with next's FamilyID and UserID being its
	// own). An unknown, revoked or expired token is an ErrTokenInvalid error; a
	// used one (or one used concurrently) revokes its whole family, which is
	// committed, and is an ErrTokenReused error.
	RotateRefreshToken(ctx context.Context, hash string, next RefreshToken, now time.Time) (RefreshToken, error)
	// RevokeRefreshFamily revokes, at now, every token of the family of the token
	// whose hash is hash. An unknown hash is not an error.
	RevokeRefreshFamily(ctx context.Context, hash string, now time.Time) error
	// DeleteRefreshTokens deletes the tokens that expired before before and
	// returns how many.
	DeleteRefreshTokens(ctx context.Context, before time.Time) (int64, error)

	// SigningKeys returns every stored signing key, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// AddSigningKey stores k, which must be active, unless an active key exists
	// already (even one added concurrently); it reports whether k was stored.
	AddSigningKey(ctx context.Context, k SigningKey) (bool, error)
	// RotateSigningKey, in one transaction, retires the active key at k.CreatedAt,
	// stores k as the active one and deletes the keys retired before purgeBefore.
	RotateSigningKey(ctx context.Context, k SigningKey, purgeBefore time.Time) error
}

// Errors a Store returns about refresh tokens.
var (
	ErrTokenInvalid = errors.New("users: refresh token unknown, expired or revoked")
	ErrTokenReused  = errors.New("users: refresh token used twice; its family is revoked")
)

// Service implements the users use cases. It is safe for concurrent use.
type Service struct {
	store    Store
	log      *slog.Logger
	hasher   *Hasher
	now      func() time.Time
	throttle *throttle
	keys     keyCache
}

// An Option changes how a Service works, mostly for tests.
type Option func(*Service)

// WithHasher makes the service hash and verify passwords with h (tests use
// cheap parameters, and count verifications).
func WithHasher(h *Hasher) Option { return func(s *Service) { s.hasher = h } }

// WithClock makes the service read the time from now.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// NewService returns a Service over store that logs to log. Without
// WithHasher, passwords are hashed with DefaultParams.
func NewService(store Store, log *slog.Logger, opts ...Option) *Service {
	s := &Service{store: store, log: log, now: time.Now, throttle: newThrottle(maxThrottled)}
	for _, o := range opts {
		o(s)
	}
	if s.hasher == nil {
		s.hasher = NewHasher(DefaultParams)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Create validates in and stores a new customer, who has no password and so
// cannot log in (an admin creates such accounts). It returns a fault.Invalid error
// for bad input and a fault.Conflict error when the email is taken.
func (s *Service) Create(ctx context.Context, in NewUser) (User, error) {
	u, err := s.newCustomer(in.Name, in.Email)
	if err != nil {
		return User{}, err
	}
	if err := s.store.CreateUser(ctx, u, ""); err != nil {
		return User{}, err
	}
	return u, nil
}

// newCustomer validates a name and an email and returns the customer they make,
// not stored yet. Bad input is a fault.Invalid error.
func (s *Service) newCustomer(name, email string) (User, error) {
	name, err := ValidName(name)
	if err != nil {
		return User{}, err
	}
	email, err = ValidEmail(email)
	if err != nil {
		return User{}, err
	}
	return User{
		ID:        uuid.Must(uuid.NewV7()).String(),
		Name:      name,
		Email:     email,
		Role:      RoleCustomer,
		CreatedAt: s.now().UTC().Truncate(time.Microsecond),
	}, nil
}

// User returns the user with the given id, or a fault.NotFound error.
func (s *Service) User(ctx context.Context, id string) (User, error) {
	if !ValidID(id) {
		return User{}, fault.New(fault.NotFound, "user not found")
	}
	return s.store.User(ctx, id)
}

// List returns one page of users in creation order.
func (s *Service) List(ctx context.Context, cursor string, limit int) (page.Page[User], error) {
	after, err := page.Decode(cursor)
	if err != nil {
		return page.Page[User]{}, err
	}
	limit = page.Limit(limit)
	rows, err := s.store.Users(ctx, after, limit+1)
	if err != nil {
		return page.Page[User]{}, err
	}
	return page.Of(rows, limit, func(u User) string { return u.ID }), nil
}

// ValidID reports whether id has the shape of a user id, so that garbage never
// reaches the store.
func ValidID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// ValidName trims name and checks its length.
func ValidName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxNameLen || !utf8.ValidString(name) {
		return "", fault.Invalidf("body.name", "name must be 1 to %d characters", MaxNameLen)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fault.Invalidf("body.name", "name must not contain control characters")
		}
	}
	return name, nil
}

// ValidEmail checks that email is a plain address (no display name) and returns
// it in lower case, the form in which uniqueness is enforced.
func ValidEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if len(email) == 0 || len(email) > MaxEmailLen {
		return "", fault.Invalidf("body.email", "email must be 1 to %d characters", MaxEmailLen)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", fault.Invalidf("body.email", "email must be a valid address such as ada@example.com")
	}
	return strings.ToLower(email), nil
}
