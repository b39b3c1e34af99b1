package productshttp_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/auth/authtest"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/products"
)

// caller is who makes a request, as the headers that prove it. Callers with
// invalid credentials are refused by the Authenticator on every route.
type caller struct {
	name    string
	header  func(t *testing.T) http.Header
	invalid bool
}

// callers returns everyone the access rules are checked against.
func (c *creds) callers(t *testing.T) []caller {
	user := func(tok func(t *testing.T) string) func(t *testing.T) http.Header {
		return func(t *testing.T) http.Header { return authtest.Header(tok(t), "") }
	}
	service := func(s *authtest.Service) func(t *testing.T) http.Header {
		return func(t *testing.T) http.Header { return authtest.Header("", s.Token(t)) }
	}
	both := func(tok func(t *testing.T) string, s *authtest.Service) func(t *testing.T) http.Header {
		return func(t *testing.T) http.Header { return authtest.Header(tok(t), s.Token(t)) }
	}
	customer := func(t *testing.T) string { return c.users.Customer(t, adaID) }
	admin := func(t *testing.T) string { return c.users.Admin(t, adminID) }
	forged := authtest.NewService(t, "orders") // the name of orders, with a key nobody trusts
	return []caller{
		{name: "anonymous", header: func(*testing.T) http.Header { return http.Header{} }},
		{name: "customer", header: user(customer)},
		{name: "another customer", header: user(func(t *testing.T) string { return c.users.Customer(t, bobID) })},
		{name: "admin", header: user(admin)},
		{name: "service orders", header: service(c.orders)},
		{name: "service orders for a customer", header: both(customer, c.orders)},
		{name: "service other", header: service(c.other)},
		{name: "service other for an admin", header: both(admin, c.other)},
		{name: "forged service orders", header: service(forged), invalid: true},
		{name: "expired token", header: user(func(t *testing.T) string { return c.users.Expired(t, adminID, auth.RoleAdmin) }), invalid: true},
		{name: "token of another issuer", header: user(func(t *testing.T) string { return authtest.NewIssuer(t).Admin(t, adminID) }), invalid: true},
		{name: "garbage token", header: user(func(*testing.T) string { return authtest.Garbage }), invalid: true},
		{name: "admin with a garbage service token", header: func(t *testing.T) http.Header {
			return authtest.Header(c.users.Admin(t, adminID), authtest.Garbage)
		}, invalid: true},
	}
}

// TestAccessRules checks every route against every caller: reading the
// catalog is public, changing it takes an admin, and the reservation endpoints
// take the service token of orders, whatever user token comes with it. Bad
// credentials are refused everywhere, and the rules are checked before the
// body is read.
func TestAccessRules(t *testing.T) {
	srv, svc, c := newServer(t)
	p := create(t, svc, "A-1", 1_000)
	n := 0
	sku := func() string { n++; return "NEW-" + strconv.Itoa(n) }
	reserveBody := func() string {
		return `{"order_id":"` + newID() + `","lines":[{"product_id":"` + p.ID + `","quantity":1}]}`
	}
	var (
		admins    = []string{"admin", "service other for an admin"}
		customers = []string{"customer", "another customer", "service orders for a customer"}
		orders    = []string{"service orders", "service orders for a customer"}
		others    = []string{"service other", "service other for an admin"}
	)
	tests := []struct {
		route     string
		req       func() request
		ok        int      // the status of allowed callers
		allowed   []string // nil: everyone with valid credentials
		forbidden []string // callers who get 403; other callers get 401
	}{
		{"list products", func() request { return request{method: http.MethodGet, path: "/api/v1/products"} }, 200, nil, nil},
		{"get product", func() request { return request{method: http.MethodGet, path: "/api/v1/products/" + p.ID} }, 200, nil, nil},
		{"create product", func() request {
			return request{method: http.MethodPost, path: "/api/v1/products",
				body: `{"sku":"` + sku() + `","name":"New","price":{"amount":1,"currency":"EUR"},"stock":1}`}
		}, 201, admins, customers},
		{"create product, invalid body", func() request {
			return request{method: http.MethodPost, path: "/api/v1/products", body: `{"sku":`}
		}, 400, admins, customers},
		{"update product", func() request {
			return request{method: http.MethodPatch, path: "/api/v1/products/" + p.ID, body: `{"stock":1000}`}
		}, 200, admins, customers},
		{"reserve", func() request {
			return request{method: http.MethodPost, path: "/internal/v1/reservations", body: reserveBody()}
		}, 200, orders, others},
		{"reserve, invalid body", func() request {
			return request{method: http.MethodPost, path: "/internal/v1/reservations", body: `{"order_id":`}
		}, 400, orders, others},
		{"release", func() request {
			return request{method: http.MethodDelete, path: "/internal/v1/reservations/" + newID()}
		}, 204, orders, others},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			for _, cl := range c.callers(t) {
				t.Run(cl.name, func(t *testing.T) {
					req := tt.req()
					switch {
					case cl.invalid:
						req.want = http.StatusUnauthorized
					case tt.allowed == nil || slices.Contains(tt.allowed, cl.name):
						req.want = tt.ok
					case slices.Contains(tt.forbidden, cl.name):
						req.want = http.StatusForbidden
					default:
						req.want = http.StatusUnauthorized
					}
					req.do(t, srv.URL, cl.header(t))
				})
			}
		})
	}
	// Refused calls changed nothing: the admins created one product each and
	// orders reserved one unit twice.
	all := listAll(t, svc)
	if len(all) != 1+len(admins) || all[0].Stock != 1000-len(orders) {
		t.Errorf("%d products, stock of A-1 %d; want %d, %d", len(all), all[0].Stock, 1+len(admins), 1000-len(orders))
	}
}

