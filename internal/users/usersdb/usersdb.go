// Package usersdb stores users, their credentials, refresh tokens and the
// signing keys of access tokens in SQL (SQLite or PostgreSQL).
package usersdb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/users"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the users service's migrations, one directory per dialect.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Store implements users.Store.
type Store struct{ db *sqldb.DB }

// New returns a Store over db, which must be migrated.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

var _ users.Store = (*Store)(nil)

func emailTaken() error {
	return fault.New(fault.Conflict, "a user with this email already exists").WithCode("email-taken")
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// CreateUser inserts u with passwordHash ("" stores NULL: no login). A taken
// email is a fault.Conflict error.
func (s *Store) CreateUser(ctx context.Context, u users.User, passwordHash string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO users (id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, u.Role, nullString(passwordHash), u.CreatedAt)
	if sqldb.IsUniqueViolation(err) {
		return emailTaken()
	}
	if err != nil {
		return fmt.Errorf("usersdb: insert user: %w", err)
	}
	return nil
}

// User returns the user with id, or a fault.NotFound error.
func (s *Store) User(ctx context.Context, id string) (users.User, error) {
	row := s.db.QueryRowContext(ctx, `SELECT id, email, name, role, created_at FROM users WHERE id = ?`, id)
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return users.User{}, fault.New(fault.NotFound, "user not found")
	}
	if err != nil {
		return users.User{}, fmt.Errorf("usersdb: get user: %w", err)
	}
	return u, nil
}

// Users returns up to limit users with ids after after, in id order (ids are
// UUIDv7, so this is creation order).
func (s *Store) Users(ctx context.Context, after string, limit int) ([]users.User, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, email, name, role, created_at FROM users WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("usersdb: list users: %w", err)
	}
	defer rows.Close()
	var out []users.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("usersdb: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func scanUser(row interface{ Scan(...any) error }) (users.User, error) {
	var u users.User
	var created time.Time
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &created); err != nil {
		return users.User{}, err
	}
	u.CreatedAt = created.UTC()
	return u, nil
}
