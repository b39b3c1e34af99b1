package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type apiUser struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type apiMoney struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

type apiProduct struct {
	ID    string   `json:"id"`
	SKU   string   `json:"sku"`
	Name  string   `json:"name"`
	Price apiMoney `json:"price"`
	Stock int      `json:"stock"`
}

type apiLine struct {
	ProductID string      `json:"product_id"`
	Quantity  int         `json:"quantity"`
	UnitPrice apiMoney    `json:"unit_price"`
	Product   *apiProduct `json:"product"`
}

type apiOrder struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	Status   string    `json:"status"`
	Reason   string    `json:"reason"`
	Lines    []apiLine `json:"lines"`
	Total    apiMoney  `json:"total"`
	User     *apiUser  `json:"user"`
	Degraded []string  `json:"degraded"`
}

type apiPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

type apiProblem struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

// TestEndToEnd starts the whole system through run, as separate processes and
// as a monolith, and drives the public API as a client would.
func TestEndToEnd(t *testing.T) {
	for _, mode := range []struct {
		name  string
		extra []string
	}{
		{"services", nil},
		{"monolith", []string{"--monolith"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			s := startSystem(t, mode.extra...)
			api := s.URL + "/api/v1"

			// A customer registers and logs in; the admin exists from the environment.
			ada, adaTok := register(t, s.URL, "Ada Lovelace", "ada@example.com")
			as := bearer(adaTok)
			admin := bearer(login(t, s.URL, adminEmail, s.AdminPassword))
			r := expect(t, 200, call(t, "GET", api+"/users/me", nil, as...))
			var me apiUser
			r.json(t, &me)
			if me.ID != ada.ID || me.Email != "ada@example.com" {
				t.Errorf("me = %+v, want %+v", me, ada)
			}
			if r.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the response")
			}
			expect(t, 409, call(t, "POST", api+"/auth/register", map[string]string{"name": "Ada", "email": "ADA@example.com", "password": newPassword()}))

			// The demo customers were created with random passwords, printed once.
			demo, err := os.ReadFile(filepath.Join(s.DataDir, "demo-credentials.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(filepath.Join(s.DataDir, "demo-credentials.txt")); fi.Mode().Perm() != 0o600 {
				t.Errorf("demo credentials mode = %v, want 0600", fi.Mode().Perm())
			}
			for _, line := range strings.Split(string(demo), "\n") {
				if f := strings.Fields(line); len(f) == 2 && strings.HasSuffix(f[0], "@example.com") {
					login(t, s.URL, f[0], f[1])
					if !strings.Contains(s.Stdout.String(), f[1]) {
						t.Errorf("the password of %s was not printed", f[0])
					}
				}
			}

			// The seeded catalog, paginated and searchable.
			var catalog apiPage[apiProduct]
			expect(t, 200, call(t, "GET", api+"/products", nil)).json(t, &catalog)
			if len(catalog.Items) != 12 {
				t.Fatalf("catalog has %d products, want the 12 seeded", len(catalog.Items))
			}
			var first, second apiPage[apiProduct]
			expect(t, 200, call(t, "GET", api+"/products?limit=5", nil)).json(t, &first)
			expect(t, 200, call(t, "GET", api+"/products?limit=5&cursor="+first.NextCursor, nil)).json(t, &second)
			if len(first.Items) != 5 || first.NextCursor == "" || len(second.Items) != 5 || second.Items[0].ID == first.Items[0].ID {
				t.Errorf("pagination: first %d items (cursor %q), second %d", len(first.Items), first.NextCursor, len(second.Items))
			}
			word := strings.Fields(catalog.Items[0].Name)[0]
			var found apiPage[apiProduct]
			expect(t, 200, call(t, "GET", api+"/products?q="+strings.ToLower(word), nil)).json(t, &found)
			if len(found.Items) == 0 || len(found.Items) == 12 {
				t.Errorf("search %q found %d products", word, len(found.Items))
			}

			// An order of two products, made idempotent by a key.
			p1, p2 := catalog.Items[0], catalog.Items[1]
			body := map[string]any{"lines": []map[string]any{
				{"product_id": p1.ID, "quantity": 2}, {"product_id": p2.ID, "quantity": 1}}}
			r = expect(t, 202, call(t, "POST", api+"/orders", body, append(as, "Idempotency-Key", "order-1")...))
			var order apiOrder
			r.json(t, &order)
			if order.Status != "pending" || len(order.Lines) != 2 || r.Header.Get("Location") != "/api/v1/orders/"+order.ID {
				t.Fatalf("order = %+v (Location %q), want pending with 2 lines", order, r.Header.Get("Location"))
			}
			// The saga confirms it through events: orders.placed → stock.reserved → confirmed.
			if order = awaitFinal(t, api, order.ID, as); order.Status != "confirmed" {
				t.Fatalf("order = %+v, want confirmed", order)
			}
			if want := 2*p1.Price.Amount + p2.Price.Amount; order.Total.Amount != want {
				t.Errorf("total = %d, want %d", order.Total.Amount, want)
			}
			var replay apiOrder
			expect(t, 200, call(t, "POST", api+"/orders", body, append(as, "Idempotency-Key", "order-1")...)).json(t, &replay)
			if replay.ID != order.ID {
				t.Errorf("replay created order %s, want the first one %s", replay.ID, order.ID)
			}
			other := map[string]any{"lines": []map[string]any{{"product_id": p1.ID, "quantity": 3}}}
			expect(t, 422, call(t, "POST", api+"/orders", other, append(as, "Idempotency-Key", "order-1")...))

			// The order read enriched with its user and products, over HTTP or in memory.
			var got apiOrder
			expect(t, 200, call(t, "GET", api+"/orders/"+order.ID, nil, as...)).json(t, &got)
			if got.User == nil || got.User.Name != "Ada Lovelace" || len(got.Degraded) != 0 {
				t.Errorf("enriched order user = %+v, degraded %v", got.User, got.Degraded)
			}
			for _, l := range got.Lines {
				if l.Product == nil || l.Product.ID != l.ProductID {
					t.Errorf("line %+v lacks its product", l)
				}
			}
			var mine apiPage[apiOrder]
			expect(t, 200, call(t, "GET", api+"/orders", nil, as...)).json(t, &mine)
			if len(mine.Items) != 1 || mine.Items[0].ID != order.ID {
				t.Errorf("user's orders = %+v, want just %s", mine.Items, order.ID)
			}
			var after apiProduct
			expect(t, 200, call(t, "GET", api+"/products/"+p1.ID, nil)).json(t, &after)
			if after.Stock != p1.Stock-2 {
				t.Errorf("stock of %s = %d, want %d", p1.SKU, after.Stock, p1.Stock-2)
			}

			// Bad input gets a precise 4xx problem and changes nothing.
			bad := []struct {
				name, method, path, body string
				want                     int
			}{
				{"unknown field", "POST", "/orders", `{"lines":[{"product_id":"` + p1.ID + `","quantity":1}],"status":"confirmed"}`, 422},
				{"user id in the body", "POST", "/orders", `{"user_id":"` + ada.ID + `","lines":[{"product_id":"` + p1.ID + `","quantity":1}]}`, 422},
				{"quantity out of range", "POST", "/orders", `{"lines":[{"product_id":"` + p1.ID + `","quantity":0}]}`, 422},
				{"malformed json", "POST", "/orders", `{"lines":`, 400},
				{"unknown product", "POST", "/orders", `{"lines":[{"product_id":"0190f000-0000-7000-8000-000000000000","quantity":1}]}`, 422},
				{"oversize body", "POST", "/orders", `{"lines":"` + strings.Repeat("x", 70<<10) + `"}`, 413},
				{"unknown order", "GET", "/orders/0190f000-0000-7000-8000-000000000000", "", 404},
				{"internal endpoint", "POST", "/../internal/v1/reservations", `{}`, 404},
			}
			for _, b := range bad {
				var body any
				if b.body != "" {
					body = b.body
				}
				r := call(t, b.method, api+b.path, body, as...)
				if r.Status != b.want || r.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("%s: status %d (%s), want %d problem+json; body %s", b.name, r.Status, r.Header.Get("Content-Type"), b.want, r.Body)
				}
			}
			expect(t, 200, call(t, "GET", api+"/orders", nil, as...)).json(t, &mine)
			expect(t, 200, call(t, "GET", api+"/products/"+p1.ID, nil)).json(t, &after)
			if len(mine.Items) != 1 || after.Stock != p1.Stock-2 {
				t.Errorf("bad requests changed state: %d orders, stock %d", len(mine.Items), after.Stock)
			}

			// Concurrent checkouts of the last unit: exactly one wins.
			var last apiProduct
			newProduct := map[string]any{
				"sku": "LAST-1", "name": "Last one", "description": "only one left",
				"price": map[string]any{"amount": 999, "currency": "EUR"}, "stock": 1}
			expect(t, 403, call(t, "POST", api+"/products", newProduct, as...))
			expect(t, 201, call(t, "POST", api+"/products", newProduct, admin...)).json(t, &last)
			const buyers = 20
			var wg sync.WaitGroup
			statuses := make([]string, buyers)
			for i := range buyers {
				wg.Go(func() {
					r := call(t, "POST", api+"/orders", map[string]any{
						"lines": []map[string]any{{"product_id": last.ID, "quantity": 1}}}, as...)
					var o apiOrder
					if r.Status == 202 {
						_ = jsonUnmarshal(r.Body, &o)
						o = awaitFinal(t, api, o.ID, as)
					}
					statuses[i] = fmt.Sprintf("%d %s", r.Status, o.Status)
				})
			}
			wg.Wait()
			counts := map[string]int{}
			for _, s := range statuses {
				counts[s]++
			}
			if counts["202 confirmed"] != 1 || counts["202 rejected"] != buyers-1 {
				t.Errorf("last-unit checkouts = %v, want 1 confirmed and %d rejected", counts, buyers-1)
			}
			expect(t, 200, call(t, "GET", api+"/products/"+last.ID, nil)).json(t, &last)
			if last.Stock != 0 {
				t.Errorf("last product stock = %d, want 0", last.Stock)
			}

			// The walls: no token, a bad token, someone else's order.
			expect(t, 401, call(t, "GET", api+"/orders/"+order.ID, nil))
			if r := call(t, "GET", api+"/orders/"+order.ID, nil, "Authorization", "Bearer "+adaTok+"x"); r.Status != 401 || r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("tampered token: %d, WWW-Authenticate %q", r.Status, r.Header.Get("WWW-Authenticate"))
			}
			_, bobTok := register(t, s.URL, "Bob Other", "bob.other@example.com")
			expect(t, 404, call(t, "GET", api+"/orders/"+order.ID, nil, bearer(bobTok)...))
			expect(t, 200, call(t, "GET", api+"/orders/"+order.ID, nil, admin...))
			expect(t, 403, call(t, "GET", api+"/users", nil, as...))
			expect(t, 200, call(t, "GET", api+"/users", nil, admin...))
			var jwks struct{ Keys []map[string]string }
			expect(t, 200, call(t, "GET", s.URL+"/.well-known/jwks.json", nil)).json(t, &jwks)
			if len(jwks.Keys) == 0 || jwks.Keys[0]["alg"] != "EdDSA" {
				t.Errorf("jwks = %+v", jwks)
			}

			// The public API document, readiness and health.
			var spec struct {
				OpenAPI string         `json:"openapi"`
				Paths   map[string]any `json:"paths"`
			}
			expect(t, 200, call(t, "GET", api+"/openapi.json", nil)).json(t, &spec)
			for _, p := range []string{"/api/v1/auth/login", "/api/v1/users/me", "/api/v1/users", "/api/v1/users/{id}", "/api/v1/products", "/api/v1/products/{id}", "/api/v1/orders", "/api/v1/orders/{id}"} {
				if _, ok := spec.Paths[p]; !ok {
					t.Errorf("OpenAPI document lacks %s", p)
				}
			}
			for p := range spec.Paths {
				if !strings.HasPrefix(p, "/api/v1/") && p != "/.well-known/jwks.json" {
					t.Errorf("OpenAPI document exposes non-public path %s", p)
				}
			}
			if spec.OpenAPI != "3.1.0" {
				t.Errorf("openapi = %q, want 3.1.0", spec.OpenAPI)
			}
			var ready struct {
				Status   string         `json:"status"`
				Services map[string]any `json:"services"`
			}
			expect(t, 200, call(t, "GET", s.URL+"/readyz", nil)).json(t, &ready)
			if ready.Status != "ok" || len(ready.Services) != 3 {
				t.Errorf("readyz = %+v", ready)
			}
			expect(t, 200, call(t, "GET", s.URL+"/healthz", nil))
			if r := call(t, "GET", s.URL+"/metrics", nil); r.Status != http.StatusNotFound {
				t.Errorf("/metrics through the gateway = %d, want 404", r.Status)
			}
		})
	}
}
