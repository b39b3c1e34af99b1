package users_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/users"
)

// errView is what a client can see of an error.
type errView struct {
	Kind       fault.Kind
	Code       string
	Msg        string
	RetryAfter bool
}

func view(err error) errView {
	var fe *fault.Error
	if !errors.As(err, &fe) {
		return errView{Kind: fault.KindOf(err), Msg: "not a fault: " + errString(err)}
	}
	return errView{Kind: fe.Kind, Code: fe.Code, Msg: fe.Msg, RetryAfter: fe.RetryAfter > 0}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

var (
	invalidCredentials = errView{Kind: fault.Unauthenticated, Code: "invalid-credentials", Msg: "the email or password is wrong"}
	invalidToken       = errView{Kind: fault.Unauthenticated, Code: "invalid-token", Msg: "the refresh token is invalid or expired"}
	tooManyAttempts    = errView{Kind: fault.RateLimited, Code: "too-many-attempts", Msg: "too many failed login attempts; try again later", RetryAfter: true}
)

func TestRegister(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u := register(t, e.svc, "Ada@Example.com")
		if u.Email != "ada@example.com" || u.Role != users.RoleCustomer || !users.ValidID(u.ID) {
			t.Errorf("Register() = %+v", u)
		}
		got, err := e.svc.User(ctx, u.ID)
		if err != nil || got != u {
			t.Errorf("User() = %+v, %v; want %+v", got, err, u)
		}
		_, hash, err := e.store.Credentials(ctx, "ada@example.com")
		if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$") || strings.Contains(hash, password) {
			t.Errorf("stored hash = %q, %v", hash, err)
		}
		tests := []struct {
			name string
			in   users.RegisterRequest
			want errView
		}{
			{"taken email", users.RegisterRequest{Email: "ADA@example.com", Password: password, Name: "Other"},
				errView{Kind: fault.Conflict, Code: "email-taken", Msg: "a user with this email already exists"}},
			{"short password", users.RegisterRequest{Email: "b@example.com", Password: "too short", Name: "B"},
				errView{Kind: fault.Invalid, Msg: "password must be 12 to 128 characters (at most 256 bytes)"}},
			{"long password", users.RegisterRequest{Email: "b@example.com", Password: strings.Repeat("x", 129), Name: "B"},
				errView{Kind: fault.Invalid, Msg: "password must be 12 to 128 characters (at most 256 bytes)"}},
			{"bad email", users.RegisterRequest{Email: "b", Password: password, Name: "B"},
				errView{Kind: fault.Invalid, Msg: "email must be a valid address such as ada@example.com"}},
			{"blank name", users.RegisterRequest{Email: "b@example.com", Password: password, Name: " "},
				errView{Kind: fault.Invalid, Msg: "name must be 1 to 100 characters"}},
		}
		for _, tt := range tests {
			_, err := e.svc.Register(ctx, tt.in)
			if diff := cmp.Diff(tt.want, view(err)); diff != "" {
				t.Errorf("%s: error (-want +got):\n%s", tt.name, diff)
			}
		}
		if page, _ := e.svc.List(ctx, "", 10); len(page.Items) != 1 {
			t.Errorf("%d users after the failed registrations, want 1", len(page.Items))
		}
	})
}

