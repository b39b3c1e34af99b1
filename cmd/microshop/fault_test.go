package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/tcpfault"
	"github.com/microshop/microshop/internal/supervisor"
)

// readyz is the part of the gateway's readiness report the fault tests read.
type readyz struct {
	Status   string `json:"status"`
	Services struct {
		Orders struct {
			Upstreams map[string]struct {
				Breaker string `json:"breaker"`
			} `json:"upstreams"`
		} `json:"orders"`
	} `json:"services"`
}

func breakerState(t *testing.T, s *running, upstream string) string {
	t.Helper()
	var r readyz
	call(t, "GET", s.URL+"/readyz", nil).json(t, &r)
	return r.Services.Orders.Upstreams[upstream].Breaker
}

func servicePID(t *testing.T, s *running, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir, "run", "services.json"))
	if err != nil {
		t.Fatal(err)
	}
	var states map[string]supervisor.State
	if err := json.Unmarshal(b, &states); err != nil {
		t.Fatal(err)
	}
	return states[name].PID
}

// TestKillUsers kills the users process with SIGKILL. Order reads must degrade
// instead of failing, orders' breaker to users must open, order creation must
// fail cleanly without leaving anything behind, the other services must keep
// serving, and once the supervisor has restarted users the breaker must close.
func TestKillUsers(t *testing.T) {
	s := startSystem(t, "--restart-delay", "6s")
	api := s.URL + "/api/v1"
	_, tok := register(t, s.URL, "Ada", "ada@example.com")
	as := bearer(tok)
	var catalog apiPage[apiProduct]
	expect(t, 200, call(t, "GET", api+"/products", nil)).json(t, &catalog)
	p := catalog.Items[0]
	var order apiOrder
	expect(t, 201, call(t, "POST", api+"/orders", map[string]any{
		"lines": []map[string]any{{"product_id": p.ID, "quantity": 1}}}, as...)).json(t, &order)

	pid := servicePID(t, s, "users")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// Reads degrade: 200, the order's own data, user null, "user" named.
	for range 3 {
		var got apiOrder
		expect(t, 200, call(t, "GET", api+"/orders/"+order.ID, nil, as...)).json(t, &got)
		if got.ID != order.ID || got.User != nil || len(got.Degraded) != 1 || got.Degraded[0] != "user" || got.Lines[0].Product == nil {
			t.Fatalf("order read with users down = %+v, want user null and degraded [user]", got)
		}
	}
	if st := breakerState(t, s, "users"); st != "open" {
		t.Errorf("orders→users breaker = %q, want open", st)
	}
	// Creation fails with a problem, Retry-After, and leaves nothing behind.
	r := call(t, "POST", api+"/orders", map[string]any{
		"lines": []map[string]any{{"product_id": p.ID, "quantity": 1}}}, as...)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("order creation with users down = %d (Retry-After %q), want 503 with Retry-After; %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	var prob apiProblem
	r.json(t, &prob)
	if prob.Type != "/problems/upstream-unavailable" {
		t.Errorf("problem type = %q", prob.Type)
	}
	var after apiProduct
	expect(t, 200, call(t, "GET", api+"/products/"+p.ID, nil)).json(t, &after)
	if after.Stock != p.Stock-1 {
		t.Errorf("stock = %d after a failed checkout, want %d", after.Stock, p.Stock-1)
	}
	if time.Since(killed) > 6*time.Second {
		t.Log("warning: checks above ran past the restart delay; users may have been back")
	}

	// users comes back (restarted by the supervisor); the breaker closes.
	eventually(t, 60*time.Second, "order read no longer degraded", func() bool {
		var got apiOrder
		r := call(t, "GET", api+"/orders/"+order.ID, nil, as...)
		return r.Status == 200 && json.Unmarshal(r.Body, &got) == nil && got.User != nil && len(got.Degraded) == 0
	})
	if st := breakerState(t, s, "users"); st != "closed" {
		t.Errorf("orders→users breaker after recovery = %q, want closed", st)
	}
	t.Logf("users killed; reads degraded, breaker opened, and closed again %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	if newPID := servicePID(t, s, "users"); newPID == pid {
		t.Errorf("users was not restarted (pid %d)", pid)
	}
}

// TestSlowProducts puts a real TCP proxy with 30 s of latency between orders and
// products (each its own process) and checks that every request still answers
// within its deadline: reads degrade, creation fails with 504 and nothing is
// reserved or stored.
func TestSlowProducts(t *testing.T) {
	dir := t.TempDir()
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	addr := func() string {
		a, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	usersAddr, productsAddr, ordersAddr := addr(), addr(), addr()
	_, ordersKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peers := []string{"--data-dir", dir, "--log-level", "warn", "--users-url", "http://" + usersAddr}
	startChild(t, logs, nil, append([]string{"serve", "users", "--addr", usersAddr}, peers...)...)
	startChild(t, logs, []string{"MICROSHOP_TRUSTED_SERVICES=orders=" + auth.EncodePublic(ordersKey.Public().(ed25519.PublicKey))},
		append([]string{"serve", "products", "--addr", productsAddr}, peers...)...)
	proxy, err := tcpfault.Listen(productsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	startChild(t, logs, []string{"MICROSHOP_SERVICE_KEY=" + auth.EncodeKey(ordersKey)},
		append([]string{"serve", "orders", "--addr", ordersAddr, "--products-url", "http://" + proxy.Addr()}, peers...)...)
	for _, a := range []string{usersAddr, productsAddr, ordersAddr} {
		waitHealthy(t, "http://"+a)
	}

	_, tok := register(t, "http://"+usersAddr, "Ada", "ada@example.com")
	as := bearer(tok)
	var catalog apiPage[apiProduct]
	expect(t, 200, call(t, "GET", "http://"+productsAddr+"/api/v1/products", nil)).json(t, &catalog)
	p := catalog.Items[0]
	orders := "http://" + ordersAddr + "/api/v1/orders"
	line := map[string]any{"lines": []map[string]any{{"product_id": p.ID, "quantity": 1}}}
	var order apiOrder
	expect(t, 201, call(t, "POST", orders, line, as...)).json(t, &order)

	proxy.SetLatency(30 * time.Second)
	const budget = 1500 * time.Millisecond
	budgetHeader := strconv.Itoa(int(budget.Milliseconds()))

	start := time.Now()
	var got apiOrder
	expect(t, 200, call(t, "GET", orders+"/"+order.ID, nil, append(as, "X-Request-Timeout-Ms", budgetHeader)...)).json(t, &got)
	if got.User == nil || len(got.Degraded) != 1 || got.Degraded[0] != "products" || got.Lines[0].Product != nil {
		t.Errorf("order read with slow products = %+v, want products degraded", got)
	}
	// Bounds are loose on purpose: they prove the 30 s latency did not hold the request.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("degraded read took %v with a %v budget", d, budget)
	} else {
		t.Logf("degraded read with products 30 s slow answered in %v (budget %v)", d.Round(time.Millisecond), budget)
	}

	start = time.Now()
	r := call(t, "POST", orders, line, append(as, "X-Request-Timeout-Ms", budgetHeader)...)
	if r.Status != 504 && r.Status != 503 {
		t.Errorf("order creation with slow products = %d, want 504 (or 503 once the breaker opened); %s", r.Status, r.Body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failed creation took %v with a %v budget", d, budget)
	} else {
		t.Logf("checkout with products 30 s slow answered %d in %v (budget %v)", r.Status, d.Round(time.Millisecond), budget)
	}

	proxy.SetLatency(0)
	var mine apiPage[apiOrder]
	expect(t, 200, call(t, "GET", orders, nil, as...)).json(t, &mine)
	if len(mine.Items) != 1 {
		t.Errorf("orders after the slow checkout = %d, want 1 (nothing half-done)", len(mine.Items))
	}
	var after apiProduct
	expect(t, 200, call(t, "GET", "http://"+productsAddr+"/api/v1/products/"+p.ID, nil)).json(t, &after)
	if after.Stock != p.Stock-1 {
		t.Errorf("stock = %d, want %d (nothing reserved by the failed checkout)", after.Stock, p.Stock-1)
	}
}
