package users_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

// clock is a settable clock, safe for concurrent use. It starts at the real
// time so that access tokens it dates pass the verifier's checks.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a service over a migrated database, with its clock and hasher.
type env struct {
	db     *sqldb.DB
	store  *usersdb.Store
	clock  *clock
	hasher *users.Hasher
	svc    *users.Service
}

// replica returns another service over the same database and clock, as
// another process would be.
func (e *env) replica() *users.Service {
	return users.NewService(e.store, logging.Discard(), users.WithClock(e.clock.Now), users.WithHasher(users.NewHasher(cheap)))
}

func newEnv(db *sqldb.DB) *env {
	e := &env{db: db, store: usersdb.New(db), clock: newClock(), hasher: users.NewHasher(cheap)}
	e.svc = users.NewService(e.store, logging.Discard(), users.WithClock(e.clock.Now), users.WithHasher(e.hasher))
	return e
}

// forEach runs fn against SQLite and PostgreSQL.
func forEach(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEach(t, "users", usersdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		fn(t, newEnv(db))
	})
}

const password = "correct horse battery staple"

// register makes a customer who can log in with password.
func register(t *testing.T, svc *users.Service, email string) users.User {
	t.Helper()
	u, err := svc.Register(context.Background(), users.RegisterRequest{Email: email, Password: password, Name: "Test " + email})
	if err != nil {
		t.Fatalf("Register(%s): %v", email, err)
	}
	return u
}

func login(t *testing.T, svc *users.Service, email string) users.Tokens {
	t.Helper()
	tok, err := svc.Login(context.Background(), email, password)
	if err != nil {
		t.Fatalf("Login(%s): %v", email, err)
	}
	return tok
}
