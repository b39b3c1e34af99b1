package authtest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/auth/authtest"
)

const user = "0190f000-0000-7000-8000-000000000001"

func TestIssuerTokens(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := iss.Verifier()
	ctx := context.Background()
	for _, role := range []string{auth.RoleCustomer, auth.RoleAdmin} {
		p, err := v.VerifyUser(ctx, iss.Token(t, user, role))
		if err != nil || p.UserID != user || p.Role != role {
			t.Errorf("VerifyUser(Token(%s)) = %+v, %v; want the user with that role", role, p, err)
		}
	}
	bad := map[string]string{
		"expired":      iss.Expired(t, user, auth.RoleCustomer),
		"garbage":      authtest.Garbage,
		"other issuer": authtest.NewIssuer(t).Customer(t, user),
	}
	for name, tok := range bad {
		if _, err := v.VerifyUser(ctx, tok); err == nil {
			t.Errorf("VerifyUser(%s) succeeded, want an error", name)
		}
	}
}

func TestContextForwardsToken(t *testing.T) {
	iss := authtest.NewIssuer(t)
	ctx := iss.Context(t, context.Background(), user, auth.RoleAdmin)
	if p := auth.From(ctx); !p.IsAdmin() || p.UserID != user || auth.UserToken(ctx) == "" {
		t.Fatalf("principal = %+v, token %q; want the admin with a token", p, auth.UserToken(ctx))
	}
	svc := authtest.NewService(t, "orders")
	h := http.Header{}
	auth.Credentials(svc.Signer)(auth.AsService(ctx), h)
	if h.Get("Authorization") != "Bearer "+auth.UserToken(ctx) || h.Get(auth.ServiceHeader) == "" {
		t.Errorf("headers = %v, want the user's token and a service token", h)
	}
}

func TestAuthenticator(t *testing.T) {
	iss := authtest.NewIssuer(t)
	orders, other := authtest.NewService(t, "orders"), authtest.NewService(t, "other")
	var got auth.Principal
	h := authtest.Authenticator(iss, orders).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = auth.From(r.Context())
	}))
	withoutServices := authtest.Authenticator(iss).Middleware(http.NotFoundHandler())
	tests := []struct {
		name    string
		handler http.Handler
		header  http.Header
		want    int
		wantP   auth.Principal
	}{
		{"anonymous", h, authtest.Header("", ""), 200, auth.Principal{}},
		{"service", h, authtest.Header("", orders.Token(t)), 200, auth.Principal{Service: "orders"}},
		{"untrusted service", h, authtest.Header("", other.Token(t)), 401, auth.Principal{}},
		{"garbage", h, authtest.Header(authtest.Garbage, ""), 401, auth.Principal{}},
		{"service without a service verifier", withoutServices, authtest.Header("", orders.Token(t)), 401, auth.Principal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = auth.Principal{}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header = tt.header
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, req)
			if rec.Code != tt.want || got != tt.wantP {
				t.Errorf("status %d, principal %+v; want %d, %+v", rec.Code, got, tt.want, tt.wantP)
			}
		})
	}
}
