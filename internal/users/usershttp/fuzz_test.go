package usershttp_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
	"github.com/microshop/microshop/internal/users/usershttp"
)

// fuzzPost posts arbitrary bodies to path: no input may produce a 5xx or a
// panic. token, when not empty, is sent as the bearer token.
func fuzzPost(f *testing.F, path string, token func(*users.Service) string, seeds ...string) {
	for _, s := range append(seeds, `{}`, `[]`, `null`, ``, `{"a":1e999}`, "\xff\xfe", `{"email":"\u0000"}`) {
		f.Add(s)
	}
	db := sqldbtest.Open(f, sqldb.SQLite, "users", usersdb.Migrations())
	svc := users.NewService(usersdb.New(db), logging.Discard(), users.WithHasher(users.NewHasher(cheap)))
	if err := svc.EnsureAdmin(f.Context(), "admin@example.com", adminPassword); err != nil {
		f.Fatal(err)
	}
	authn := &auth.Authenticator{Users: auth.NewUserVerifier(svc.KeySet()), Log: logging.Discard()}
	h := usershttp.Handler(svc, authn, nil, logging.Discard())
	tok := ""
	if token != nil {
		tok = token(svc)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}

func FuzzRegister(f *testing.F) {
	fuzzPost(f, "/api/v1/auth/register", nil,
		`{"email":"ada@example.com","password":"correct horse battery staple","name":"Ada"}`,
		`{"email":"ADA@example.com","password":"correct horse battery staple","name":"Ada"}`,
		`{"email":"a@b.c","password":"€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€","name":"x"}`,
		`{"email":"a@b.c","password":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000","name":"\u0000"}`,
		`{"email":"a@b.c","password":"correct horse battery staple","name":"x","role":"admin"}`,
	)
}

func FuzzLogin(f *testing.F) {
	fuzzPost(f, "/api/v1/auth/login", nil,
		`{"email":"admin@example.com","password":"the admin password"}`,
		`{"email":"admin@example.com","password":"wrong"}`,
		`{"email":"ad\u0000min@example.com","password":"x"}`,
		`{"email":"admin@example.com","password":"x","password":"y"}`,
	)
}

func FuzzRefresh(f *testing.F) {
	fuzzPost(f, "/api/v1/auth/refresh", nil,
		`{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"refresh_token":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000"}`,
		`{"refresh_token":""}`,
	)
}

func FuzzLogout(f *testing.F) {
	fuzzPost(f, "/api/v1/auth/logout", nil, `{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)
}

// FuzzCreateUser posts arbitrary bodies as an admin.
func FuzzCreateUser(f *testing.F) {
	fuzzPost(f, "/api/v1/users", func(svc *users.Service) string {
		tok, err := svc.Login(f.Context(), "admin@example.com", adminPassword)
		if err != nil {
			f.Fatal(err)
		}
		return tok.AccessToken
	},
		`{"name":"Ada","email":"ada@example.com"}`, `{"name":"","email":""}`,
		`{"name":"\u0000","email":"a@b.c"}`, `{"email":"a@b.c","email":"d@e.f","name":"x"}`,
	)
}