func TestLogin(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ada := register(t, e.svc, "ada@example.com")
		if err := e.svc.EnsureAdmin(ctx, "root@example.com", "an admin password"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.EnsureSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		verifier := auth.NewUserVerifier(e.svc.KeySet())
		set, err := e.svc.JWKS(ctx)
		if err != nil || len(set.Keys) != 1 {
			t.Fatalf("JWKS() = %+v, %v; want one key", set, err)
		}
		tests := []struct {
			email, password string
			wantRole        string
			wantID          string
		}{
			{"ada@example.com", password, auth.RoleCustomer, ada.ID},
			{"  ADA@example.com ", password, auth.RoleCustomer, ada.ID},
			{"root@example.com", "an admin password", auth.RoleAdmin, ""},
		}
		for _, tt := range tests {
			before := e.hasher.Verifications()
			tok, err := e.svc.Login(ctx, tt.email, tt.password)
			if err != nil {
				t.Fatalf("Login(%q): %v", tt.email, err)
			}
			if n := e.hasher.Verifications() - before; n != 1 {
				t.Errorf("Login(%q) did %d verifications, want 1", tt.email, n)
			}
			if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 || len(tok.RefreshToken) != 43 {
				t.Errorf("Login(%q) = type %q, expires in %d, refresh token of %d bytes", tt.email, tok.TokenType, tok.ExpiresIn, len(tok.RefreshToken))
			}
			p, err := verifier.VerifyUser(ctx, tok.AccessToken)
			if err != nil {
				t.Fatalf("VerifyUser(access token of %q): %v", tt.email, err)
			}
			if p.Role != tt.wantRole || (tt.wantID != "" && p.UserID != tt.wantID) {
				t.Errorf("principal = %+v, want user %s role %s", p, tt.wantID, tt.wantRole)
			}
			// The claims and header, as issued.
			var c auth.Claims
			parsed, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, &c)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Header["alg"] != "EdDSA" || parsed.Header["kid"] != set.Keys[0].Kid {
				t.Errorf("header = %v, want EdDSA with kid %s", parsed.Header, set.Keys[0].Kid)
			}
			if c.Issuer != auth.Issuer || !cmp.Equal(c.Audience, jwt.ClaimStrings{auth.Audience}) || c.ID == "" ||
				c.IssuedAt == nil || c.NotBefore == nil || c.ExpiresAt == nil ||
				!c.NotBefore.Equal(c.IssuedAt.Time) || c.ExpiresAt.Sub(c.IssuedAt.Time) != auth.AccessTTL {
				t.Errorf("claims = %+v", c)
			}
		}
		// Two logins: two distinct token ids and refresh tokens.
		a, b := login(t, e.svc, "ada@example.com"), login(t, e.svc, "ada@example.com")
		if a.AccessToken == b.AccessToken || a.RefreshToken == b.RefreshToken {
			t.Errorf("two logins gave the same tokens")
		}
		if s := a.String(); strings.Contains(s, a.RefreshToken) || strings.Contains(s, a.AccessToken) {
			t.Errorf("Tokens.String() shows the tokens: %s", s)
		}
	})
}

// TestLoginFailuresAreIndistinguishable: every failure is the same error and
// costs exactly one password verification.
func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		if _, err := e.svc.Create(ctx, users.NewUser{Name: "No Password", Email: "nopw@example.com"}); err != nil {
			t.Fatal(err)
		}
		tests := []struct{ name, email, password string }{
			{"wrong password", "ada@example.com", "not the password"},
			{"unknown email", "nobody@example.com", password},
			{"account without a password", "nopw@example.com", password},
			{"account without a password, empty password", "nopw@example.com", ""},
			{"malformed email", "not an email", password},
			{"empty email", "", ""},
			{"email with a NUL", "ada\x00@example.com", password},
			{"overlong password", "ada@example.com", strings.Repeat("x", 1000)},
		}
		for _, tt := range tests {
			before := e.hasher.Verifications()
			_, err := e.svc.Login(ctx, tt.email, tt.password)
			if diff := cmp.Diff(invalidCredentials, view(err)); diff != "" {
				t.Errorf("%s: error (-want +got):\n%s", tt.name, diff)
			}
			if n := e.hasher.Verifications() - before; n != 1 {
				t.Errorf("%s: %d verifications, want exactly 1", tt.name, n)
			}
		}
	})
}

