package usershttp_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
	"github.com/microshop/microshop/internal/users/usershttp"
)

// FuzzCreateUser posts arbitrary bodies: no input may produce a 5xx or a panic.
func FuzzCreateUser(f *testing.F) {
	for _, s := range []string{
		`{"name":"Ada","email":"ada@example.com"}`, `{"name":"","email":""}`, `{}`, `[]`, `null`,
		`{"name":"\u0000","email":"a@b.c"}`, `{"name":1e999}`, `{"email":"a@b.c","email":"d@e.f","name":"x"}`,
	} {
		f.Add(s)
	}
	db := sqldbtest.Open(f, sqldb.SQLite, "users", usersdb.Migrations())
	h := usershttp.Handler(users.NewService(usersdb.New(db)), nil, logging.Discard())
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/users", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
