package ordershttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/auth/authtest"
	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
)

// caller is who makes a request, as the headers that prove it.
type caller struct {
	name   string
	header func(t *testing.T) http.Header
}

// callers returns everyone the access rules are checked against: Ada (the
// customer who owns the order under test), Bob (another customer), an admin,
// services (orders trusts none: it has no internal endpoints) and bad tokens.
func (s *shop) callers(t *testing.T) []caller {
	user := func(tok func(t *testing.T) string) func(t *testing.T) http.Header {
		return func(t *testing.T) http.Header { return authtest.Header(tok(t), "") }
	}
	service := func(sv *authtest.Service) func(t *testing.T) http.Header {
		return func(t *testing.T) http.Header { return authtest.Header("", sv.Token(t)) }
	}
	ordersSvc, other := authtest.NewService(t, "orders"), authtest.NewService(t, "other")
	return []caller{
		{"anonymous", func(*testing.T) http.Header { return http.Header{} }},
		{"customer", func(t *testing.T) http.Header { return s.asAda(t) }},
		{"another customer", func(t *testing.T) http.Header { return s.asBob(t) }},
		{"admin", func(t *testing.T) http.Header { return s.asAdmin(t) }},
		{"service orders", service(ordersSvc)},
		{"service other", service(other)},
		{"customer with a service token", func(t *testing.T) http.Header {
			return authtest.Header(s.issuer.Customer(t, s.ada.ID), ordersSvc.Token(t))
		}},
		{"expired token", user(func(t *testing.T) string { return s.issuer.Expired(t, s.ada.ID, auth.RoleCustomer) })},
		{"token of another issuer", user(func(t *testing.T) string { return authtest.NewIssuer(t).Admin(t, s.admin.ID) })},
		{"garbage token", user(func(*testing.T) string { return authtest.Garbage })},
	}
}

// TestAccessRules checks every route against every caller. Every route takes
// an authenticated user; a customer sees only their own orders, and someone
// else's are not found; an admin sees all. The rules are checked before the
// body is read.
func TestAccessRules(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	adas := s.placeAs(t, s.ada.ID)
	bobs := s.placeAs(t, s.bob.ID)
	// Cancelled, so that cancelling it again changes nothing and its event
	// stream ends at once.
	done := s.placeAs(t, s.ada.ID)
	if _, err := s.orders.Cancel(context.Background(), done.ID, orders.Viewer{UserID: s.ada.ID}); err != nil {
		t.Fatal(err)
	}
	valid := placeBody(lineJSON(s.mug.ID, 1))
	withUser := `{"user_id":"` + s.ada.ID + `","lines":[` + lineJSON(s.mug.ID, 1) + `]}`
	// Refused outright: no user, or credentials the Authenticator rejects.
	refused := map[string]int{"anonymous": 401, "service orders": 401, "service other": 401,
		"customer with a service token": 401, "expired token": 401, "token of another issuer": 401, "garbage token": 401}
	rules := func(m map[string]int) map[string]int {
		for k, v := range refused {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		route  string
		method string
		path   string
		body   string
		want   map[string]int // by caller
	}{
		{"place", http.MethodPost, "/api/v1/orders", valid,
			rules(map[string]int{"customer": 202, "another customer": 202, "admin": 202})},
		{"place, malformed body", http.MethodPost, "/api/v1/orders", `{"lines":`,
			rules(map[string]int{"customer": 400, "another customer": 400, "admin": 400})},
		{"place with a user id", http.MethodPost, "/api/v1/orders", withUser,
			rules(map[string]int{"customer": 422, "another customer": 422, "admin": 422})},
		{"get own order", http.MethodGet, "/api/v1/orders/" + adas.ID, "",
			rules(map[string]int{"customer": 200, "another customer": 404, "admin": 200})},
		{"get another's order", http.MethodGet, "/api/v1/orders/" + bobs.ID, "",
			rules(map[string]int{"customer": 404, "another customer": 200, "admin": 200})},
		{"get unknown order", http.MethodGet, "/api/v1/orders/" + unknownID, "",
			rules(map[string]int{"customer": 404, "another customer": 404, "admin": 404})},
		{"list own orders", http.MethodGet, "/api/v1/orders", "",
			rules(map[string]int{"customer": 200, "another customer": 200, "admin": 200})},
		{"list Ada's orders", http.MethodGet, "/api/v1/orders?user_id=" + s.ada.ID, "",
			rules(map[string]int{"customer": 200, "another customer": 404, "admin": 200})},
		{"list an unknown user's orders", http.MethodGet, "/api/v1/orders?user_id=" + unknownID, "",
			rules(map[string]int{"customer": 404, "another customer": 404, "admin": 200})},
		{"cancel a cancelled order", http.MethodPost, "/api/v1/orders/" + done.ID + "/cancel", "",
			rules(map[string]int{"customer": 409, "another customer": 404, "admin": 409})},
		{"cancel an unknown order", http.MethodPost, "/api/v1/orders/" + unknownID + "/cancel", "",
			rules(map[string]int{"customer": 404, "another customer": 404, "admin": 404})},
		{"events of a finished order", http.MethodGet, "/api/v1/orders/" + done.ID + "/events", "",
			rules(map[string]int{"customer": 200, "another customer": 404, "admin": 200})},
		{"events of an unknown order", http.MethodGet, "/api/v1/orders/" + unknownID + "/events", "",
			rules(map[string]int{"customer": 404, "another customer": 404, "admin": 404})},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			for _, c := range s.callers(t) {
				t.Run(c.name, func(t *testing.T) {
					want, ok := tt.want[c.name]
					if !ok {
						t.Fatalf("no rule for %s", c.name)
					}
					resp, b := call(t, tt.method, srv.URL+tt.path, c.header(t), tt.body, "")
					problemtest.Check(t, resp.StatusCode, resp.Header, b, want, "")
					if want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), auth.Challenge) {
						t.Errorf("WWW-Authenticate = %q, want the Bearer challenge", resp.Header.Get("WWW-Authenticate"))
					}
				})
			}
		})
	}
}

