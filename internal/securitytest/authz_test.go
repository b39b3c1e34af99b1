package securitytest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestAPI1ObjectLevelAuthorization (OWASP API1:2023, broken object level
// authorization): a customer cannot read another's order or profile, nor
// list another's orders, and cannot even tell them from ids that name
// nothing.
func TestAPI1ObjectLevelAuthorization(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := Start(t, mode, Options{})
			alice, bob, admin := s.Alice.Access, s.Bob.Access, s.Admin.Access
			for _, tg := range s.Targets("orders") {
				t.Run(tg.Name+"/order of someone else", func(t *testing.T) {
					Do(t, "GET", tg.URL+"/api/v1/orders/"+s.AliceOrder, nil, Bearer(alice)...).Want(t, 200)
					Do(t, "GET", tg.URL+"/api/v1/orders/"+s.AliceOrder, nil, Bearer(admin)...).Want(t, 200)
					theirs := Do(t, "GET", tg.URL+"/api/v1/orders/"+s.AliceOrder, nil, Bearer(bob)...)
					none := Do(t, "GET", tg.URL+"/api/v1/orders/"+unknownID, nil, Bearer(bob)...)
					wantIndistinguishable(t, theirs, none)
					if strings.Contains(string(theirs.Body), s.Alice.ID) {
						t.Errorf("%s: the answer names alice", theirs)
					}
				})
				t.Run(tg.Name+"/orders of someone else by user_id", func(t *testing.T) {
					url := tg.URL + "/api/v1/orders?user_id=" + s.Alice.ID
					r := Do(t, "GET", url, nil, Bearer(bob)...)
					if r.Status >= 500 || (r.Status < 400 && r.Status != 200) {
						t.Errorf("%s; want a 4xx refusal or bob's own orders", r)
					}
					if strings.Contains(string(r.Body), s.AliceOrder) || strings.Contains(string(r.Body), s.Alice.ID) {
						t.Errorf("bob listed alice's orders: %s", r)
					}
					own := Do(t, "GET", tg.URL+"/api/v1/orders", nil, Bearer(bob)...).Want(t, 200)
					if strings.Contains(string(own.Body), s.AliceOrder) {
						t.Errorf("bob's own list holds alice's order: %s", own)
					}
					// The control: an admin may list anyone's orders.
					if r := Do(t, "GET", url, nil, Bearer(admin)...).Want(t, 200); !strings.Contains(string(r.Body), s.AliceOrder) {
						t.Errorf("admin's list of alice's orders lacks %s: %s", s.AliceOrder, r)
					}
				})
			}
			for _, tg := range s.Targets("users") {
				t.Run(tg.Name+"/profile of someone else", func(t *testing.T) {
					Do(t, "GET", tg.URL+"/api/v1/users/"+s.Alice.ID, nil, Bearer(alice)...).Want(t, 200)
					Do(t, "GET", tg.URL+"/api/v1/users/"+s.Alice.ID, nil, Bearer(admin)...).Want(t, 200)
					theirs := Do(t, "GET", tg.URL+"/api/v1/users/"+s.Alice.ID, nil, Bearer(bob)...)
					none := Do(t, "GET", tg.URL+"/api/v1/users/"+unknownID, nil, Bearer(bob)...)
					wantIndistinguishable(t, theirs, none)
					if strings.Contains(string(theirs.Body), s.Alice.Email) {
						t.Errorf("%s: the answer holds alice's email", theirs)
					}
				})
			}
		})
	}
}

// wantIndistinguishable checks that the answer about someone else's object is
// a 404 that cannot be told from the answer about an id that names nothing.
func wantIndistinguishable(t *testing.T, theirs, none Response) {
	t.Helper()
	p1 := theirs.WantProblem(t, http.StatusNotFound)
	p2 := none.WantProblem(t, http.StatusNotFound)
	if !sameProblem(p1, p2) {
		t.Errorf("someone else's object: %s\nan unknown id: %s\nwant the same answer", theirs, none)
	}
}