func TestLoginThrottle(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		for _, email := range []string{"ada@example.com", "nobody@example.com"} { // known or not, the same
			for i := range users.MaxLoginFailures {
				if _, err := e.svc.Login(ctx, email, "wrong password"); view(err) != invalidCredentials {
					t.Fatalf("%s: failure %d: %v", email, i+1, err)
				}
				e.clock.Advance(time.Second)
			}
			before := e.hasher.Verifications()
			_, err := e.svc.Login(ctx, email, password) // even the right password
			if diff := cmp.Diff(tooManyAttempts, view(err)); diff != "" {
				t.Errorf("%s: locked login (-want +got):\n%s", email, diff)
			}
			var fe *fault.Error
			if errors.As(err, &fe) && (fe.RetryAfter <= 0 || fe.RetryAfter > users.MaxLockout) {
				t.Errorf("%s: RetryAfter = %v", email, fe.RetryAfter)
			}
			if n := e.hasher.Verifications() - before; n != 0 {
				t.Errorf("%s: a locked login verified %d passwords", email, n)
			}
		}
		// The lock ends; a success resets the count.
		e.clock.Advance(users.LoginWindow)
		login(t, e.svc, "ada@example.com")
		for i := range 2 * (users.MaxLoginFailures - 1) {
			if _, err := e.svc.Login(ctx, "ada@example.com", "wrong password"); view(err) != invalidCredentials {
				t.Fatalf("failure %d after the reset: %v", i+1, err)
			}
			if i == users.MaxLoginFailures-2 {
				login(t, e.svc, "ada@example.com")
			}
		}
		login(t, e.svc, "ada@example.com")
	})
}

// TestLoginConcurrentGuesses: a burst of parallel guesses gets no more
// verifications than the failures allowed.
func TestLoginConcurrentGuesses(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]int{}
		for range 20 {
			wg.Go(func() {
				_, err := e.svc.Login(ctx, "ada@example.com", "wrong password")
				mu.Lock()
				got[view(err).Code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if got["invalid-credentials"] > users.MaxLoginFailures || got["invalid-credentials"]+got["too-many-attempts"] != 20 {
			t.Errorf("outcomes = %v, want at most %d invalid-credentials, the rest too-many-attempts", got, users.MaxLoginFailures)
		}
		if n := e.hasher.Verifications(); n > users.MaxLoginFailures {
			t.Errorf("%d verifications, want at most %d", n, users.MaxLoginFailures)
		}
	})
}

func TestLoginRehashesOldParameters(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com") // hashed with cheap
		stronger := users.NewHasher(users.Params{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32})
		svc := users.NewService(e.store, nil, users.WithClock(e.clock.Now), users.WithHasher(stronger))
		login(t, svc, "ada@example.com")
		_, hash, err := e.store.Credentials(ctx, "ada@example.com")
		if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=128,t=2,p=1$") {
			t.Errorf("hash after login = %q, %v; want the new parameters", hash, err)
		}
		login(t, svc, "ada@example.com")
	})
}

func TestRefreshRotation(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ada := register(t, e.svc, "ada@example.com")
		verifier := auth.NewUserVerifier(e.svc.KeySet())
		tok := login(t, e.svc, "ada@example.com")
		seen := map[string]bool{tok.RefreshToken: true}
		for i := range 3 {
			e.clock.Advance(time.Second) // within the verifier's leeway for the real clock
			next, err := e.svc.Refresh(ctx, tok.RefreshToken)
			if err != nil {
				t.Fatalf("refresh %d: %v", i+1, err)
			}
			if seen[next.RefreshToken] || next.TokenType != "Bearer" || next.ExpiresIn != 900 {
				t.Errorf("refresh %d = %+v", i+1, next)
			}
			seen[next.RefreshToken] = true
			if p, err := verifier.VerifyUser(ctx, next.AccessToken); err != nil || p.UserID != ada.ID || p.Role != auth.RoleCustomer {
				t.Errorf("refresh %d: access token principal = %+v, %v", i+1, p, err)
			}
			tok = next
		}
	})
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		other := login(t, e.svc, "ada@example.com") // another session (family)
		first := login(t, e.svc, "ada@example.com")
		second, err := e.svc.Refresh(ctx, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name  string
			token string
			want  errView
		}{
			{"the used token again", first.RefreshToken, invalidToken},
			{"the newest token of the family", second.RefreshToken, invalidToken},
			{"the used token a third time", first.RefreshToken, invalidToken},
		}
		for _, s := range steps {
			_, err := e.svc.Refresh(ctx, s.token)
			if diff := cmp.Diff(s.want, view(err)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", s.name, diff)
			}
		}
		if _, err := e.svc.Refresh(ctx, other.RefreshToken); err != nil {
			t.Errorf("another session was revoked too: %v", err)
		}
	})
}

func TestRefreshConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		for round := range 5 {
			tok := login(t, e.svc, "ada@example.com")
			const n = 4
			results := make([]error, n)
			var winner users.Tokens
			var wg sync.WaitGroup
			var start sync.WaitGroup
			start.Add(1)
			for i := range n {
				wg.Go(func() {
					start.Wait()
					got, err := e.svc.Refresh(ctx, tok.RefreshToken)
					results[i] = err
					if err == nil {
						winner = got
					}
				})
			}
			start.Done()
			wg.Wait()
			ok := 0
			for _, err := range results {
				switch {
				case err == nil:
					ok++
				case view(err) != invalidToken:
					t.Errorf("round %d: loser's error = %v, want invalid-token", round, err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d of %d concurrent refreshes succeeded, want exactly 1", round, ok, n)
			}
			// The losers presented a used token: the family is revoked, the
			// winner's new token with it.
			if _, err := e.svc.Refresh(ctx, winner.RefreshToken); view(err) != invalidToken {
				t.Errorf("round %d: the winner's token after reuse = %v, want invalid-token", round, err)
			}
		}
	})
}

func TestLogout(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		a := login(t, e.svc, "ada@example.com")
		b := login(t, e.svc, "ada@example.com")
		a2, err := e.svc.Refresh(ctx, a.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		// Logging out with an older token of the family revokes the newest too.
		if err := e.svc.Logout(ctx, a.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Refresh(ctx, a2.RefreshToken); view(err) != invalidToken {
			t.Errorf("refresh after logout = %v, want invalid-token", err)
		}
		if _, err := e.svc.Refresh(ctx, b.RefreshToken); err != nil {
			t.Errorf("the other session after logout: %v", err)
		}
		for _, tok := range []string{"", "garbage", strings.Repeat("A", 43), a.RefreshToken, strings.Repeat("é", 43)} {
			if err := e.svc.Logout(ctx, tok); err != nil {
				t.Errorf("Logout(%q) = %v, want nil", tok, err)
			}
		}
	})
}

