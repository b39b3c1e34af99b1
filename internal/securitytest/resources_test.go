package securitytest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/gateway"
)

// TestAPI4ResourceConsumption (OWASP API4:2023, unrestricted resource
// consumption): bodies, pages, batches and orders are bounded, and the
// gateway limits request rates per client, per user and on the
// authentication endpoints.
func TestAPI4ResourceConsumption(t *testing.T) {
	t.Parallel()
	t.Run("bounds", func(t *testing.T) {
		t.Parallel()
		s := StartServices(t, Options{})
		big := `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`
		type bodyCase struct {
			service, method, path, token string
		}
		for _, c := range []bodyCase{
			{"users", "POST", "/api/v1/auth/register", ""},
			{"users", "POST", "/api/v1/auth/login", ""},
			{"users", "POST", "/api/v1/users", s.Admin.Access},
			{"products", "POST", "/api/v1/products", s.Admin.Access},
			{"products", "PATCH", "/api/v1/products/" + s.Product, s.Admin.Access},
			{"orders", "POST", "/api/v1/orders", s.Alice.Access},
		} {
			for _, tg := range s.Targets(c.service) {
				for _, chunked := range []bool{false, true} {
					name := tg.Name + "/body over 64 KiB " + c.method + " " + c.path
					var body any = big
					if chunked {
						name += " (chunked)"
						body = strings.NewReader(big)
					}
					t.Run(name, func(t *testing.T) {
						var h []string
						if c.token != "" {
							h = Bearer(c.token)
						}
						Do(t, c.method, tg.URL+c.path, body, h...).WantProblem(t, http.StatusRequestEntityTooLarge)
					})
				}
			}
		}

		ids := make([]string, 101)
		for i := range ids {
			ids[i] = unknownID
		}
		line := map[string]any{"product_id": s.Product, "quantity": 1}
		lines := make([]any, 21)
		for i := range lines {
			lines[i] = line
		}
		type boundCase struct {
			name, service, method, path, token string
			body                               any
		}
		for _, c := range []boundCase{
			{"products limit=1000", "products", "GET", "/api/v1/products?limit=1000", "", nil},
			{"products 101 ids", "products", "GET", "/api/v1/products?ids=" + strings.Join(ids, ","), "", nil},
			{"products q over 100 characters", "products", "GET", "/api/v1/products?q=" + strings.Repeat("q", 101), "", nil},
			{"products cursor over 300 characters", "products", "GET", "/api/v1/products?cursor=" + strings.Repeat("c", 301), "", nil},
			{"orders limit=1000", "orders", "GET", "/api/v1/orders?limit=1000", s.Alice.Access, nil},
			{"users limit=1000", "users", "GET", "/api/v1/users?limit=1000", s.Admin.Access, nil},
			{"order of 21 lines", "orders", "POST", "/api/v1/orders", s.Alice.Access, map[string]any{"lines": lines}},
			{"order line of 101 units", "orders", "POST", "/api/v1/orders", s.Alice.Access, orderBody(s.Product, 101)},
		} {
			for _, tg := range s.Targets(c.service) {
				t.Run(tg.Name+"/"+c.name, func(t *testing.T) {
					var h []string
					if c.token != "" {
						h = Bearer(c.token)
					}
					r := Do(t, c.method, tg.URL+c.path, c.body, h...)
					if r.Status < 400 || r.Status >= 500 {
						t.Errorf("%s; want a 4xx refusal", r)
					} else if r.Status != http.StatusUnprocessableEntity {
						t.Logf("%s: %d, not 422", c.name, r.Status)
					}
					if _, ok := r.Problem(); !ok {
						t.Errorf("%s; want a problem", r)
					}
				})
			}
		}
	})

	t.Run("rate per client", func(t *testing.T) {
		t.Parallel()
		s := StartServices(t, Options{Limits: gateway.Limits{PerClient: 5, PerUser: -1, AuthPerMin: -1}, NoFixtures: true})
		i := 0
		r := untilLimited(t, 100, func() Response {
			i++ // a forged X-Forwarded-For must not make a new client
			return Do(t, "GET", s.Gateway+"/api/v1/products?limit=1", nil, "X-Forwarded-For", "203.0.113."+strconv.Itoa(i%250+1))
		})
		wantLimited(t, r, "/problems/rate-limited")
		wantGatewayHeaders(t, r)
	})

	t.Run("rate per user and on the authentication endpoints", func(t *testing.T) {
		t.Parallel()
		// The fixtures make 2 registrations and 3 logins (the authentication
		// limit's burst is 10) and 1 authenticated request of alice's (the
		// per-user burst is 2).
		s := StartServices(t, Options{Limits: gateway.Limits{PerClient: -1, PerUser: 1, AuthPerMin: 1}})
		i := 0
		r := untilLimited(t, 30, func() Response {
			i++
			return Do(t, "POST", s.Gateway+"/api/v1/auth/refresh", map[string]string{"refresh_token": "guess-" + strconv.Itoa(i)},
				"X-Forwarded-For", "203.0.113."+strconv.Itoa(i%250+1), "X-Real-Ip", "198.51.100."+strconv.Itoa(i%250+1))
		})
		wantLimited(t, r, "/problems/rate-limited")
		wantGatewayHeaders(t, r)
		// Logins and registrations share the limit; other routes do not.
		wantLimited(t, Do(t, "POST", s.Gateway+"/api/v1/auth/login", map[string]string{"email": s.Alice.Email, "password": s.Alice.Password}), "/problems/rate-limited")
		Do(t, "GET", s.Gateway+"/api/v1/products?limit=1", nil).Want(t, 200)

		r = untilLimited(t, 30, func() Response { return Do(t, "GET", s.Gateway+"/api/v1/users/me", nil, Bearer(s.Alice.Access)...) })
		wantLimited(t, r, "/problems/rate-limited")
		// Another user is not limited by alice's requests.
		Do(t, "GET", s.Gateway+"/api/v1/users/me", nil, Bearer(s.Bob.Access)...).Want(t, 200)
	})
}

// untilLimited repeats do until it answers 429, at most n times, and
// returns that answer.
func untilLimited(t *testing.T, n int, do func() Response) Response {
	t.Helper()
	for range n {
		if r := do(); r.Status == http.StatusTooManyRequests {
			return r
		} else if r.Status >= 500 {
			t.Fatalf("%s; want success or 429", r)
		}
	}
	t.Fatalf("no 429 after %d requests", n)
	return Response{}
}

// wantLimited checks a 429 problem of type typ with a Retry-After.
func wantLimited(t *testing.T, r Response, typ string) {
	t.Helper()
	if p := r.WantProblem(t, http.StatusTooManyRequests); p.Type != typ {
		t.Errorf("%s: type %q, want %q", r, p.Type, typ)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("%s: Retry-After = %q, want a positive number of seconds", r, r.Header.Get("Retry-After"))
	}
}
