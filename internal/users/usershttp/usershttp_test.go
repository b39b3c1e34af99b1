package usershttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
	"github.com/microshop/microshop/internal/users/usershttp"
)

func newServer(t *testing.T) (*httptest.Server, *users.Service) {
	t.Helper()
	db := sqldbtest.Open(t, sqldb.SQLite, "users", usersdb.Migrations())
	svc := users.NewService(usersdb.New(db))
	srv := httptest.NewServer(usershttp.Handler(svc, nil, logging.Discard()))
	t.Cleanup(srv.Close)
	return srv, svc
}

func TestCreateUserRequests(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		name     string
		body     string
		ctype    string
		want     int
		wantType string
	}{
		{"valid", `{"name":"Ada","email":"ada@example.com"}`, "application/json", 201, ""},
		{"duplicate email, other case", `{"name":"Ada","email":"ADA@example.com"}`, "application/json", 409, "/problems/email-taken"},
		{"malformed json", `{"name":`, "application/json", 400, "/problems/invalid-request"},
		{"unknown field", `{"name":"B","email":"b@example.com","role":"admin"}`, "application/json", 422, "/problems/validation-failed"},
		{"wrong type", `{"name":1,"email":"b@example.com"}`, "application/json", 422, "/problems/validation-failed"},
		{"missing email", `{"name":"B"}`, "application/json", 422, "/problems/validation-failed"},
		{"bad email", `{"name":"B","email":"not-an-email"}`, "application/json", 400, "/problems/invalid-request"},
		{"blank name", `{"name":"   ","email":"c@example.com"}`, "application/json", 400, "/problems/invalid-request"},
		{"name too long", `{"name":"` + strings.Repeat("x", 101) + `","email":"c@example.com"}`, "application/json", 422, "/problems/validation-failed"},
		{"oversize body", `{"name":"` + strings.Repeat("x", 70000) + `","email":"c@example.com"}`, "application/json", 413, "/problems/too-large"},
		{"empty body", ``, "application/json", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/api/v1/users", tt.ctype, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			problemtest.Check(t, resp.StatusCode, resp.Header, body, tt.want, tt.wantType)
		})
	}
	// Only the one valid request changed anything.
	resp, err := http.Get(srv.URL + "/api/v1/users")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Items []users.User }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Errorf("users after bad requests = %d, want 1", len(page.Items))
	}
}

func TestClientRoundTrip(t *testing.T) {
	srv, svc := newServer(t)
	ctx := context.Background()
	created, err := svc.Create(ctx, users.NewUser{Name: "Grace", Email: "grace@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(upstream.Options{Name: "users", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c := usershttp.NewClient(up)
	got, err := c.User(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != created {
		t.Errorf("User() = %+v, want %+v", got, created)
	}
	tests := []struct {
		id   string
		want fault.Kind
	}{
		{"0190f000-0000-7000-8000-000000000000", fault.NotFound},
		{"not-a-uuid", fault.NotFound},
		{"../../internal", fault.NotFound},
	}
	for _, tt := range tests {
		if _, err := c.User(ctx, tt.id); fault.KindOf(err) != tt.want {
			t.Errorf("User(%q) error = %v (kind %v), want kind %v", tt.id, err, fault.KindOf(err), tt.want)
		}
	}
}
