package main

// The client side of the saga tests: a system that can be stopped before the
// test ends (to read its databases), customers that place and cancel orders
// while faults are injected, recording every request in a history
// (internal/history), and the final check.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/history"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
	"github.com/microshop/microshop/internal/supervisor"
	"github.com/microshop/microshop/internal/system"
)

// sagaFlags are the run flags of every saga test: supervisor restarts after
// 2 s, and no rate limits (the burst comes from one client address).
var sagaFlags = []string{"--restart-delay", "2s", "--rate-per-client", "-1", "--rate-per-user", "-1", "--auth-per-minute", "-1"}

// shop is a running system under a saga test, with its admin, the products
// created for the test, its customers and the history of their requests.
type shop struct {
	t             *testing.T
	name          string
	URL, api      string
	DataDir       string
	NATSURL       string
	logs          *lockedBuffer
	stop          func() error  // stops the system; idempotent
	quit          chan struct{} // closed when the test ends: clients stop retrying
	adminPassword string
	admin         []string
	products      []apiProduct
	initial       map[string]int
	customers     []customer
	h             *history.History
	readProc      int // process number for observations, above the customers'

	// Event stream watchers (GET /api/v1/orders/{id}/events).
	watchers     sync.WaitGroup
	watchCtx     context.Context
	stopWatching context.CancelFunc
	watchProc    atomic.Int64
	mu           sync.Mutex
	streamErrors []string // statuses a stream sent out of the life cycle's order
	streamed     int      // status events received
}

type customer struct {
	apiUser
	auth []string
}

// openShop starts the system in services mode with a fresh data directory,
// creates products with the given stocks and n customers.
func openShop(t *testing.T, name string, stocks []int, n int) *shop {
	t.Helper()
	s := &shop{t: t, name: name, DataDir: t.TempDir(), logs: &lockedBuffer{}, initial: map[string]int{},
		h: history.New(), readProc: 1_000_000}
	s.start()
	s.watchCtx, s.stopWatching = context.WithCancel(context.Background())
	t.Cleanup(func() { s.stopWatching(); s.watchers.Wait() })
	s.watchProc.Store(2_000_000)
	s.api = s.URL + "/api/v1"
	if s.NATSURL == "" {
		s.NATSURL = "nats://" + s.addr("nats")
	}
	s.admin = bearer(login(t, s.URL, adminEmail, s.adminPassword))
	for i, stock := range stocks {
		var p apiProduct
		expect(t, 201, call(t, "POST", s.api+"/products", map[string]any{
			"sku": fmt.Sprintf("%s-%d", strings.ToUpper(name), i), "name": fmt.Sprintf("%s product %d", name, i),
			"description": "saga test", "price": map[string]any{"amount": 100 + i, "currency": "EUR"}, "stock": stock,
		}, s.admin...)).json(t, &p)
		s.products = append(s.products, p)
		s.initial[p.ID] = stock
	}
	for i := range n {
		u, tok := register(t, s.URL, fmt.Sprintf("Customer %d", i), fmt.Sprintf("%s-%d@example.com", strings.ToLower(name), i))
		s.customers = append(s.customers, customer{apiUser: u, auth: bearer(tok)})
	}
	// One request first, so that orders has fetched the token keys before
	// the burst: concurrent first requests may be refused while it fetches
	// (see "JWKS cold start" in docs/reliability.md).
	expect(t, 200, call(t, "GET", s.api+"/orders", nil, s.customers[0].auth...))
	return s
}

// start runs the system as startSystem does, but keeps the means to stop it
// before the test ends.
func (s *shop) start() {
	t := s.t
	t.Helper()
	args := append([]string{"run", "--addr", "127.0.0.1:0", "--data-dir", s.DataDir, "--log-level", "warn"}, sagaFlags...)
	if url := externalNATS(t); url != "" {
		args = append(args, "--nats-url", url)
	}
	s.adminPassword = newPassword()
	env := map[string]string{"MICROSHOP_ADMIN_EMAIL": adminEmail, "MICROSHOP_ADMIN_PASSWORD": s.adminPassword}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, func(k string) string { return env[k] }, pw, s.logs)
		pw.Close()
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "ready at ") {
				ready <- line
			}
		}
	}()
	select {
	case line := <-ready:
		s.URL = strings.Fields(line[strings.Index(line, "ready at ")+len("ready at "):])[0]
		if i := strings.Index(line, "nats nats://"); i >= 0 {
			s.NATSURL = strings.TrimRight(strings.Fields(line[i+len("nats "):])[0], ";,)")
		}
	case err := <-errc:
		cancel()
		t.Fatalf("run exited before it was ready: %v\n%s", err, s.logs)
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatalf("system not ready after 90s\n%s", s.logs)
	}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-errc:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("run did not stop within 30s of cancellation")
			}
		})
		return stopErr
	}
	s.quit = make(chan struct{})
	t.Cleanup(func() {
		close(s.quit)
		if err := s.stop(); err != nil {
			t.Errorf("run returned %v", err)
		}
		if t.Failed() {
			t.Logf("system logs:\n%s", s.logs)
		}
	})
}