func TestRefreshRejects(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		tok := login(t, e.svc, "ada@example.com")
		e.clock.Advance(users.RefreshTTL - time.Minute)
		fresh, err := e.svc.Refresh(ctx, tok.RefreshToken) // just in time: a new token, good for RefreshTTL
		if err != nil {
			t.Fatalf("refresh before expiry: %v", err)
		}
		stale := login(t, e.svc, "ada@example.com")
		e.clock.Advance(users.RefreshTTL)
		tests := []struct{ name, token string }{
			{"expired", stale.RefreshToken},
			{"expired after a refresh", fresh.RefreshToken},
			{"empty", ""},
			{"short", "abc"},
			{"not base64url", strings.Repeat("!", 43)},
			{"padded", tok.RefreshToken[:42] + "="},
			{"non-canonical last character", tok.RefreshToken[:42] + "B"},
			{"unknown", strings.Repeat("A", 43)},
			{"NUL bytes", strings.Repeat("\x00", 43)},
			{"a JWT", tok.AccessToken},
		}
		for _, tt := range tests {
			_, err := e.svc.Refresh(ctx, tt.token)
			if diff := cmp.Diff(invalidToken, view(err)); diff != "" {
				t.Errorf("%s: (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

func TestKeyRotation(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		if err := e.svc.EnsureSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		verifier := auth.NewUserVerifier(e.svc.KeySet())
		before := login(t, e.svc, "ada@example.com")
		kid1 := kidOf(t, before.AccessToken)

		kid2, err := e.svc.RotateSigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after := login(t, e.svc, "ada@example.com")
		if kid2 == kid1 || kidOf(t, after.AccessToken) != kid2 {
			t.Errorf("after rotation: kid %s, want the new %s (old %s)", kidOf(t, after.AccessToken), kid2, kid1)
		}
		for name, tok := range map[string]string{"before": before.AccessToken, "after": after.AccessToken} {
			if _, err := verifier.VerifyUser(ctx, tok); err != nil {
				t.Errorf("token signed %s the rotation: %v", name, err)
			}
		}
		if got := jwksKids(t, e.svc); !cmp.Equal(got, []string{kid2, kid1}) {
			t.Errorf("JWKS kids = %v, want [%s %s]", got, kid2, kid1)
		}
		// A day later the retired key is neither published nor accepted, and the
		// next rotation deletes it.
		e.clock.Advance(users.KeyRetention + time.Second)
		if got := jwksKids(t, e.svc); !cmp.Equal(got, []string{kid2}) {
			t.Errorf("JWKS kids a day later = %v, want [%s]", got, kid2)
		}
		if _, err := e.svc.KeySet().PublicKey(ctx, kid1); err == nil {
			t.Errorf("the key retired a day ago is still accepted")
		}
		kid3, err := e.svc.RotateSigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := e.store.SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range stored {
			kids = append(kids, k.ID)
		}
		if !cmp.Equal(kids, []string{kid3, kid2}) {
			t.Errorf("stored keys = %v, want [%s %s]", kids, kid3, kid2)
		}
		if got := jwksKids(t, e.svc); !cmp.Equal(got, []string{kid3, kid2}) {
			t.Errorf("JWKS kids = %v, want [%s %s]", got, kid3, kid2)
		}
	})
}

// TestKeyRotationReachesReplicas: a rotation made by another process (microshop
// keys rotate) is used for signing within KeyCacheTTL, and tokens signed with
// the new key are accepted at once.
func TestKeyRotationReachesReplicas(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		a, b := e.replica(), e.replica()
		kid1 := kidOf(t, login(t, a, "ada@example.com").AccessToken)
		kid2, err := e.replica().RotateSigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Second)
		if got := kidOf(t, login(t, a, "ada@example.com").AccessToken); got != kid1 {
			t.Errorf("right after the rotation, a replica signs with %s, want its cached %s", got, kid1)
		}
		fromB := login(t, b, "ada@example.com") // b had no copy: it reads the new key
		if kidOf(t, fromB.AccessToken) != kid2 {
			t.Fatalf("a fresh replica signs with %s, want %s", kidOf(t, fromB.AccessToken), kid2)
		}
		if _, err := auth.NewUserVerifier(a.KeySet()).VerifyUser(ctx, fromB.AccessToken); err != nil {
			t.Errorf("a replica rejects a token signed with the new key: %v", err)
		}
		e.clock.Advance(users.KeyCacheTTL)
		if got := kidOf(t, login(t, a, "ada@example.com").AccessToken); got != kid2 {
			t.Errorf("after KeyCacheTTL, a replica signs with %s, want %s", got, kid2)
		}
	})
}