// TestClientCredentials checks what the client sends: the user's token on every
// call, and the service token on the reservation calls only.
func TestClientCredentials(t *testing.T) {
	c := newCreds(t)
	var (
		mu  sync.Mutex
		got = map[string]http.Header{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method] = r.Header.Clone()
		mu.Unlock()
		http.Error(w, `{"status":503}`, http.StatusServiceUnavailable) // the answer does not matter
	}))
	defer srv.Close()
	ctx := c.users.Context(t, t.Context(), adaID, auth.RoleCustomer)
	cl := newClient(t, srv.URL, c.orders.Signer)
	_, _ = cl.Products(ctx, []string{newID()})
	_, _ = cl.Reserve(ctx, newID(), []products.Line{{ProductID: newID(), Quantity: 1}})
	_ = cl.Release(ctx, newID())
	verifier := auth.NewServiceVerifier(authtest.Trust(c.orders))
	for _, tt := range []struct {
		method      string
		wantService bool
	}{{http.MethodGet, false}, {http.MethodPost, true}, {http.MethodDelete, true}} {
		h := got[tt.method]
		if h == nil {
			t.Errorf("%s: no call", tt.method)
			continue
		}
		if h.Get("Authorization") != "Bearer "+auth.UserToken(ctx) {
			t.Errorf("%s: Authorization = %q, want the user's token", tt.method, h.Get("Authorization"))
		}
		svc := h.Get(auth.ServiceHeader)
		if !tt.wantService {
			if svc != "" {
				t.Errorf("%s: a service token was sent", tt.method)
			}
			continue
		}
		if name, err := verifier.VerifyService(ctx, svc); err != nil || name != "orders" {
			t.Errorf("%s: service token verifies to %q, %v; want orders", tt.method, name, err)
		}
	}
}

// TestClientServiceIdentity checks that the products service takes the
// reservation calls of the orders client only when it signs as orders.
func TestClientServiceIdentity(t *testing.T) {
	srv, svc, c := newServer(t)
	p := create(t, svc, "A-1", 10)
	ctx := c.users.Context(t, t.Context(), adminID, auth.RoleAdmin) // even an admin's token is not enough
	tests := []struct {
		name   string
		signer *auth.ServiceSigner
		want   fault.Kind
	}{
		{"no service token", nil, fault.Unauthenticated},
		{"another service", c.other.Signer, fault.Forbidden},
		{"a key nobody trusts", authtest.NewService(t, "orders").Signer, fault.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newClient(t, srv.URL, tt.signer)
			_, err := cl.Reserve(ctx, newID(), []products.Line{{ProductID: p.ID, Quantity: 1}})
			if !fault.Is(err, tt.want) {
				t.Errorf("Reserve() error = %v (kind %v), want %v", err, fault.KindOf(err), tt.want)
			}
			if err := cl.Release(ctx, newID()); !fault.Is(err, tt.want) {
				t.Errorf("Release() error = %v (kind %v), want %v", err, fault.KindOf(err), tt.want)
			}
		})
	}
	if got, err := svc.Product(ctx, p.ID); err != nil || got.Stock != 10 {
		t.Errorf("stock = %d (%v), want 10", got.Stock, err)
	}
}
