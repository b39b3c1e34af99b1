package usersdb_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

func newUser(email string) users.User {
	return users.User{ID: uuid.Must(uuid.NewV7()).String(), Name: "N", Email: email, Role: users.RoleCustomer, CreatedAt: t0}
}

func token(user, family, hash string, at time.Time) users.RefreshToken {
	return users.RefreshToken{ID: uuid.NewString(), FamilyID: family, UserID: user, Hash: hash,
		ExpiresAt: at.Add(users.RefreshTTL), CreatedAt: at}
}

// TestCredentialsStore checks password hashes and the admin upsert.
func TestCredentialsStore(t *testing.T) {
	sqldbtest.ForEach(t, "users", usersdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := usersdb.New(db)
		ada, nopw := newUser("ada@example.com"), newUser("nopw@example.com")
		if err := s.CreateUser(ctx, ada, "$argon2id$hash"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUser(ctx, nopw, ""); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			email    string
			wantUser users.User
			wantHash string
			wantKind fault.Kind
		}{
			{"ada@example.com", ada, "$argon2id$hash", 0},
			{"nopw@example.com", nopw, "", 0},
			{"nobody@example.com", users.User{}, "", fault.NotFound},
		}
		for _, tt := range tests {
			u, hash, err := s.Credentials(ctx, tt.email)
			if u != tt.wantUser || hash != tt.wantHash || (err != nil) != (tt.wantKind != 0) || (err != nil && fault.KindOf(err) != tt.wantKind) {
				t.Errorf("Credentials(%s) = %+v, %q, %v; want %+v, %q, kind %v", tt.email, u, hash, err, tt.wantUser, tt.wantHash, tt.wantKind)
			}
		}
		if err := s.SetPasswordHash(ctx, nopw.ID, "$argon2id$new"); err != nil {
			t.Fatal(err)
		}
		if _, hash, _ := s.Credentials(ctx, "nopw@example.com"); hash != "$argon2id$new" {
			t.Errorf("hash after SetPasswordHash = %q", hash)
		}
		if err := s.SetPasswordHash(ctx, uuid.NewString(), "x"); fault.KindOf(err) != fault.NotFound {
			t.Errorf("SetPasswordHash(unknown) = %v, want not found", err)
		}

		// Upsert: an existing account keeps its id and name, becomes admin with
		// the new hash, and loses its sessions; a new one is created.
		if err := s.CreateRefreshToken(ctx, token(ada.ID, "fam", "h1", t0)); err != nil {
			t.Fatal(err)
		}
		got, err := s.UpsertAdmin(ctx, users.User{ID: uuid.NewString(), Name: "Administrator", Email: "ada@example.com", CreatedAt: t0}, "$argon2id$admin", t0)
		if err != nil {
			t.Fatal(err)
		}
		want := ada
		want.Role = users.RoleAdmin
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpsertAdmin(existing) (-want +got):\n%s", diff)
		}
		if _, hash, _ := s.Credentials(ctx, "ada@example.com"); hash != "$argon2id$admin" {
			t.Errorf("hash after UpsertAdmin = %q", hash)
		}
		if _, err := s.RotateRefreshToken(ctx, "h1", token("", "", "h2", t0), t0); !errors.Is(err, users.ErrTokenInvalid) {
			t.Errorf("session after UpsertAdmin = %v, want ErrTokenInvalid", err)
		}
		fresh := users.User{ID: uuid.Must(uuid.NewV7()).String(), Name: "Administrator", Email: "root@example.com", Role: users.RoleAdmin, CreatedAt: t0}
		if got, err := s.UpsertAdmin(ctx, fresh, "$argon2id$root", t0); err != nil || got != fresh {
			t.Errorf("UpsertAdmin(new) = %+v, %v; want %+v", got, err, fresh)
		}
	})
}