func TestEnsureSigningKey(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// Replicas starting together.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			svc := e.replica()
			wg.Go(func() { errs[i] = svc.EnsureSigningKey(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		keys, err := e.store.SigningKeys(ctx)
		if err != nil || len(keys) != 1 || !keys[0].Active() {
			t.Fatalf("keys after concurrent EnsureSigningKey = %d, %v; want one active", len(keys), err)
		}
		// Idempotent.
		for range 3 {
			if err := e.svc.EnsureSigningKey(ctx); err != nil {
				t.Fatal(err)
			}
		}
		again, _ := e.store.SigningKeys(ctx)
		if len(again) != 1 || again[0].ID != keys[0].ID {
			t.Errorf("EnsureSigningKey again changed the keys: %d keys", len(again))
		}
		// Concurrent rotations leave exactly one active key.
		for range 4 {
			svc := e.replica()
			wg.Go(func() {
				if _, err := svc.RotateSigningKey(ctx); err != nil {
					t.Errorf("concurrent rotation: %v", err)
				}
			})
		}
		wg.Wait()
		keys, _ = e.store.SigningKeys(ctx)
		active := 0
		for _, k := range keys {
			if k.Active() {
				active++
			}
		}
		if len(keys) != 5 || active != 1 || !keys[0].Active() {
			t.Errorf("after 4 rotations: %d keys, %d active (newest active: %v); want 5, 1, true", len(keys), active, keys[0].Active())
		}
	})
}

func TestEnsureAdmin(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		verifier := auth.NewUserVerifier(e.svc.KeySet())
		const adminPW = "the admin password"
		if err := e.svc.EnsureAdmin(ctx, "Root@Example.com", adminPW); err != nil {
			t.Fatal(err)
		}
		root, _, err := e.store.Credentials(ctx, "root@example.com")
		if err != nil || root.Role != users.RoleAdmin || root.Name != "Administrator" {
			t.Fatalf("created admin = %+v, %v", root, err)
		}
		tok, err := e.svc.Login(ctx, "root@example.com", adminPW)
		if err != nil {
			t.Fatal(err)
		}
		// Unchanged configuration: nothing happens, the session survives.
		if err := e.svc.EnsureAdmin(ctx, "root@example.com", adminPW); err != nil {
			t.Fatal(err)
		}
		if tok, err = e.svc.Refresh(ctx, tok.RefreshToken); err != nil {
			t.Errorf("session after an unchanged EnsureAdmin: %v", err)
		}
		// A customer who registered the email first is promoted, with the
		// configured password; their sessions end.
		register(t, e.svc, "boss@example.com")
		custTok := login(t, e.svc, "boss@example.com")
		if err := e.svc.EnsureAdmin(ctx, "boss@example.com", adminPW); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Refresh(ctx, custTok.RefreshToken); view(err) != invalidToken {
			t.Errorf("the customer's session after promotion = %v, want invalid-token", err)
		}
		if _, err := e.svc.Login(ctx, "boss@example.com", password); view(err) != invalidCredentials {
			t.Errorf("login with the old password = %v, want invalid-credentials", err)
		}
		bossTok, err := e.svc.Login(ctx, "boss@example.com", adminPW)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := verifier.VerifyUser(ctx, bossTok.AccessToken); err != nil || !p.IsAdmin() {
			t.Errorf("promoted principal = %+v, %v; want an admin", p, err)
		}
		// A new password replaces the old one and ends the sessions.
		if err := e.svc.EnsureAdmin(ctx, "root@example.com", "a brand new password"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Refresh(ctx, tok.RefreshToken); view(err) != invalidToken {
			t.Errorf("the admin's session after a password change = %v, want invalid-token", err)
		}
		if _, err := e.svc.Login(ctx, "root@example.com", "a brand new password"); err != nil {
			t.Errorf("login with the new password: %v", err)
		}
		page, _ := e.svc.List(ctx, "", 10)
		if len(page.Items) != 2 {
			t.Errorf("%d users, want 2", len(page.Items))
		}
		for _, bad := range []struct{ email, password string }{{"root", adminPW}, {"root@example.com", "short"}} {
			if err := e.svc.EnsureAdmin(ctx, bad.email, bad.password); fault.KindOf(err) != fault.Invalid {
				t.Errorf("EnsureAdmin(%q, ...) = %v, want invalid", bad.email, err)
			}
		}
	})
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(token, &auth.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func jwksKids(t *testing.T, svc *users.Service) []string {
	t.Helper()
	set, err := svc.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if _, err := k.PublicKey(); err != nil {
			t.Errorf("JWKS key %s: %v", k.Kid, err)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestPurgeRefreshTokens(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		register(t, e.svc, "ada@example.com")
		old := login(t, e.svc, "ada@example.com")
		e.clock.Advance(2*users.RefreshTTL + time.Second)
		live := login(t, e.svc, "ada@example.com")
		n, err := e.svc.PurgeRefreshTokens(ctx)
		if err != nil || n != 1 {
			t.Errorf("PurgeRefreshTokens() = %d, %v; want 1", n, err)
		}
		if _, err := e.svc.Refresh(ctx, old.RefreshToken); view(err) != invalidToken {
			t.Errorf("purged token: %v", err)
		}
		if _, err := e.svc.Refresh(ctx, live.RefreshToken); err != nil {
			t.Errorf("live token after the purge: %v", err)
		}
	})
}