// --- processes ---

// pid returns the pid of the named process from the supervisor's state file.
func (s *shop) pid(name string) int {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir, "run", "services.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	var states map[string]supervisor.State
	if err := json.Unmarshal(b, &states); err != nil {
		s.t.Fatal(err)
	}
	return states[name].PID
}

func (s *shop) addr(name string) string {
	b, err := os.ReadFile(filepath.Join(s.DataDir, "run", "services.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	var states map[string]supervisor.State
	if err := json.Unmarshal(b, &states); err != nil {
		s.t.Fatal(err)
	}
	return states[name].Addr
}

// signal sends sig to the named process and returns its pid.
func (s *shop) signal(name string, sig syscall.Signal) int {
	s.t.Helper()
	pid := s.pid(name)
	if err := syscall.Kill(pid, sig); err != nil {
		s.t.Fatalf("%s %s (pid %d): %v", sig, name, pid, err)
	}
	s.t.Logf("%s: sent %s to %s (pid %d)", time.Now().Format("15:04:05.000"), signalNames[sig], name, pid)
	return pid
}

var signalNames = map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGSTOP: "SIGSTOP", syscall.SIGCONT: "SIGCONT"}

// awaitRestart waits until the supervisor has replaced the process old and the
// new one serves (answers /healthz, or accepts connections for nats), and
// returns when it did.
func (s *shop) awaitRestart(name string, old int) time.Time {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if pid := s.pid(name); pid != 0 && pid != old && s.serves(name) {
			now := time.Now()
			s.t.Logf("%s: %s back (pid %d)", now.Format("15:04:05.000"), name, pid)
			return now
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("%s was not restarted within 60s", name)
	return time.Time{}
}

func (s *shop) serves(name string) bool {
	addr := s.addr(name)
	if name == "nats" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// --- the client ---

// sagaClient sends the customers' requests; a request that gets no answer in
// time has an unknown outcome.
var sagaClient = &http.Client{Timeout: 15 * time.Second}

// try sends one request and returns the status and body, or the transport error.
func try(method, url string, body any, headers []string, extra ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	h := append(slices.Clone(headers), extra...)
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := sagaClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err // the answer was cut: unknown
	}
	return resp.StatusCode, b, nil
}

// definite reports whether an error status says the request certainly did
// nothing: a 4xx other than 408 (timeout), 409 request-in-progress and 429.
func definite(status int, body []byte) bool {
	switch {
	case status == 408 || status == 429:
		return false
	case status == 409:
		return !bytes.Contains(body, []byte("request-in-progress"))
	}
	return status >= 400 && status < 500
}

func toLines(ls []map[string]any) []history.Line {
	out := make([]history.Line, len(ls))
	for i, l := range ls {
		out[i] = history.Line{ProductID: l["product_id"].(string), Quantity: l["quantity"].(int)}
	}
	return out
}

// retryFor is how long a client keeps retrying a request with an unknown
// outcome (with the same Idempotency-Key) before it gives up.
const retryFor = 60 * time.Second

// place places an order for c as process p with the Idempotency-Key key,
// retrying with the same key while the outcome is unknown. It returns the
// order id, or "" when the order was refused or the client gave up.
func (s *shop) place(p int, c customer, key string, lines []map[string]any) string {
	body := map[string]any{"lines": lines}
	backoff := 100 * time.Millisecond
	for start := time.Now(); ; {
		call := s.h.Invoke(p, history.Op{Kind: history.Place, User: c.ID, Key: key, Lines: toLines(lines)})
		status, b, err := try("POST", s.api+"/orders", body, c.auth, "Idempotency-Key", key)
		var o apiOrder
		switch {
		case err == nil && (status == 202 || status == 200) && json.Unmarshal(b, &o) == nil && o.ID != "":
			call.OK(o.ID, o.Status, status)
			return o.ID
		case err == nil && definite(status, b):
			call.Fail(status, firstLine(b))
			return ""
		case err != nil:
			call.Info(status, err.Error())
		default:
			call.Info(status, firstLine(b))
		}
		if time.Since(start) > retryFor || !s.pause(backoff+rand.N(backoff)) {
			return ""
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// cancel cancels the order id for c as process p, retrying while the outcome
// is unknown. A 409 (the order is final already) is a definite failure.
func (s *shop) cancel(p int, c customer, id string) {
	backoff := 100 * time.Millisecond
	for start := time.Now(); ; {
		call := s.h.Invoke(p, history.Op{Kind: history.Cancel, User: c.ID, OrderID: id})
		status, b, err := try("POST", s.api+"/orders/"+id+"/cancel", nil, c.auth)
		var o apiOrder
		switch {
		case err == nil && status == 200 && json.Unmarshal(b, &o) == nil:
			call.OK(id, o.Status, status)
			return
		case err == nil && definite(status, b):
			call.Fail(status, firstLine(b))
			return
		case err != nil:
			call.Info(status, err.Error())
		default:
			call.Info(status, firstLine(b))
		}
		if time.Since(start) > retryFor || !s.pause(backoff+rand.N(backoff)) {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// pause waits for d and reports whether the test is still on.
func (s *shop) pause(d time.Duration) bool {
	select {
	case <-s.quit:
		return false
	case <-time.After(d):
		return true
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// burst is a workload: customers each place perCustomer orders spread over
// duration, of one or two random products (1 to maxQty units each), and
// cancel every cancelEvery-th acknowledged order right away (0: never).
type burst struct {
	perCustomer int
	duration    time.Duration
	maxQty      int
	cancelEvery int
}

// run runs the burst and returns when every customer is done; started is
// closed once the first request is about to go.
func (s *shop) run(b burst, started chan<- struct{}) {
	var wg sync.WaitGroup
	t0 := time.Now()
	close(started)
	for ci, c := range s.customers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(ci), uint64(t0.UnixNano())))
			for i := range b.perCustomer {
				at := t0.Add(time.Duration(i) * b.duration / time.Duration(b.perCustomer))
				if !s.pause(time.Until(at) + time.Duration(rng.Int64N(int64(20*time.Millisecond)))) {
					return
				}
				var lines []map[string]any
				for _, k := range rng.Perm(len(s.products))[:1+rng.IntN(min(2, len(s.products)))] {
					lines = append(lines, map[string]any{"product_id": s.products[k].ID, "quantity": 1 + rng.IntN(b.maxQty)})
				}
				id := s.place(ci, c, fmt.Sprintf("%s-%d-%d", s.name, ci, i), lines)
				if id != "" && b.cancelEvery > 0 && i%b.cancelEvery == b.cancelEvery-1 {
					s.watch(c, id)
					s.cancel(ci, c, id)
				}
			}
		})
	}
	wg.Wait()
}

// watch follows the order id's event stream in the background until it has
// sent a final status (reconnecting with Last-Event-ID when the stream
// breaks) or the test stops watching. Every status event is an observation
// of the history, and consecutive events of one stream must follow the life
// cycle.
func (s *shop) watch(c customer, id string) {
	s.watchers.Go(func() {
		client := &http.Client{}
		last := ""
		for s.watchCtx.Err() == nil {
			p := int(s.watchProc.Add(1))
			req, err := http.NewRequestWithContext(s.watchCtx, "GET", s.api+"/orders/"+id+"/events", nil)
			if err != nil {
				return
			}
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set(c.auth[0], c.auth[1])
			if last != "" {
				req.Header.Set("Last-Event-ID", last)
			}
			start := time.Now()
			resp, err := client.Do(req)
			if err == nil && resp.StatusCode == http.StatusNoContent {
				resp.Body.Close()
				return // the last status we saw was final
			}
			if err == nil && resp.StatusCode == http.StatusOK {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					data, ok := strings.CutPrefix(sc.Text(), "data: ")
					if !ok {
						continue
					}
					var o listedOrder
					if json.Unmarshal([]byte(data), &o) != nil {
						continue
					}
					s.h.Observe(p, c.ID, id, o.Status, start, time.Now())
					s.mu.Lock()
					s.streamed++
					if last != "" && !history.Reachable(last, o.Status) {
						s.streamErrors = append(s.streamErrors, fmt.Sprintf("order %s: the event stream sent %s after %s", id, o.Status, last))
					}
					s.mu.Unlock()
					last = o.Status
					if o.Status != history.Pending && o.Status != history.Confirmed {
						resp.Body.Close()
						return
					}
				}
				resp.Body.Close()
			} else if err == nil {
				resp.Body.Close()
			}
			select {
			case <-s.watchCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

// --- after the run ---

// listedOrder is an order as the orders listing shows it.
type listedOrder struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Status     string     `json:"status"`
	Lines      []apiLine  `json:"lines"`
	ReleasedAt *time.Time `json:"released_at"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

func (o listedOrder) final() history.Order {
	h := history.Order{ID: o.ID, User: o.UserID, Status: o.Status, Released: o.ReleasedAt != nil, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	for _, l := range o.Lines {
		h.Lines = append(h.Lines, history.Line{ProductID: l.ProductID, Quantity: l.Quantity})
	}
	return h
}

// orders lists every order of every customer, recording what it saw in the
// history. An error means some listing failed.
func (s *shop) orders() ([]history.Order, error) {
	var out []history.Order
	for _, c := range s.customers {
		cursor := ""
		for {
			start := time.Now()
			status, b, err := try("GET", s.api+"/orders?limit=100&cursor="+cursor, nil, c.auth)
			if err != nil || status != 200 {
				return nil, fmt.Errorf("list orders: %d %s %v", status, firstLine(b), err)
			}
			var pg apiPage[listedOrder]
			if err := json.Unmarshal(b, &pg); err != nil {
				return nil, err
			}
			end := time.Now()
			for _, o := range pg.Items {
				s.h.Observe(s.readProc, c.ID, o.ID, o.Status, start, end)
				out = append(out, o.final())
			}
			if pg.NextCursor == "" {
				break
			}
			cursor = pg.NextCursor
		}
	}
	return out, nil
}

// acknowledged returns the ids of the orders acknowledged so far.
func (s *shop) acknowledged() map[string]bool {
	ids := map[string]bool{}
	for _, o := range s.h.Ops() {
		if o.Type == history.OK && o.Kind == history.Place {
			ids[o.OrderID] = true
		}
	}
	return ids
}

// settle waits (up to within) until every order of the customers is settled
// and every acknowledged order is listed, and returns the orders as they are
// then, and how long it waited.
func (s *shop) settle(within time.Duration) ([]history.Order, time.Duration) {
	s.t.Helper()
	start := time.Now()
	var last []history.Order
	for {
		orders, err := s.orders()
		if err == nil {
			last = orders
			listed := map[string]bool{}
			done := true
			for _, o := range orders {
				listed[o.ID] = true
				done = done && settledOrder(o)
			}
			for id := range s.acknowledged() {
				done = done && listed[id]
			}
			if done {
				return orders, time.Since(start)
			}
		}
		if w := time.Since(start); w/(5*time.Second) != (w-250*time.Millisecond)/(5*time.Second) || w > within {
			s.t.Logf("%s: waiting for %d orders to settle; %s", time.Now().Format("15:04:05.000"), unsettled(last), s.consumerStates())
		}
		if time.Since(start) > within {
			if last == nil {
				s.t.Fatalf("orders could not be listed: %v", err)
			}
			return last, time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func unsettled(orders []history.Order) int {
	n := 0
	for _, o := range orders {
		if !settledOrder(o) {
			n++
		}
	}
	return n
}

// consumerStates describes the saga's two consumers, for a slow recovery.
func (s *shop) consumerStates() string {
	nc, err := nats.Connect(s.NATSURL, nats.Timeout(time.Second))
	if err != nil {
		return "nats: " + err.Error()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var b strings.Builder
	for _, c := range []struct{ stream, durable string }{
		{broker.StreamOrders, events.ProductsOnOrders}, {broker.StreamStock, events.OrdersOnStock},
	} {
		cons, err := js.Consumer(ctx, c.stream, c.durable)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v; ", c.durable, err)
			continue
		}
		i, err := cons.Info(ctx)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v; ", c.durable, err)
			continue
		}
		fmt.Fprintf(&b, "%s: pending %d, ack pending %d, redelivered %d, waiting pulls %d, delivered #%d, acked #%d; ",
			c.durable, i.NumPending, i.NumAckPending, i.NumRedelivered, i.NumWaiting, i.Delivered.Stream, i.AckFloor.Stream)
	}
	return b.String()
}

func settledOrder(o history.Order) bool {
	switch o.Status {
	case history.Confirmed, history.Rejected:
		return true
	case history.Cancelled, history.Expired:
		return o.Released
	}
	return false
}

// stockLevels stops the system and reads the stock of the test's products
// from the products database.
func (s *shop) stockLevels() []history.Stock {
	s.t.Helper()
	if err := s.stop(); err != nil {
		s.t.Errorf("stop: %v", err)
	}
	ctx := context.Background()
	db, err := system.OpenDB(ctx, "", "products", s.DataDir)
	if err != nil {
		s.t.Fatalf("open the products database: %v", err)
	}
	defer db.Close()
	ids := make([]string, len(s.products))
	for i, p := range s.products {
		ids[i] = p.ID
	}
	levels, err := products.NewService(productsdb.New(db)).StockLevelsOf(ctx, ids)
	if err != nil {
		s.t.Fatalf("stock levels: %v", err)
	}
	var out []history.Stock
	for _, l := range levels {
		out = append(out, history.Stock{ProductID: l.ProductID, Initial: s.initial[l.ProductID],
			Available: l.Available, Reserved: l.Reserved, Sold: l.Sold})
	}
	if len(out) != len(ids) {
		s.t.Errorf("stock levels of %d products, want %d", len(out), len(ids))
	}
	return out
}

// check waits for the system to settle, stops it, checks the history and the
// final state, logs the summary line and fails the test on any violation.
func (s *shop) check(scenario string, faultEnd time.Time) (history.Report, []history.Stock) {
	s.t.Helper()
	orders, waited := s.settle(90 * time.Second)
	s.t.Logf("settled after %.1fs of waiting", waited.Seconds())
	time.Sleep(200 * time.Millisecond) // the streams' last events
	s.stopWatching()
	s.watchers.Wait()
	s.mu.Lock()
	if s.streamed > 0 {
		s.t.Logf("  event streams: %d status events", s.streamed)
	}
	for _, e := range s.streamErrors {
		s.t.Errorf("illegal: %s", e)
	}
	s.mu.Unlock()
	stock := s.stockLevels()
	r := history.Check(s.h.Ops(), history.Final{Orders: orders, Stock: stock, FaultEnd: faultEnd})
	s.t.Log(r.Summary(scenario))
	if r.Backlog > 10*time.Second {
		s.t.Logf("  note: the orders held up by the fault took %.1fs to settle: about the consumers' AckWait (30 s). "+
			"A message delivered to the dead process stays unacknowledged until then, and with MaxAckPending 1 "+
			"it holds up its whole consumer (see docs/reliability.md)", r.Backlog.Seconds())
	}
	codes := map[string]int{}
	for _, o := range s.h.Ops() {
		if o.Type == history.Fail || o.Type == history.Info {
			codes[fmt.Sprintf("%s %s %d", o.Type, o.Kind, o.Code)]++
		}
	}
	if len(codes) > 0 {
		s.t.Logf("  failed and unknown outcomes (type, kind, HTTP status; 0: no answer): %v", codes)
	}
	for _, l := range stock {
		s.t.Logf("  product %s: stocked %d, available %d, reserved %d, sold %d", l.ProductID, l.Initial, l.Available, l.Reserved, l.Sold)
	}
	if v := r.Violations(); len(v) > 0 {
		if len(v) > 30 {
			v = append(v[:30], fmt.Sprintf("... and %d more", len(v)-30))
		}
		s.t.Errorf("%s: %d violations:\n%s", scenario, len(r.Violations()), strings.Join(v, "\n"))
		s.dumpHistory()
	}
	return r, stock
}

// dumpHistory writes the history to the test log (for a failed check).
func (s *shop) dumpHistory() {
	var b strings.Builder
	for _, o := range s.h.Ops() {
		if o.Kind != history.Read {
			fmt.Fprintf(&b, "%s %s\n", o.Time.Format("15:04:05.000"), o)
		}
	}
	s.t.Logf("history (reads left out):\n%s", b.String())
}
