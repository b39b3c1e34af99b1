package usersdb

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/users"
)

// Credentials returns the user with email and their password hash ("" when
// they have none), or a fault.NotFound error.
func (s *Store) Credentials(ctx context.Context, email string) (users.User, string, error) {
	row := s.db.QueryRowContext(ctx,
		`SELECT id, email, name, role, created_at, password_hash FROM users WHERE email = ?`, email)
	var u users.User
	var created time.Time
	var hash sql.NullString
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return users.User{}, "", fault.New(fault.NotFound, "user not found")
	}
	if err != nil {
		return users.User{}, "", fmt.Errorf("usersdb: get credentials: %w", err)
	}
	u.CreatedAt = created.UTC()
	return u, hash.String, nil
}

// SetPasswordHash replaces the password hash of the user with id.
func (s *Store) SetPasswordHash(ctx context.Context, id, passwordHash string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, nullString(passwordHash), id)
	if err != nil {
		return fmt.Errorf("usersdb: set password hash: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fault.New(fault.NotFound, "user not found")
	}
	return nil
}

// UpsertAdmin creates u as an admin with passwordHash, or makes the user with
// u.Email an admin with passwordHash, and revokes that account's refresh tokens,
// in one transaction.
func (s *Store) UpsertAdmin(ctx context.Context, u users.User, passwordHash string, now time.Time) (users.User, error) {
	var out users.User
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO users (id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, 'admin', ?, ?)
			 ON CONFLICT (email) DO UPDATE SET role = 'admin', password_hash = excluded.password_hash`,
			u.ID, u.Email, u.Name, passwordHash, u.CreatedAt); err != nil {
			return fmt.Errorf("usersdb: upsert admin: %w", err)
		}
		var err error
		out, err = scanUser(tx.QueryRowContext(ctx,
			`SELECT id, email, name, role, created_at FROM users WHERE email = ?`, u.Email))
		if err != nil {
			return fmt.Errorf("usersdb: read admin: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, now, out.ID); err != nil {
			return fmt.Errorf("usersdb: revoke admin sessions: %w", err)
		}
		return nil
	})
	return out, err
}

// CreateRefreshToken stores t.
func (s *Store) CreateRefreshToken(ctx context.Context, t users.RefreshToken) error {
	return insertRefreshToken(ctx, s.db, t)
}

func insertRefreshToken(ctx context.Context, q sqldb.Querier, t users.RefreshToken) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at, used_at, revoked_at, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.FamilyID, t.UserID, t.Hash, t.ExpiresAt, nullTime(t.UsedAt), nullTime(t.RevokedAt), t.CreatedAt)
	if err != nil {
		return fmt.Errorf("usersdb: insert refresh token: %w", err)
	}
	return nil
}

// RotateRefreshToken marks the token whose hash is hash used and stores next in
// its family, in one transaction (see users.Store).
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, next users.RefreshToken, now time.Time) (users.RefreshToken, error) {
	var cur users.RefreshToken
	reused := false
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var used, revoked sql.NullTime
		var expires, created time.Time
		err := tx.QueryRowContext(ctx,
			`SELECT id, family_id, user_id, token_hash, expires_at, used_at, revoked_at, created_at
			 FROM refresh_tokens WHERE token_hash = ?`, hash).
			Scan(&cur.ID, &cur.FamilyID, &cur.UserID, &cur.Hash, &expires, &used, &revoked, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return users.ErrTokenInvalid
		}
		if err != nil {
			return fmt.Errorf("usersdb: read refresh token: %w", err)
		}
		cur.ExpiresAt, cur.CreatedAt = expires.UTC(), created.UTC()
		cur.UsedAt, cur.RevokedAt = fromNull(used), fromNull(revoked)
		switch {
		case revoked.Valid:
			return users.ErrTokenInvalid
		case used.Valid:
			reused = true
		case !now.Before(cur.ExpiresAt):
			return users.ErrTokenInvalid
		default:
			res, err := tx.ExecContext(ctx,
				`UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL`, now, cur.ID)
			if err != nil {
				return fmt.Errorf("usersdb: use refresh token: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("usersdb: use refresh token: %w", err)
			}
			reused = n == 0 // another transaction used it first
		}
		if reused {
			return revokeFamily(ctx, tx, cur.FamilyID, now)
		}
		next.FamilyID, next.UserID = cur.FamilyID, cur.UserID
		return insertRefreshToken(ctx, tx, next)
	})
	if err == nil && reused {
		err = users.ErrTokenReused
	}
	return cur, err
}

func revokeFamily(ctx context.Context, q sqldb.Querier, family string, now time.Time) error {
	if _, err := q.ExecContext(ctx,
		`UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`, now, family); err != nil {
		return fmt.Errorf("usersdb: revoke refresh tokens: %w", err)
	}
	return nil
}

// RevokeRefreshFamily revokes the family of the token whose hash is hash.
func (s *Store) RevokeRefreshFamily(ctx context.Context, hash string, now time.Time) error {
	if _, err := s.db.ExecContext(ctx,
		`UPDATE refresh_tokens SET revoked_at = ?
		 WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ?)`,
		now, hash); err != nil {
		return fmt.Errorf("usersdb: revoke refresh tokens: %w", err)
	}
	return nil
}

// DeleteRefreshTokens deletes the tokens that expired before before. The
// comparison is made in SQL: on SQLite times are stored as text in a form
// ("2006-01-02 15:04:05.999999999 -0700 MST") whose order is chronological for
// the UTC times the service writes.
func (s *Store) DeleteRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at < ?`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("usersdb: delete expired refresh tokens: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("usersdb: delete expired refresh tokens: %w", err)
	}
	return n, nil
}