// TestOtherCustomersOrder checks that Bob cannot tell Ada's order from one that
// does not exist, whether he reads it, cancels it or follows its events, and
// that finding so asks neither users nor products.
func TestOtherCustomersOrder(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	o := s.placeAs(t, s.ada.ID)
	for _, route := range []struct{ method, suffix string }{{http.MethodGet, ""}, {http.MethodPost, "/cancel"}, {http.MethodGet, "/events"}} {
		t.Run(route.method+" "+route.suffix, func(t *testing.T) {
			problemOf := func(id string) map[string]any {
				t.Helper()
				resp, b := call(t, route.method, srv.URL+"/api/v1/orders/"+id+route.suffix, s.asBob(t), "", "")
				problemtest.Check(t, resp.StatusCode, resp.Header, b, http.StatusNotFound, "/problems/not-found")
				var p map[string]any
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatal(err)
				}
				delete(p, "instance") // the path asked for
				delete(p, "request_id")
				return p
			}
			unknown := problemOf(unknownID)
			users, products := s.userCalls.Load(), s.catalog.Calls()
			hidden := problemOf(o.ID)
			if len(hidden) != len(unknown) {
				t.Errorf("problem for Ada's order %v, for an unknown order %v: they differ", hidden, unknown)
			}
			for k, v := range unknown {
				if hidden[k] != v {
					t.Errorf("problem %s = %v for Ada's order, %v for an unknown one", k, hidden[k], v)
				}
			}
			if s.userCalls.Load() != users || s.catalog.Calls() != products {
				t.Errorf("Bob's request called users %d and products %d times, want neither",
					s.userCalls.Load()-users, s.catalog.Calls()-products)
			}
		})
	}
	if got, err := s.orders.Order(context.Background(), o.ID); err != nil || got.Status != orders.StatusPending {
		t.Errorf("Ada's order = %s, %v; want it still pending", got.Status, err)
	}
}

// TestListOrdersScope checks whose orders a listing holds.
func TestListOrdersScope(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	ada1, ada2, bob1 := s.placeAs(t, s.ada.ID), s.placeAs(t, s.ada.ID), s.placeAs(t, s.bob.ID)
	tests := []struct {
		name   string
		header func(t testing.TB) http.Header
		query  string
		want   []string // order ids, newest first
	}{
		{"customer, own", s.asAda, "", []string{ada2.ID, ada1.ID}},
		{"customer, own by id", s.asAda, "?user_id=" + s.ada.ID, []string{ada2.ID, ada1.ID}},
		{"another customer, own", s.asBob, "", []string{bob1.ID}},
		{"admin, own", s.asAdmin, "", nil},
		{"admin, Ada's", s.asAdmin, "?user_id=" + s.ada.ID, []string{ada2.ID, ada1.ID}},
		{"admin, Bob's", s.asAdmin, "?user_id=" + s.bob.ID, []string{bob1.ID}},
		{"admin, an unknown user's", s.asAdmin, "?user_id=" + unknownID, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := call(t, http.MethodGet, srv.URL+"/api/v1/orders"+tt.query, tt.header(t), "", "")
			problemtest.Check(t, resp.StatusCode, resp.Header, b, http.StatusOK, "")
			var p page.Page[orders.Order]
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range p.Items {
				got = append(got, o.ID)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("orders = %v, want %v", got, tt.want)
			}
		})
	}
}
