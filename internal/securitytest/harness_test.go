package securitytest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/logging/logtest"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/system"
)

// Modes in which a system runs.
const (
	servicesMode = "services" // four services, each on its own listener
	monolithMode = "monolith" // every module in one process behind the gateway
)

const adminEmail = "admin@example.com"

// Options change how a system starts.
type Options struct {
	// Limits are the gateway's rate limits. The zero value turns every limit
	// off, so that tests are not limited by each other's traffic; the tests of
	// the limits set them.
	Limits gateway.Limits
	// NoFixtures skips creating the admin token, alice, bob and alice's order.
	NoFixtures bool
}

// Account is a user with the credentials a test needs.
type Account struct {
	ID       string
	Email    string
	Name     string
	Password string
	Access   string // access token from the login
	Refresh  string // refresh token from the same login
}

// System is microshop started for one test.
type System struct {
	Mode     string
	Gateway  string            // base URL of the gateway
	Services map[string]string // base URL of users, products and orders (services mode only)
	DataDir  string
	Config   system.Config // what the services were built with

	OrdersKey  ed25519.PrivateKey // the orders service's identity key
	AuditorKey ed25519.PrivateKey // a trusted service that may not reserve stock

	// Fixtures (unless Options.NoFixtures).
	Admin      Account
	Alice, Bob Account
	Product    string // a seeded product's id
	AliceOrder string // an order of alice's

	logs *syncBuffer
}

// syncBuffer collects output written from several goroutines.
type syncBuffer = logtest.Buffer

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newSystem(t testing.TB, mode string, dataDir string, opts Options) *System {
	t.Helper()
	s := &System{Mode: mode, DataDir: dataDir, Services: map[string]string{}, logs: &syncBuffer{},
		OrdersKey: newKey(t), AuditorKey: newKey(t)}
	limits := opts.Limits
	if limits == (gateway.Limits{}) {
		limits = gateway.Limits{PerClient: -1, PerUser: -1, AuthPerMin: -1}
	}
	s.Config = system.Config{
		DataDir:    dataDir,
		Seed:       true,
		ServiceKey: s.OrdersKey,
		Trusted: auth.StaticKeys{
			"orders":  s.OrdersKey.Public().(ed25519.PublicKey),
			"auditor": s.AuditorKey.Public().(ed25519.PublicKey),
		},
		AdminEmail:    adminEmail,
		AdminPassword: newPassword(),
		Limits:        limits,
		Log:           slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	return s
}

func newPassword() string { return rand.Text() } // 26 characters, 130 bits

// runner serves modules until the test ends, then stops them and closes them.
type runner struct {
	t      testing.TB
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	mods   []*system.Module
	lns    []net.Listener
}

func newRunner(t testing.TB, logs *syncBuffer) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{t: t, ctx: ctx, cancel: cancel}
	t.Cleanup(func() {
		r.cancel()
		r.wg.Wait()
		for _, ln := range r.lns {
			ln.Close() // the ones never served; a served one is closed already
		}
		for i := len(r.mods) - 1; i >= 0; i-- {
			if r.mods[i].Close != nil {
				r.mods[i].Close()
			}
		}
		for _, err := range r.errs {
			t.Errorf("server: %v", err)
		}
		if t.Failed() {
			t.Logf("logs (warn and above):\n%s", logs)
		}
	})
	return r
}

func (r *runner) listen() (net.Listener, string) {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	r.lns = append(r.lns, ln)
	return ln, "http://" + ln.Addr().String()
}

func (r *runner) serve(ln net.Listener, m *system.Module) {
	r.mods = append(r.mods, m)
	r.wg.Go(func() {
		if err := server.Serve(r.ctx, ln, m.Handler, slog.New(slog.DiscardHandler)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
		}
	})
	if m.Run != nil {
		r.wg.Go(func() { m.Run(r.ctx) })
	}
}

// StartServices starts users, products, orders and the gateway in process,
// each on its own loopback listener, calling each other over real HTTP.
func StartServices(t testing.TB, opts Options) *System {
	t.Helper()
	s := newSystem(t, servicesMode, t.TempDir(), opts)
	r := newRunner(t, s.logs)
	lns := map[string]net.Listener{}
	for _, name := range system.Services {
		ln, url := r.listen()
		lns[name] = ln
		if name == "gateway" {
			s.Gateway = url
		} else {
			s.Services[name] = url
		}
	}
	s.Config.UsersURL, s.Config.ProductsURL, s.Config.OrdersURL = s.Services["users"], s.Services["products"], s.Services["orders"]
	s.Config.NATSURL = brokertest.Start(t).ClientURL()
	for _, name := range system.Services {
		m, err := system.Service(r.ctx, name, s.Config)
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		r.serve(lns[name], m)
	}
	if !opts.NoFixtures {
		s.fixtures(t)
	}
	return s
}