// TestAPI3PropertyLevelAuthorization (OWASP API3:2023, broken object property
// level authorization): clients cannot set properties that are not theirs to
// set (mass assignment), and no answer exposes secrets.
func TestAPI3PropertyLevelAuthorization(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := Start(t, mode, Options{})
			for _, tg := range s.Targets("users") {
				t.Run(tg.Name+"/register", func(t *testing.T) {
					for field, value := range map[string]any{"role": "admin", "id": unknownID, "created_at": "2000-01-01T00:00:00Z",
						"password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "is_admin": true} {
						email := "mass-" + strings.ToLower(newPassword()[:8]) + "@example.com"
						password := newPassword()
						body := map[string]any{"email": email, "password": password, "name": "Mallory", field: value}
						if r := Do(t, "POST", tg.URL+"/api/v1/auth/register", body); r.Status != http.StatusUnprocessableEntity {
							t.Errorf("register with %s: %s; want 422", field, r)
						}
						// Nothing was created: the credentials do not log in.
						Do(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": email, "password": password}).
							WantProblem(t, http.StatusUnauthorized)
					}
					c := s.NewCustomer(t, "Mallory")
					if me := s.Me(t, c.Access); me["role"] != "customer" {
						t.Errorf("a registered user has role %v, want customer", me["role"])
					}
				})
			}
			for _, tg := range s.Targets("orders") {
				t.Run(tg.Name+"/order", func(t *testing.T) {
					before := countOrders(t, tg.URL, s.Alice.Access)
					line := map[string]any{"product_id": s.Product, "quantity": 1}
					for name, body := range map[string]map[string]any{
						"user_id":     {"user_id": s.Bob.ID, "lines": []any{line}},
						"own user_id": {"user_id": s.Alice.ID, "lines": []any{line}},
						"status":      {"status": "confirmed", "lines": []any{line}},
						"id":          {"id": unknownID, "lines": []any{line}},
						"total":       {"total": map[string]any{"amount": 1, "currency": "EUR"}, "lines": []any{line}},
						"unit_price":  {"lines": []any{map[string]any{"product_id": s.Product, "quantity": 1, "unit_price": map[string]any{"amount": 1, "currency": "EUR"}}}},
					} {
						if r := Do(t, "POST", tg.URL+"/api/v1/orders", body, Bearer(s.Alice.Access)...); r.Status != http.StatusUnprocessableEntity {
							t.Errorf("order with %s: %s; want 422", name, r)
						}
					}
					if after := countOrders(t, tg.URL, s.Alice.Access); after != before {
						t.Errorf("alice has %d orders after the refused ones, want %d", after, before)
					}
				})
			}
			for _, tg := range s.Targets("products") {
				t.Run(tg.Name+"/product", func(t *testing.T) {
					url := tg.URL + "/api/v1/products/" + s.Product
					before := Do(t, "GET", url, nil).Want(t, 200)
					for name, body := range map[string]map[string]any{
						"id":         {"id": unknownID},
						"created_at": {"created_at": "2000-01-01T00:00:00Z"},
						"updated_at": {"updated_at": "2000-01-01T00:00:00Z"},
						"sku":        {"sku": "OTHER-1"},
						"reserved":   {"reserved": 0, "name": "Renamed"},
					} {
						if r := Do(t, "PATCH", url, body, Bearer(s.Admin.Access)...); r.Status != http.StatusUnprocessableEntity {
							t.Errorf("patch with %s: %s; want 422", name, r)
						}
					}
					if after := Do(t, "GET", url, nil).Want(t, 200); string(after.Body) != string(before.Body) {
						t.Errorf("refused patches changed the product:\nbefore %s\nafter  %s", before.Body, after.Body)
					}
				})
			}
			t.Run("no secrets in answers", func(t *testing.T) {
				c := s.NewCustomer(t, "Trent")
				var answers []Response
				for _, tg := range s.Targets("users") {
					answers = append(answers,
						Do(t, "POST", tg.URL+"/api/v1/auth/register", map[string]string{"email": "v-" + strings.ToLower(newPassword()[:8]) + "@example.com", "password": newPassword(), "name": "Victor"}).Want(t, 201),
						Do(t, "POST", tg.URL+"/api/v1/auth/login", map[string]string{"email": c.Email, "password": c.Password}).Want(t, 200),
						Do(t, "GET", tg.URL+"/api/v1/users/me", nil, Bearer(c.Access)...).Want(t, 200),
						Do(t, "GET", tg.URL+"/api/v1/users/"+c.ID, nil, Bearer(c.Access)...).Want(t, 200),
						Do(t, "GET", tg.URL+"/api/v1/users/"+c.ID, nil, Bearer(s.Admin.Access)...).Want(t, 200),
						Do(t, "GET", tg.URL+"/api/v1/users?limit=100", nil, Bearer(s.Admin.Access)...).Want(t, 200),
						Do(t, "POST", tg.URL+"/api/v1/users", map[string]string{"email": "w-" + strings.ToLower(newPassword()[:8]) + "@example.com", "name": "Walter"}, Bearer(s.Admin.Access)...).Want(t, 201),
					)
				}
				var tok TokenResponse
				Do(t, "POST", s.Gateway+"/api/v1/auth/login", map[string]string{"email": c.Email, "password": c.Password}).Want(t, 200).JSON(t, &tok)
				answers = append(answers, Do(t, "POST", s.Gateway+"/api/v1/auth/refresh", map[string]string{"refresh_token": tok.RefreshToken}).Want(t, 200))
				for _, tg := range s.Targets("orders") {
					answers = append(answers,
						Do(t, "GET", tg.URL+"/api/v1/orders/"+s.AliceOrder, nil, Bearer(s.Alice.Access)...).Want(t, 200),
						Do(t, "GET", tg.URL+"/api/v1/orders", nil, Bearer(s.Alice.Access)...).Want(t, 200))
				}
				for _, r := range answers {
					wantNoSecrets(t, r)
				}
			})
		})
	}
}