// SigningKeys returns every signing key, newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]users.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kid, private_key, created_at, retired_at FROM signing_keys`)
	if err != nil {
		return nil, fmt.Errorf("usersdb: list signing keys: %w", err)
	}
	defer rows.Close()
	var out []users.SigningKey
	for rows.Next() {
		var k users.SigningKey
		var seed string
		var created time.Time
		var retired sql.NullTime
		if err := rows.Scan(&k.ID, &seed, &created, &retired); err != nil {
			return nil, fmt.Errorf("usersdb: list signing keys: %w", err)
		}
		b, err := base64.RawURLEncoding.DecodeString(seed)
		if err != nil || len(b) != ed25519.SeedSize {
			return nil, fmt.Errorf("usersdb: signing key %s: bad private key", k.ID)
		}
		k.Key, k.CreatedAt, k.RetiredAt = ed25519.NewKeyFromSeed(b), created.UTC(), fromNull(retired)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usersdb: list signing keys: %w", err)
	}
	// Sorted here rather than in SQL, as SQLite keeps times as text: newest
	// first, the active key first among keys created at the same time.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case !a.CreatedAt.Equal(b.CreatedAt):
			return a.CreatedAt.After(b.CreatedAt)
		case a.Active() != b.Active():
			return a.Active()
		}
		return a.ID > b.ID
	})
	return out, nil
}

func insertKey(ctx context.Context, q sqldb.Querier, k users.SigningKey, orNothing bool) (sql.Result, error) {
	query := `INSERT INTO signing_keys (kid, private_key, created_at, retired_at) VALUES (?, ?, ?, NULL)`
	if orNothing {
		query += ` ON CONFLICT DO NOTHING`
	}
	return q.ExecContext(ctx, query, k.ID, base64.RawURLEncoding.EncodeToString(k.Key.Seed()), k.CreatedAt)
}

// AddSigningKey stores k unless an active key exists (the unique index on
// active keys settles concurrent calls).
func (s *Store) AddSigningKey(ctx context.Context, k users.SigningKey) (bool, error) {
	res, err := insertKey(ctx, s.db, k, true)
	if err != nil {
		return false, fmt.Errorf("usersdb: add signing key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("usersdb: add signing key: %w", err)
	}
	return n == 1, nil
}

// RotateSigningKey retires the active key, stores k as the active one and
// deletes the keys retired before purgeBefore, in one transaction. Rotations
// are serialized: SQLite transactions take the write lock when they begin, and
// on PostgreSQL the table is locked against other writers, so that each
// rotation sees the key the previous one added.
func (s *Store) RotateSigningKey(ctx context.Context, k users.SigningKey, purgeBefore time.Time) error {
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if s.db.Dialect == sqldb.Postgres {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`, k.CreatedAt); err != nil {
			return err
		}
		if _, err := insertKey(ctx, tx, k, false); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT kid, retired_at FROM signing_keys WHERE retired_at IS NOT NULL`)
		if err != nil {
			return err
		}
		var old []string
		for rows.Next() {
			var kid string
			var retired time.Time
			if err := rows.Scan(&kid, &retired); err != nil {
				rows.Close()
				return err
			}
			if retired.Before(purgeBefore) {
				old = append(old, kid)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, kid := range old {
			if _, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE kid = ?`, kid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("usersdb: rotate signing key: %w", err)
	}
	return nil
}