// StartMonolith starts every module in one process behind the gateway, on
// one listener.
func StartMonolith(t testing.TB, opts Options) *System {
	t.Helper()
	s := newSystem(t, monolithMode, t.TempDir(), opts)
	r := newRunner(t, s.logs)
	ln, url := r.listen()
	s.Gateway = url
	m, err := system.Monolith(r.ctx, s.Config)
	if err != nil {
		t.Fatalf("start monolith: %v", err)
	}
	r.serve(ln, m)
	if !opts.NoFixtures {
		s.fixtures(t)
	}
	return s
}

// Start starts a system in mode.
func Start(t testing.TB, mode string, opts Options) *System {
	t.Helper()
	if mode == monolithMode {
		return StartMonolith(t, opts)
	}
	return StartServices(t, opts)
}

var modes = []string{servicesMode, monolithMode}

// Target is a base URL requests can be sent to: the gateway or one service's
// own port.
type Target struct {
	Name string
	URL  string
}

// Targets returns the gateway and, in services mode, the named services'
// own ports.
func (s *System) Targets(services ...string) []Target {
	out := []Target{{"gateway", s.Gateway}}
	for _, name := range services {
		if u, ok := s.Services[name]; ok {
			out = append(out, Target{name, u})
		}
	}
	return out
}

// fixtures creates the accounts and the order most tests need, through the
// gateway.
func (s *System) fixtures(t testing.TB) {
	t.Helper()
	s.Admin = s.Login(t, adminEmail, s.Config.AdminPassword)
	s.Admin.ID = s.Me(t, s.Admin.Access)["id"].(string)
	s.Alice = s.Register(t, "Alice", "alice@example.com")
	s.Bob = s.Register(t, "Bob", "bob@example.com")
	var catalog struct {
		Items []struct {
			ID    string `json:"id"`
			Stock int    `json:"stock"`
		} `json:"items"`
	}
	r := Do(t, "GET", s.Gateway+"/api/v1/products?limit=20", nil)
	r.Want(t, 200).JSON(t, &catalog)
	for _, p := range catalog.Items {
		if p.Stock > 10 {
			s.Product = p.ID
			break
		}
	}
	if s.Product == "" {
		t.Fatalf("no seeded product with stock: %s", r.Body)
	}
	s.AliceOrder = s.PlaceOrder(t, s.Alice.Access, s.Product, 1)
}

// Register registers a customer through the gateway and logs them in.
func (s *System) Register(t testing.TB, name, email string) Account {
	t.Helper()
	a := Account{Name: name, Email: email, Password: newPassword()}
	var u struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	}
	Do(t, "POST", s.Gateway+"/api/v1/auth/register", map[string]string{"email": email, "password": a.Password, "name": name}).
		Want(t, 201).JSON(t, &u)
	if u.ID == "" {
		t.Fatalf("register %s: no id", email)
	}
	l := s.Login(t, email, a.Password)
	a.ID, a.Access, a.Refresh = u.ID, l.Access, l.Refresh
	return a
}

// NewCustomer registers a customer with a fresh email address.
func (s *System) NewCustomer(t testing.TB, name string) Account {
	t.Helper()
	return s.Register(t, name, strings.ToLower(name)+"-"+strings.ToLower(rand.Text()[:10])+"@example.com")
}

// TokenResponse is the answer to a login or a refresh.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// Login logs in through the gateway.
func (s *System) Login(t testing.TB, email, password string) Account {
	t.Helper()
	var tok TokenResponse
	Do(t, "POST", s.Gateway+"/api/v1/auth/login", map[string]string{"email": email, "password": password}).
		Want(t, 200).JSON(t, &tok)
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("login %s: got %+v, want a Bearer access token and a refresh token", email, tok)
	}
	return Account{Email: email, Password: password, Access: tok.AccessToken, Refresh: tok.RefreshToken}
}

// Me returns GET /api/v1/users/me for token.
func (s *System) Me(t testing.TB, token string) map[string]any {
	t.Helper()
	var me map[string]any
	Do(t, "GET", s.Gateway+"/api/v1/users/me", nil, Bearer(token)...).Want(t, 200).JSON(t, &me)
	return me
}