// countOrders returns how many orders token's user has (the first page is
// enough for the tests).
func countOrders(t *testing.T, base, token string) int {
	t.Helper()
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	Do(t, "GET", base+"/api/v1/orders?limit=100", nil, Bearer(token)...).Want(t, 200).JSON(t, &page)
	return len(page.Items)
}

// secretWords are parts of property names that must never appear in an answer.
var secretWords = []string{"password", "hash", "salt", "secret", "private"}

// wantNoSecrets checks that no property name of the JSON answer names a
// secret and that no value is a password hash.
func wantNoSecrets(t *testing.T, r Response) {
	t.Helper()
	if strings.Contains(string(r.Body), "$argon2") {
		t.Errorf("%s: holds a password hash", r)
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Errorf("%s: not JSON: %v", r, err)
		return
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				lk := strings.ToLower(k)
				if slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(lk, w) }) {
					t.Errorf("%s: property %s%s names a secret", r, path, k)
				}
				walk(path+k+".", e)
			}
		case []any:
			for _, e := range v {
				walk(path+"[].", e)
			}
		}
	}
	walk("", v)
}

// TestAPI5FunctionLevelAuthorization (OWASP API5:2023, broken function level
// authorization): customers cannot use admin functions and anonymous callers
// cannot use anything but the public routes, at the gateway and at every
// service, which checks again itself.
func TestAPI5FunctionLevelAuthorization(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := Start(t, mode, Options{})
			product := s.Gateway + "/api/v1/products/" + s.Product
			before := Do(t, "GET", product, nil).Want(t, 200)
			type call struct {
				service, method, path string
				body                  func() any
			}
			newUser := func() any {
				return map[string]string{"email": "u-" + strings.ToLower(newPassword()[:8]) + "@example.com", "name": "Uma"}
			}
			adminOnly := []call{
				{"products", "POST", "/api/v1/products", newProductBody},
				{"products", "PATCH", "/api/v1/products/" + s.Product, func() any { return map[string]any{"name": "Pwned", "stock": 0} }},
				{"users", "GET", "/api/v1/users", nil},
				{"users", "POST", "/api/v1/users", newUser},
			}
			needUser := append(slices.Clone(adminOnly),
				call{"users", "GET", "/api/v1/users/me", nil},
				call{"users", "GET", "/api/v1/users/" + s.Alice.ID, nil},
				call{"orders", "GET", "/api/v1/orders", nil},
				call{"orders", "GET", "/api/v1/orders/" + s.AliceOrder, nil},
				call{"orders", "POST", "/api/v1/orders", func() any { return orderBody(s.Product, 1) }},
			)
			send := func(t *testing.T, base string, c call, headers ...string) Response {
				var body any
				if c.body != nil {
					body = c.body()
				}
				return Do(t, c.method, base+c.path, body, headers...)
			}
			for _, c := range adminOnly {
				for _, tg := range s.Targets(c.service) {
					t.Run(tg.Name+"/customer "+c.method+" "+c.path, func(t *testing.T) {
						send(t, tg.URL, c, Bearer(s.Alice.Access)...).WantProblem(t, http.StatusForbidden)
					})
				}
			}
			for _, c := range needUser {
				for _, tg := range s.Targets(c.service) {
					t.Run(tg.Name+"/anonymous "+c.method+" "+c.path, func(t *testing.T) {
						send(t, tg.URL, c).WantUnauthorized(t)
					})
				}
			}
			if after := Do(t, "GET", product, nil).Want(t, 200); string(after.Body) != string(before.Body) {
				t.Errorf("refused calls changed the product:\nbefore %s\nafter  %s", before.Body, after.Body)
			}
			// The control: the admin may.
			for _, c := range adminOnly {
				if c.method == "PATCH" {
					c.body = func() any { return map[string]any{"description": "changed by the admin"} }
				}
				if r := send(t, s.Gateway, c, Bearer(s.Admin.Access)...); r.Status >= 300 {
					t.Errorf("admin: %s; want success", r)
				}
			}
		})
	}
}
