package usershttp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/logging/logtest"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
	"github.com/microshop/microshop/internal/users/usershttp"
)

const (
	password      = "correct horse battery staple"
	adminPassword = "the admin password"
)

// cheap are argon2id parameters that keep tests fast.
var cheap = users.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// syncBuffer collects output written from several goroutines.
type syncBuffer = logtest.Buffer

// fixture is a users server with three accounts: ada and bob (customers) and
// an admin.
type fixture struct {
	srv      *httptest.Server
	db       *sqldb.DB
	svc      *users.Service
	logs     *syncBuffer
	ada, bob users.User
	adminID  string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: sqldbtest.Open(t, sqldb.SQLite, "users", usersdb.Migrations()), logs: &syncBuffer{}}
	log := logging.New(f.logs, "json", "debug")
	f.svc = users.NewService(usersdb.New(f.db), log, users.WithHasher(users.NewHasher(cheap)))
	if err := f.svc.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EnsureAdmin(ctx, "admin@example.com", adminPassword); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.ada, err = f.svc.Register(ctx, users.RegisterRequest{Email: "ada@example.com", Password: password, Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if f.bob, err = f.svc.Register(ctx, users.RegisterRequest{Email: "bob@example.com", Password: password, Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	authn := &auth.Authenticator{Users: auth.NewUserVerifier(f.svc.KeySet()), Log: log}
	f.srv = httptest.NewServer(usershttp.Handler(f.svc, authn, nil, log))
	t.Cleanup(f.srv.Close)
	admin, err := f.svc.Login(ctx, "admin@example.com", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	p, err := authn.Users.VerifyUser(ctx, admin.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	f.adminID = p.UserID
	return f
}

func (f *fixture) tokens(t testing.TB, email, pw string) users.Tokens {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), email, pw)
	if err != nil {
		t.Fatalf("Login(%s): %v", email, err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) do(t testing.TB, method, path, token, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// userCount is the number of accounts, read behind the API's back.
func (f *fixture) userCount(t testing.TB) int {
	t.Helper()
	var n int
	if err := f.db.QueryRowContext(context.Background(), `SELECT count(*) FROM users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAccessRules checks every route against every kind of caller, with real
// tokens. Credentials that do not verify are refused on every route, with the
// Bearer challenge; so is any 401.
func TestAccessRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	adaTok := f.tokens(t, "ada@example.com", password).AccessToken
	bobTok := f.tokens(t, "bob@example.com", password).AccessToken
	adminTok := f.tokens(t, "admin@example.com", adminPassword).AccessToken
	// A token of the right shape signed by a key the service does not know,
	// and one that expired (signed by the service an hour ago).
	_, stranger, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	forged, err := auth.Sign("unknown-kid", stranger, auth.Claims{Role: auth.RoleAdmin, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: auth.Issuer, Subject: f.adminID, Audience: jwt.ClaimStrings{auth.Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	past := users.NewService(usersdb.New(f.db), logging.Discard(), users.WithHasher(users.NewHasher(cheap)),
		users.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	expired, err := past.Login(ctx, "admin@example.com", adminPassword)
	if err != nil {
		t.Fatal(err)
	}

	callers := []struct{ name, token string }{
		{"anonymous", ""}, {"customer", adaTok}, {"other customer", bobTok}, {"admin", adminTok},
	}
	bad := []struct{ name, token string }{
		{"garbage token", "garbage"}, {"forged token", forged}, {"expired token", expired.AccessToken},
	}
	n := 0
	uniq := func() string { n++; return fmt.Sprintf("new%d@example.com", n) }
	unknownID := "0190f000-0000-7000-8000-000000000000"
	all := func(s int) [4]int { return [4]int{s, s, s, s} }
	tests := []struct {
		method, path string
		body         func() string
		want         [4]int // anonymous, customer, other customer, admin
	}{
		{"POST", "/api/v1/auth/register", func() string {
			return `{"email":"` + uniq() + `","password":"` + password + `","name":"New"}`
		}, all(201)},
		{"POST", "/api/v1/auth/login", func() string { return `{"email":"ada@example.com","password":"` + password + `"}` }, all(200)},
		{"POST", "/api/v1/auth/refresh", func() string {
			return `{"refresh_token":"` + f.tokens(t, "ada@example.com", password).RefreshToken + `"}`
		}, all(200)},
		{"POST", "/api/v1/auth/logout", func() string {
			return `{"refresh_token":"` + f.tokens(t, "ada@example.com", password).RefreshToken + `"}`
		}, all(204)},
		{"GET", "/.well-known/jwks.json", nil, all(200)},
		{"GET", "/api/v1/users/me", nil, [4]int{401, 200, 200, 200}},
		{"GET", "/api/v1/users/" + f.ada.ID, nil, [4]int{401, 200, 404, 200}},
		{"GET", "/api/v1/users/" + unknownID, nil, [4]int{401, 404, 404, 404}},
		{"GET", "/api/v1/users/not-an-id", nil, [4]int{401, 404, 404, 404}},
		{"GET", "/api/v1/users", nil, [4]int{401, 403, 403, 200}},
		{"POST", "/api/v1/users", func() string { return `{"name":"X","email":"` + uniq() + `"}` }, [4]int{401, 403, 403, 201}},
	}
	for _, tt := range tests {
		body := func() string {
			if tt.body == nil {
				return ""
			}
			return tt.body()
		}
		for i, c := range callers {
			t.Run(tt.method+" "+tt.path+" as "+c.name, func(t *testing.T) {
				before := f.userCount(t)
				res := f.do(t, tt.method, tt.path, c.token, body())
				problemtest.Check(t, res.status, res.header, res.body, tt.want[i], "")
				if res.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %q", res.header.Get("WWW-Authenticate"))
				}
				if res.status >= 400 && f.userCount(t) != before {
					t.Errorf("a refused request changed the users")
				}
			})
		}
		for _, c := range bad {
			t.Run(tt.method+" "+tt.path+" with "+c.name, func(t *testing.T) {
				res := f.do(t, tt.method, tt.path, c.token, body())
				problemtest.Check(t, res.status, res.header, res.body, 401, "/problems/invalid-token")
				if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %q", res.header.Get("WWW-Authenticate"))
				}
			})
		}
	}

	// What each caller sees.
	var me users.User
	res := f.do(t, "GET", "/api/v1/users/me", bobTok, "")
	if err := json.Unmarshal(res.body, &me); err != nil || me != f.bob {
		t.Errorf("GET /users/me as bob = %+v, %v; want %+v", me, err, f.bob)
	}
	// Another customer's id is answered exactly like an unknown id.
	notYours := problemtest.Decode(t, 404, f.do(t, "GET", "/api/v1/users/"+f.ada.ID, bobTok, "").header,
		f.do(t, "GET", "/api/v1/users/"+f.ada.ID, bobTok, "").body)
	unknown := problemtest.Decode(t, 404, http.Header{"Content-Type": {problem.ContentType}},
		f.do(t, "GET", "/api/v1/users/"+unknownID, bobTok, "").body)
	ignore := cmpopts.IgnoreFields(problem.Problem{}, "Instance", "RequestID")
	if diff := cmp.Diff(unknown, notYours, ignore, cmpopts.IgnoreUnexported(problem.Problem{})); diff != "" {
		t.Errorf("another's id vs an unknown id (-unknown +another's):\n%s", diff)
	}
}

func TestTokenResponses(t *testing.T) {
	f := newFixture(t)
	res := f.do(t, "POST", "/api/v1/auth/login", "", `{"email":"ada@example.com","password":"`+password+`"}`)
	if res.status != 200 || res.header.Get("Cache-Control") != "no-store" || res.header.Get("Pragma") != "no-cache" {
		t.Fatalf("login: %d, Cache-Control %q, Pragma %q", res.status, res.header.Get("Cache-Control"), res.header.Get("Pragma"))
	}
	var tok map[string]any
	if err := json.Unmarshal(res.body, &tok); err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for k := range tok {
		keys = append(keys, k)
	}
	if diff := cmp.Diff([]string{"access_token", "expires_in", "refresh_token", "token_type"}, keys, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("token response fields (-want +got):\n%s", diff)
	}
	if tok["token_type"] != "Bearer" || tok["expires_in"] != float64(900) {
		t.Errorf("token response = %v", tok)
	}
	res = f.do(t, "POST", "/api/v1/auth/refresh", "", `{"refresh_token":"`+tok["refresh_token"].(string)+`"}`)
	if res.status != 200 || res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("refresh: %d, Cache-Control %q", res.status, res.header.Get("Cache-Control"))
	}
	// The access token works on the API.
	res = f.do(t, "GET", "/api/v1/users/me", tok["access_token"].(string), "")
	if res.status != 200 {
		t.Errorf("GET /users/me with the login's token: %d %s", res.status, res.body)
	}
}

func TestJWKS(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res := f.do(t, "GET", "/.well-known/jwks.json", "", "")
	if res.status != 200 || res.header.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("JWKS: %d, Cache-Control %q", res.status, res.header.Get("Cache-Control"))
	}
	var set auth.JWKS
	if err := json.Unmarshal(res.body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS body %s: %v", res.body, err)
	}
	if _, err := set.Keys[0].PublicKey(); err != nil {
		t.Errorf("JWKS key: %v", err)
	}
	// Another service verifies the users service's tokens through the JWKS,
	// across a rotation.
	jwks := auth.NewJWKSClient(f.srv.URL + "/.well-known/jwks.json")
	jwks.MinRefresh = 0 // refetch at once when a token names a new key
	remote := auth.NewUserVerifier(jwks)
	before := f.tokens(t, "ada@example.com", password).AccessToken
	if _, err := remote.VerifyUser(ctx, before); err != nil {
		t.Errorf("verify through the JWKS: %v", err)
	}
	if _, err := f.svc.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	after := f.tokens(t, "ada@example.com", password).AccessToken
	for name, tok := range map[string]string{"before": before, "after": after} {
		if _, err := remote.VerifyUser(ctx, tok); err != nil {
			t.Errorf("token signed %s the rotation, through the JWKS: %v", name, err)
		}
	}
}

// TestAuthRequests sends bad requests to the auth routes: each gets a precise
// 4xx problem and changes nothing.
func TestAuthRequests(t *testing.T) {
	f := newFixture(t)
	reg := func(email, pw, name string) string {
		return fmt.Sprintf(`{"email":%q,"password":%q,"name":%q}`, email, pw, name)
	}
	tests := []struct {
		name, path, body string
		want             int
		wantType         string
	}{
		{"register: malformed json", "/api/v1/auth/register", `{"email":`, 400, "/problems/invalid-request"},
		{"register: empty body", "/api/v1/auth/register", ``, 400, ""},
		{"register: not an object", "/api/v1/auth/register", `[]`, 422, "/problems/validation-failed"},
		{"register: unknown field", "/api/v1/auth/register", `{"email":"n@example.com","password":"` + password + `","name":"N","role":"admin"}`, 422, "/problems/validation-failed"},
		{"register: missing password", "/api/v1/auth/register", `{"email":"n@example.com","name":"N"}`, 422, "/problems/validation-failed"},
		{"register: password not a string", "/api/v1/auth/register", `{"email":"n@example.com","password":123456789012345,"name":"N"}`, 422, "/problems/validation-failed"},
		{"register: short password", "/api/v1/auth/register", reg("n@example.com", "elevenchars", "N"), 422, "/problems/validation-failed"},
		{"register: long password", "/api/v1/auth/register", reg("n@example.com", strings.Repeat("p", 129), "N"), 422, "/problems/validation-failed"},
		{"register: password over 256 bytes", "/api/v1/auth/register", reg("n@example.com", strings.Repeat("€", 86), "N"), 400, "/problems/invalid-request"},
		{"register: bad email", "/api/v1/auth/register", reg("not-an-email", password, "N"), 400, "/problems/invalid-request"},
		{"register: long email", "/api/v1/auth/register", reg(strings.Repeat("e", 250)+"@example.com", password, "N"), 422, "/problems/validation-failed"},
		{"register: blank name", "/api/v1/auth/register", reg("n@example.com", password, "   "), 400, "/problems/invalid-request"},
		{"register: taken email", "/api/v1/auth/register", reg("ADA@example.com", password, "N"), 409, "/problems/email-taken"},
		{"register: oversize body", "/api/v1/auth/register", reg("n@example.com", password, strings.Repeat("x", 70000)), 413, "/problems/too-large"},
		{"login: malformed json", "/api/v1/auth/login", `{"email":"ada@example.com","password":`, 400, "/problems/invalid-request"},
		{"login: unknown field", "/api/v1/auth/login", `{"email":"ada@example.com","password":"x","otp":"1"}`, 422, "/problems/validation-failed"},
		{"login: empty password", "/api/v1/auth/login", `{"email":"ada@example.com","password":""}`, 422, "/problems/validation-failed"},
		{"login: long password", "/api/v1/auth/login", `{"email":"ada@example.com","password":"` + strings.Repeat("p", 129) + `"}`, 422, "/problems/validation-failed"},
		{"login: long email", "/api/v1/auth/login", `{"email":"` + strings.Repeat("e", 255) + `","password":"x"}`, 422, "/problems/validation-failed"},
		{"login: wrong password", "/api/v1/auth/login", `{"email":"bob@example.com","password":"not the password"}`, 401, "/problems/invalid-credentials"},
		{"login: unknown email", "/api/v1/auth/login", `{"email":"nobody@example.com","password":"` + password + `"}`, 401, "/problems/invalid-credentials"},
		{"login: oversize body", "/api/v1/auth/login", `{"email":"ada@example.com","password":"` + strings.Repeat("p", 70000) + `"}`, 413, "/problems/too-large"},
		{"refresh: malformed json", "/api/v1/auth/refresh", `{"refresh_token"`, 400, "/problems/invalid-request"},
		{"refresh: unknown field", "/api/v1/auth/refresh", `{"refresh_token":"x","user_id":"y"}`, 422, "/problems/validation-failed"},
		{"refresh: missing token", "/api/v1/auth/refresh", `{}`, 422, "/problems/validation-failed"},
		{"refresh: long token", "/api/v1/auth/refresh", `{"refresh_token":"` + strings.Repeat("A", 129) + `"}`, 422, "/problems/validation-failed"},
		{"refresh: garbage token", "/api/v1/auth/refresh", `{"refresh_token":"garbage"}`, 401, "/problems/invalid-token"},
		{"refresh: unknown token", "/api/v1/auth/refresh", `{"refresh_token":"` + strings.Repeat("A", 43) + `"}`, 401, "/problems/invalid-token"},
		{"logout: unknown token", "/api/v1/auth/logout", `{"refresh_token":"` + strings.Repeat("A", 43) + `"}`, 204, ""},
		{"logout: unknown field", "/api/v1/auth/logout", `{"refresh_token":"x","all":true}`, 422, "/problems/validation-failed"},
	}
	session := f.tokens(t, "ada@example.com", password)
	before := f.userCount(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, "POST", tt.path, "", tt.body)
			problemtest.Check(t, res.status, res.header, res.body, tt.want, tt.wantType)
			if res.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
		})
	}
	if n := f.userCount(t); n != before {
		t.Errorf("%d users after the bad requests, want %d", n, before)
	}
	if _, err := f.svc.Refresh(context.Background(), session.RefreshToken); err != nil {
		t.Errorf("ada's session after the bad requests: %v", err)
	}
}

func TestLoginThrottleHTTP(t *testing.T) {
	f := newFixture(t)
	body := `{"email":"bob@example.com","password":"not the password"}`
	for range users.MaxLoginFailures {
		res := f.do(t, "POST", "/api/v1/auth/login", "", body)
		problemtest.Check(t, res.status, res.header, res.body, 401, "/problems/invalid-credentials")
	}
	res := f.do(t, "POST", "/api/v1/auth/login", "", `{"email":"bob@example.com","password":"`+password+`"}`)
	problemtest.Check(t, res.status, res.header, res.body, 429, "/problems/too-many-attempts")
	if ra := res.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without Retry-After: %q", ra)
	}
}

// TestNoSecretsLeak sends a password through every path that handles one, right
// or wrong, and checks that no response and no log line contains it, and that
// no log line contains a token.
func TestNoSecretsLeak(t *testing.T) {
	f := newFixture(t)
	const secret = "Sup3r-Secret-Passphrase"
	bodies := []struct{ path, body string }{
		{"/api/v1/auth/register", `{"email":"s@example.com","password":"` + secret + `","name":"S"}`},
		{"/api/v1/auth/register", `{"email":"s@example.com","password":"` + secret + `","name":"S"}`},                            // taken
		{"/api/v1/auth/register", `{"email":"` + secret + `","password":"` + secret + `","name":"S"}`},                           // bad email
		{"/api/v1/auth/register", `{"email":"t@example.com","password":"` + secret + strings.Repeat("!", 120) + `","name":"S"}`}, // too long
		{"/api/v1/auth/register", `{"email":"t@example.com","password":"` + secret[:8] + `","name":"S"}`},                        // too short
		{"/api/v1/auth/register", `{"email":"t@example.com","password":"` + secret + `","name":"S","extra":"` + secret + `"}`},
		{"/api/v1/auth/register", `{"email":"t@example.com","password":["` + secret + `"],"name":"S"}`},
		{"/api/v1/auth/register", `{"email":"t@example.com","password":"` + secret + `,"name":"S"}`}, // broken JSON
		{"/api/v1/auth/login", `{"email":"s@example.com","password":"` + secret + `"}`},
		{"/api/v1/auth/login", `{"email":"s@example.com","password":"` + secret + `x"}`},
		{"/api/v1/auth/login", `{"email":"` + secret + `","password":"` + secret + `"}`}, // the password typed as the email
		{"/api/v1/auth/login", `{"email":"s@example.com","password":"` + secret + strings.Repeat("!", 120) + `"}`},
		{"/api/v1/auth/refresh", `{"refresh_token":"` + secret + `"}`},
		{"/api/v1/auth/logout", `{"refresh_token":"` + secret + `"}`},
	}
	for _, b := range bodies {
		res := f.do(t, "POST", b.path, "", b.body)
		if res.status >= 500 {
			t.Errorf("POST %s: %d", b.path, res.status)
		}
		if bytes.Contains(res.body, []byte(secret)) || bytes.Contains(res.body, []byte(secret[:8])) {
			t.Errorf("POST %s %s: the response contains the password: %s", b.path, b.body, res.body)
		}
	}
	tok := f.tokens(t, "s@example.com", secret)
	refreshed, err := f.svc.Refresh(context.Background(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	f.do(t, "GET", "/api/v1/users/me", refreshed.AccessToken, "")
	f.do(t, "GET", "/api/v1/users/me", refreshed.AccessToken+"x", "")                       // rejected: logged
	f.do(t, "POST", "/api/v1/auth/refresh", "", `{"refresh_token":"`+tok.RefreshToken+`"}`) // reuse: logged
	f.do(t, "POST", "/api/v1/auth/logout", "", `{"refresh_token":"`+refreshed.RefreshToken+`"}`)

	logs := f.logs.String()
	if !strings.Contains(logs, "login failed") || !strings.Contains(logs, "refresh token reused") {
		t.Fatalf("the logs miss expected lines (is the capture working?):\n%s", logs)
	}
	for name, s := range map[string]string{
		"password": secret, "password prefix": secret[:8],
		"access token": tok.AccessToken, "refreshed access token": refreshed.AccessToken,
		"refresh token": tok.RefreshToken, "new refresh token": refreshed.RefreshToken,
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}

// TestCreateUserRequests: admins create customers without a password; bad
// input changes nothing.
func TestCreateUserRequests(t *testing.T) {
	f := newFixture(t)
	admin := f.tokens(t, "admin@example.com", adminPassword).AccessToken
	tests := []struct {
		name     string
		body     string
		want     int
		wantType string
	}{
		{"valid", `{"name":"Cy","email":"cy@example.com"}`, 201, ""},
		{"duplicate email, other case", `{"name":"Cy","email":"CY@example.com"}`, 409, "/problems/email-taken"},
		{"malformed json", `{"name":`, 400, "/problems/invalid-request"},
		{"unknown field", `{"name":"B","email":"d@example.com","role":"admin"}`, 422, "/problems/validation-failed"},
		{"wrong type", `{"name":1,"email":"d@example.com"}`, 422, "/problems/validation-failed"},
		{"missing email", `{"name":"B"}`, 422, "/problems/validation-failed"},
		{"bad email", `{"name":"B","email":"not-an-email"}`, 400, "/problems/invalid-request"},
		{"blank name", `{"name":"   ","email":"d@example.com"}`, 400, "/problems/invalid-request"},
		{"name too long", `{"name":"` + strings.Repeat("x", 101) + `","email":"d@example.com"}`, 422, "/problems/validation-failed"},
		{"oversize body", `{"name":"` + strings.Repeat("x", 70000) + `","email":"d@example.com"}`, 413, "/problems/too-large"},
		{"empty body", ``, 400, ""},
	}
	before := f.userCount(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, "POST", "/api/v1/users", admin, tt.body)
			problemtest.Check(t, res.status, res.header, res.body, tt.want, tt.wantType)
		})
	}
	if n := f.userCount(t); n != before+1 {
		t.Errorf("%d users after the requests, want %d", n, before+1)
	}
	// The account created by an admin cannot log in.
	res := f.do(t, "POST", "/api/v1/auth/login", "", `{"email":"cy@example.com","password":"anything at all"}`)
	problemtest.Check(t, res.status, res.header, res.body, 401, "/problems/invalid-credentials")
}

// TestClientRoundTrip: the typed client forwards the caller's token.
func TestClientRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	up, err := upstream.New(upstream.Options{Name: "users", BaseURL: f.srv.URL, Decorate: auth.Credentials(nil)})
	if err != nil {
		t.Fatal(err)
	}
	c := usershttp.NewClient(up)
	as := func(email, pw string) context.Context {
		p, err := auth.NewUserVerifier(f.svc.KeySet()).VerifyUser(ctx, f.tokens(t, email, pw).AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return auth.WithPrincipal(ctx, p)
	}
	ada, bob := as("ada@example.com", password), as("bob@example.com", password)
	got, err := c.User(ada, f.ada.ID)
	if err != nil || got != f.ada {
		t.Errorf("User(own id) = %+v, %v; want %+v", got, err, f.ada)
	}
	tests := []struct {
		name string
		ctx  context.Context
		id   string
		want fault.Kind
	}{
		{"another's id", bob, f.ada.ID, fault.NotFound},
		{"unknown id", ada, "0190f000-0000-7000-8000-000000000000", fault.NotFound},
		{"not a uuid", ada, "not-a-uuid", fault.NotFound},
		{"path traversal", ada, "../../internal", fault.NotFound},
		{"anonymous", ctx, f.ada.ID, fault.Unauthenticated},
	}
	for _, tt := range tests {
		if _, err := c.User(tt.ctx, tt.id); fault.KindOf(err) != tt.want {
			t.Errorf("%s: User(%q) error = %v (kind %v), want kind %v", tt.name, tt.id, err, fault.KindOf(err), tt.want)
		}
	}
}

// TestDescribe: the public document lists every operation, with the bearer
// scheme on those that need a token.
func TestDescribe(t *testing.T) {
	doc := describe(t)
	want := map[string]bool{
		"POST /api/v1/auth/register": false, "POST /api/v1/auth/login": false, "POST /api/v1/auth/refresh": false,
		"POST /api/v1/auth/logout": false, "GET /.well-known/jwks.json": false,
		"GET /api/v1/users/me": true, "GET /api/v1/users/{id}": true, "GET /api/v1/users": true, "POST /api/v1/users": true,
	}
	if diff := cmp.Diff(want, doc.ops); diff != "" {
		t.Errorf("operations and whether they need a bearer token (-want +got):\n%s", diff)
	}
	if !doc.bearer {
		t.Errorf("no bearer security scheme")
	}
}