// PlaceOrder places an order of one line through the gateway and returns its id.
func (s *System) PlaceOrder(t testing.TB, token, product string, quantity int) string {
	t.Helper()
	var o struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	Do(t, "POST", s.Gateway+"/api/v1/orders", orderBody(product, quantity), Bearer(token)...).Want(t, 202).JSON(t, &o)
	if o.ID == "" || o.Status != "pending" {
		t.Fatalf("order: got %+v, want a pending order", o)
	}
	if st := s.AwaitOrder(t, token, o.ID); st != "confirmed" {
		t.Fatalf("order %s: %s, want confirmed", o.ID, st)
	}
	return o.ID
}

// AwaitOrder waits until the checkout saga has decided an order and returns
// its status.
func (s *System) AwaitOrder(t testing.TB, token, id string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var o struct {
			Status string `json:"status"`
		}
		base := s.Gateway // the orders port when there is one, past the gateway's rate limits
		if u, ok := s.Services["orders"]; ok {
			base = u
		}
		Do(t, "GET", base+"/api/v1/orders/"+id, nil, Bearer(token)...).Want(t, 200).JSON(t, &o)
		if o.Status != "pending" {
			return o.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s still pending after 30s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func orderBody(product string, quantity int) map[string]any {
	return map[string]any{"lines": []map[string]any{{"product_id": product, "quantity": quantity}}}
}

// SigningKey returns the users service's active signing key, read from its
// database as the service itself reads it. Tests use it to forge tokens that
// are valid in every respect but the one a case breaks.
func (s *System) SigningKey(t testing.TB) (kid string, key ed25519.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "", "users", s.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seed string
	err = db.QueryRowContext(ctx, `SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL`).Scan(&kid, &seed)
	if err != nil {
		t.Fatalf("read the signing key: %v", err)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seed, "="))
	if err != nil || len(b) != ed25519.SeedSize {
		t.Fatalf("signing key %s: not a base64url Ed25519 seed", kid)
	}
	return kid, ed25519.NewKeyFromSeed(b)
}

// Response is an answer read in full.
type Response struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
}

func (r Response) String() string {
	body := r.Body
	if len(body) > 600 {
		body = append(body[:600:600], "..."...)
	}
	return fmt.Sprintf("%s %s: %d %s", r.Method, r.URL, r.Status, body)
}

// Want stops the test unless the status is want.
func (r Response) Want(t testing.TB, want int) Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s; want status %d", r, want)
	}
	return r
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: decode: %v", r, err)
	}
}

// Problem decodes an RFC 9457 body, or returns ok false when the answer is
// not a problem.
func (r Response) Problem() (p problem.Problem, ok bool) {
	if r.Header.Get("Content-Type") != problem.ContentType {
		return p, false
	}
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != r.Status {
		return p, false
	}
	return p, true
}

// WantProblem reports an error unless the answer is a problem with status want.
func (r Response) WantProblem(t testing.TB, want int) problem.Problem {
	t.Helper()
	p, ok := r.Problem()
	if r.Status != want || !ok {
		t.Errorf("%s (Content-Type %q); want a %d problem", r, r.Header.Get("Content-Type"), want)
	}
	return p
}

// WantUnauthorized reports an error unless the answer is a 401 problem with
// a Bearer challenge.
func (r Response) WantUnauthorized(t testing.TB) {
	t.Helper()
	r.WantProblem(t, http.StatusUnauthorized)
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge", r, r.Header.Get("WWW-Authenticate"))
	}
}

var client = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Bearer returns the header pair for an access token.
func Bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// Do sends a request. body is nil, a string or []byte sent as is, an
// io.Reader (sent chunked, its length unknown) or a value sent as JSON.
// headers are name, value pairs; an empty value removes the header.
func Do(t testing.TB, method, url string, body any, headers ...string) Response {
	t.Helper()
	req := NewRequest(t, method, url, body, headers...)
	return Send(t, req)
}

// NewRequest builds a request as Do sends it.
func NewRequest(t testing.TB, method, url string, body any, headers ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide any length: the body goes chunked
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// Send sends req and reads the whole answer.
func Send(t testing.TB, req *http.Request) Response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return Response{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Parallel sends the n requests made by req at once and returns the answers,
// in order.
func Parallel(t testing.TB, n int, req func(i int) *http.Request) []Response {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = req(i)
	}
	out := make([]Response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, rq := range reqs {
		wg.Go(func() {
			<-start
			resp, err := client.Do(rq)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			out[i] = Response{Method: rq.Method, URL: rq.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// statuses counts answers by status.
func statuses(rs []Response) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

// sameProblem reports whether two problems are indistinguishable to a client:
// equal but for the instance and request id.
func sameProblem(a, b problem.Problem) bool {
	a.Instance, b.Instance, a.RequestID, b.RequestID = "", "", "", ""
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// unknownID is a well-formed id (UUIDv7) that names nothing.
const unknownID = "0190f000-0000-7000-8000-000000000000"
