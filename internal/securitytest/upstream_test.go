package securitytest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/system"
)

// hostile is the marker of what a hostile upstream sends: it must never
// reach a client.
const hostile = "HOSTILE-7c1e"

// TestAPI10UnsafeConsumption (OWASP API10:2023, unsafe consumption of APIs):
// orders reads users' answers as untrusted input. Each case starts an orders
// service whose users upstream answers with something hostile (the JWKS is
// the real one, so tokens still verify) and reads alice's order from it,
// directly and through a gateway in front of it: the answer is a 200 without
// the user ("degraded"), never the hostile content, within the deadline.
func TestAPI10UnsafeConsumption(t *testing.T) {
	t.Parallel()
	s := StartServices(t, Options{})
	realUsers, err := url.Parse(s.Services["users"])
	if err != nil {
		t.Fatal(err)
	}
	jwks := httputil.NewSingleHostReverseProxy(realUsers)

	var stolen atomic.Int64 // requests that reached where a redirect pointed
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"` + s.Alice.ID + `","name":"` + hostile + `","email":"x@example.com","role":"admin"}`))
	}))
	t.Cleanup(elsewhere.Close)

	userJSON := func(id, name string, extra string) string {
		return `{"id":"` + id + `","name":"` + name + `","email":"alice@example.com","role":"customer","created_at":"2024-01-01T00:00:00Z"` + extra + `}`
	}
	type mode struct {
		name     string
		handler  func(w http.ResponseWriter, r *http.Request, stop <-chan struct{})
		wantUser bool // the answer is acceptable: the user is shown, cleaned
	}
	writeJSON := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
	modes := []mode{
		{name: "a different user", handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			writeJSON(w, 200, userJSON(s.Bob.ID, hostile, ""))
		}},
		{name: "a 10 MiB body", handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":"` + s.Alice.ID + `","email":"alice@example.com","role":"customer","name":"`))
			chunk := []byte(strings.Repeat(hostile, 64<<10/len(hostile)))
			for written := 0; written < 10<<20; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return // the reader gave up, as it should
				}
			}
			w.Write([]byte(`"}`))
		}},
		{name: "invalid JSON", handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			writeJSON(w, 200, `{"id":"`+s.Alice.ID+`","name":"`+hostile+`",`)
		}},
		{name: "JSON of the wrong shape", handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			writeJSON(w, 200, `[{"id":"`+s.Alice.ID+`","name":{"`+hostile+`":1}}]`)
		}},
		{name: "500 with a stack trace", handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(500)
			w.Write([]byte("panic: " + hostile + "\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/users/main.go:12 +0x1d\nsql: database is locked\n"))
		}},
		{name: "a problem with a hostile detail", handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			w.Write([]byte(`{"type":"/problems/not-found","title":"Not found","status":404,"detail":"` + hostile + ` <script>alert(1)</script>"}`))
		}},
		{name: "a redirect elsewhere", handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
		}},
		{name: "no answer (slow)", handler: func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}},
		{name: "extra fields", wantUser: true, handler: func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
			writeJSON(w, 200, userJSON(s.Alice.ID, s.Alice.Name, `,"password_hash":"`+hostile+`","is_admin":true,"`+hostile+`":1`))
		}},
	}

	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int64
			stop := make(chan struct{})
			users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/.well-known/jwks.json" {
					jwks.ServeHTTP(w, r)
					return
				}
				hits.Add(1)
				m.handler(w, r, stop)
			}))
			t.Cleanup(users.Close)
			t.Cleanup(func() { close(stop) }) // runs first: unblocks the slow handler

			cfg := s.Config
			cfg.UsersURL = users.URL
			orders, err := system.Service(context.Background(), "orders", cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(orders.Close)
			ordersSrv := httptest.NewServer(orders.Handler)
			t.Cleanup(ordersSrv.Close)

			gcfg := s.Config
			gcfg.OrdersURL = ordersSrv.URL
			gw, err := system.Service(context.Background(), "gateway", gcfg)
			if err != nil {
				t.Fatal(err)
			}
			gwSrv := httptest.NewServer(gw.Handler)
			t.Cleanup(gwSrv.Close)

			for _, tg := range []Target{{"orders", ordersSrv.URL}, {"gateway", gwSrv.URL}} {
				start := time.Now()
				r := Do(t, "GET", tg.URL+"/api/v1/orders/"+s.AliceOrder, nil, Bearer(s.Alice.Access)...)
				took := time.Since(start)
				if took > server.MaxBudget+5*time.Second {
					t.Errorf("%s: took %v, longer than the request budget %v", tg.Name, took, server.MaxBudget)
				}
				t.Logf("%s: answered in %v", tg.Name, took.Round(time.Millisecond))
				r.Want(t, 200)
				var o struct {
					ID       string          `json:"id"`
					User     json.RawMessage `json:"user"`
					Degraded []string        `json:"degraded"`
				}
				r.JSON(t, &o)
				if o.ID != s.AliceOrder {
					t.Errorf("%s: order %q, want %q", tg.Name, o.ID, s.AliceOrder)
				}
				if m.wantUser {
					var u map[string]any
					decode(t, o.User, &u)
					if u["id"] != s.Alice.ID || len(o.Degraded) != 0 {
						t.Errorf("%s: user %s, degraded %v; want alice and nothing degraded", tg.Name, o.User, o.Degraded)
					}
				} else if string(o.User) != "null" || len(o.Degraded) != 1 || o.Degraded[0] != "user" {
					t.Errorf("%s: user %s, degraded %v; want null and [user]", tg.Name, o.User, o.Degraded)
				}
				body := string(r.Body)
				for _, bad := range []string{hostile, "<script>", "goroutine", "main.go", "sql:", "password_hash", "is_admin", s.Bob.ID} {
					if strings.Contains(body, bad) {
						t.Errorf("%s: the answer holds %q from the hostile upstream: %s", tg.Name, bad, r)
					}
				}
				if hits.Load() == 0 {
					t.Fatalf("%s: the hostile users service was never asked", tg.Name)
				}
			}
			if n := stolen.Load(); n != 0 { // only the redirect leads there
				t.Errorf("orders followed a redirect of its upstream %d times", n)
			}
		})
	}
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
