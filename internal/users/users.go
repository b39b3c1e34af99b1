// Package users is the users service's domain: accounts, their validation and
// the rules about them. It knows nothing of HTTP or SQL.
package users

import (
	"context"
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

// Store keeps users. Implementations return a fault.NotFound error for an unknown
// id and a fault.Conflict error for a duplicate email.
type Store interface {
	CreateUser(ctx context.Context, u User) error
	User(ctx context.Context, id string) (User, error)
	// Users returns up to limit users with ids greater than after, in id order.
	Users(ctx context.Context, after string, limit int) ([]User, error)
}

// Service implements the users use cases.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service over store.
func NewService(store Store) *Service {
	return &Service{store: store, now: time.Now}
}

// Create validates in and stores a new customer. It returns a fault.Invalid error
// for bad input and a fault.Conflict error when the email is taken.
func (s *Service) Create(ctx context.Context, in NewUser) (User, error) {
	name, err := ValidName(in.Name)
	if err != nil {
		return User{}, err
	}
	email, err := ValidEmail(in.Email)
	if err != nil {
		return User{}, err
	}
	u := User{
		ID:        uuid.Must(uuid.NewV7()).String(),
		Name:      name,
		Email:     email,
		Role:      RoleCustomer,
		CreatedAt: s.now().UTC().Truncate(time.Microsecond),
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
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