// TestRefreshTokenStore checks the outcomes of RotateRefreshToken.
func TestRefreshTokenStore(t *testing.T) {
	sqldbtest.ForEach(t, "users", usersdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := usersdb.New(db)
		ada := newUser("ada@example.com")
		if err := s.CreateUser(ctx, ada, ""); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []users.RefreshToken{
			token(ada.ID, "f1", "live", t0),
			token(ada.ID, "f2", "expired", t0.Add(-users.RefreshTTL)),
			token(ada.ID, "f3", "revoked", t0),
		} {
			if err := s.CreateRefreshToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeRefreshFamily(ctx, "revoked", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeRefreshFamily(ctx, "unknown", t0); err != nil {
			t.Errorf("RevokeRefreshFamily(unknown) = %v", err)
		}
		tests := []struct {
			name string
			hash string
			next string
			want error
		}{
			{"unknown", "unknown", "n1", users.ErrTokenInvalid},
			{"expired", "expired", "n2", users.ErrTokenInvalid},
			{"revoked", "revoked", "n3", users.ErrTokenInvalid},
			{"live", "live", "live2", nil},
			{"live again: reuse", "live", "n4", users.ErrTokenReused},
			{"its successor: revoked with the family", "live2", "n5", users.ErrTokenInvalid},
		}
		for _, tt := range tests {
			cur, err := s.RotateRefreshToken(ctx, tt.hash, token("", "", tt.next, t0), t0.Add(time.Minute))
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			}
			if tt.want == nil && (cur.FamilyID != "f1" || cur.UserID != ada.ID || cur.Hash != "live" || !cur.UsedAt.IsZero()) {
				t.Errorf("%s: presented token = %+v", tt.name, cur)
			}
		}
		// The failed rotations stored nothing: their "next" tokens are unknown.
		for _, h := range []string{"n1", "n2", "n3", "n4", "n5"} {
			if _, err := s.RotateRefreshToken(ctx, h, token("", "", "x"+h, t0), t0); !errors.Is(err, users.ErrTokenInvalid) {
				t.Errorf("token %s was stored by a failed rotation: %v", h, err)
			}
		}
		// Deleting the user deletes their tokens (ON DELETE CASCADE).
		if _, err := db.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, ada.ID); err != nil {
			t.Fatalf("delete a user with refresh tokens: %v", err)
		}
	})
}

func TestSigningKeyStore(t *testing.T) {
	sqldbtest.ForEach(t, "users", usersdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := usersdb.New(db)
		key := func(at time.Time) users.SigningKey {
			pub, priv, _ := ed25519.GenerateKey(nil)
			return users.SigningKey{ID: users.Thumbprint(pub), Key: priv, CreatedAt: at}
		}
		k1, k2 := key(t0), key(t0.Add(time.Second))
		if added, err := s.AddSigningKey(ctx, k1); !added || err != nil {
			t.Fatalf("AddSigningKey(first) = %v, %v", added, err)
		}
		if added, err := s.AddSigningKey(ctx, k2); added || err != nil {
			t.Errorf("AddSigningKey(with an active key) = %v, %v; want false, nil", added, err)
		}
		got, err := s.SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]users.SigningKey{k1}, got); diff != "" {
			t.Errorf("SigningKeys() (-want +got):\n%s", diff)
		}
		if err := s.RotateSigningKey(ctx, k2, t0.Add(-users.KeyRetention)); err != nil {
			t.Fatal(err)
		}
		k3 := key(t0.Add(users.KeyRetention + 2*time.Second))
		if err := s.RotateSigningKey(ctx, k3, k3.CreatedAt.Add(-users.KeyRetention)); err != nil {
			t.Fatal(err)
		}
		retired := k2
		retired.RetiredAt = k3.CreatedAt
		got, err = s.SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// k1 was retired more than KeyRetention before k3: deleted.
		if diff := cmp.Diff([]users.SigningKey{k3, retired}, got); diff != "" {
			t.Errorf("SigningKeys() after two rotations (-want +got):\n%s", diff)
		}
	})
}

func TestDeleteRefreshTokens(t *testing.T) {
	sqldbtest.ForEach(t, "users", usersdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := usersdb.New(db)
		ada := newUser("ada@example.com")
		if err := s.CreateUser(ctx, ada, ""); err != nil {
			t.Fatal(err)
		}
		// Expiries around the cut-off, to the microsecond and across whole
		// seconds (SQLite compares them as text).
		cut := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
		expiries := map[string]time.Time{
			"long before":          cut.Add(-48 * time.Hour),
			"a microsecond before": cut.Add(-time.Microsecond),
			"half a second before": cut.Add(-500 * time.Millisecond),
			"at the cut":           cut,
			"a microsecond after":  cut.Add(time.Microsecond),
			"a second after":       cut.Add(time.Second),
			"next year":            cut.AddDate(1, 0, 0),
		}
		for name, exp := range expiries {
			tok := token(ada.ID, "f-"+name, name, exp.Add(-users.RefreshTTL))
			tok.ExpiresAt = exp
			if err := s.CreateRefreshToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.DeleteRefreshTokens(ctx, cut)
		if err != nil || n != 3 {
			t.Errorf("DeleteRefreshTokens() = %d, %v; want 3", n, err)
		}
		var left []string
		for name := range expiries {
			// Rotating at a time before every expiry tells whether the token is still there.
			_, err := s.RotateRefreshToken(ctx, name, token("", "", "next-"+name, cut), cut.Add(-72*time.Hour))
			if err == nil {
				left = append(left, name)
			}
		}
		want := []string{"a microsecond after", "a second after", "at the cut", "next year"}
		if diff := cmp.Diff(want, left, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("tokens left (-want +got):\n%s", diff)
		}
	})
}
