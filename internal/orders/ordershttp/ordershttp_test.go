package ordershttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordersdb/ordersdbtest"
	"github.com/microshop/microshop/internal/orders/ordershttp"
	"github.com/microshop/microshop/internal/orders/orderstest"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/auth/authtest"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

// shop is the orders HTTP handler over the real users service and an
// in-memory catalog, checking tokens of its own issuer. The calls that reach
// users and products are counted.
type shop struct {
	handler   http.Handler
	issuer    *authtest.Issuer
	authn     *auth.Authenticator
	db        *sqldb.DB
	store     *ordersdb.Store
	users     *users.Service
	catalog   *orderstest.Catalog
	orders    *orders.Service
	ada, bob  users.User // customers
	admin     users.User // whose tokens say admin
	mug, hat  products.Product
	userCalls atomic.Int32
}

func newShop(t testing.TB) *shop {
	t.Helper()
	ctx := context.Background()
	s := &shop{
		issuer:  authtest.NewIssuer(t),
		users:   users.NewService(usersdb.New(sqldbtest.Open(t, sqldb.SQLite, "users", usersdb.Migrations())), logging.Discard()),
		catalog: orderstest.NewCatalog(),
	}
	// Orders has no internal endpoints: like the wiring, it trusts no service.
	s.authn = authtest.Authenticator(s.issuer)
	s.db = ordersdbtest.Open(t, sqldb.SQLite)
	s.store = ordersdb.New(s.db)
	s.orders = orders.NewService(s.store, countingDirectory{s.users, &s.userCalls}, s.catalog, logging.Discard())
	s.handler = ordershttp.Handler(s.orders, s.authn, nil, nil, logging.Discard())
	var err error
	for _, u := range []struct {
		to          *users.User
		name, email string
	}{{&s.ada, "Ada", "ada@example.com"}, {&s.bob, "Bob", "bob@example.com"}, {&s.admin, "Grace", "grace@example.com"}} {
		if *u.to, err = s.users.Create(ctx, users.NewUser{Name: u.name, Email: u.email}); err != nil {
			t.Fatal(err)
		}
	}
	s.mug = s.catalog.Add("MUG-1", "Mug", products.Money{Amount: 1490, Currency: "EUR"}, 100_000)
	s.hat = s.catalog.Add("HAT-1", "Hat", products.Money{Amount: 2290, Currency: "EUR"}, 100_000)
	return s
}

// stock delivers a stock event of type typ about the order, as the consumer
// does.
func (s *shop) stock(t testing.TB, typ, orderID string) {
	t.Helper()
	if err := s.orders.HandleStockEvent(context.Background(), orderstest.StockEvent(t, typ, orderID, "")); err != nil {
		t.Fatal(err)
	}
}

const unknownID = "0190f000-0000-7000-8000-000000000000"

func (s *shop) server(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s.handler)
	t.Cleanup(srv.Close)
	return srv
}

// asAda, asBob and asAdmin return the headers of requests by them.
func (s *shop) asAda(t testing.TB) http.Header {
	return authtest.Header(s.issuer.Customer(t, s.ada.ID), "")
}

func (s *shop) asBob(t testing.TB) http.Header {
	return authtest.Header(s.issuer.Customer(t, s.bob.ID), "")
}

func (s *shop) asAdmin(t testing.TB) http.Header {
	return authtest.Header(s.issuer.Admin(t, s.admin.ID), "")
}

// placeAs places an order of one mug for the user in the service, directly.
func (s *shop) placeAs(t *testing.T, userID string) orders.Order {
	t.Helper()
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{UserID: userID, Role: auth.RoleCustomer})
	o, _, err := s.orders.Place(ctx, orders.PlaceRequest{UserID: userID, Lines: []orders.LineRequest{{ProductID: s.mug.ID, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// countingDirectory counts the calls that reach the real users service.
type countingDirectory struct {
	orders.UserDirectory
	calls *atomic.Int32
}

func (d countingDirectory) User(ctx context.Context, id string) (users.User, error) {
	d.calls.Add(1)
	return d.UserDirectory.User(ctx, id)
}

// call makes a request with the credentials in header (and an
// Idempotency-Key when key is not empty) and returns the answer and its body.
func call(t *testing.T, method, url string, header http.Header, body, key string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// post posts body to place an order with the credentials in header.
func post(t *testing.T, srv *httptest.Server, header http.Header, body, key string) (*http.Response, []byte) {
	t.Helper()
	return call(t, http.MethodPost, srv.URL+"/api/v1/orders", header, body, key)
}

func placeBody(lines ...string) string {
	return `{"lines":[` + strings.Join(lines, ",") + `]}`
}

func lineJSON(id string, qty int) string {
	return `{"product_id":"` + id + `","quantity":` + strconv.Itoa(qty) + `}`
}

func TestPlaceOrderBadRequests(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	mug := lineJSON(s.mug.ID, 1)
	many := make([]string, orders.MaxLines+1)
	for i := range many {
		many[i] = lineJSON("0190f000-0000-7000-8000-0000000001"+strconv.Itoa(10+i), 1)
	}
	unknownUser := authtest.Header(s.issuer.Customer(t, unknownID), "") // a valid token of a user that does not exist
	tests := []struct {
		name     string
		header   http.Header // nil for Ada's
		body     string
		key      string
		want     int
		wantType string
	}{
		{"malformed json", nil, `{"lines":`, "", 400, "/problems/invalid-request"},
		{"empty body", nil, ``, "", 400, ""},
		{"not an object", nil, `[]`, "", 422, "/problems/validation-failed"},
		{"unknown field status", nil, `{"lines":[` + mug + `],"status":"confirmed"}`, "", 422, "/problems/validation-failed"},
		{"user id in the body", nil, `{"user_id":"` + s.ada.ID + `","lines":[` + mug + `]}`, "", 422, "/problems/validation-failed"},
		{"another user's id in the body", nil, `{"user_id":"` + s.bob.ID + `","lines":[` + mug + `]}`, "", 422, "/problems/validation-failed"},
		{"user id of wrong type in the body", nil, `{"user_id":1,"lines":[` + mug + `]}`, "", 422, "/problems/validation-failed"},
		{"unknown line field", nil, placeBody(`{"product_id":"` + s.mug.ID + `","quantity":1,"unit_price":0}`), "", 422, "/problems/validation-failed"},
		{"quantity of wrong type", nil, placeBody(`{"product_id":"` + s.mug.ID + `","quantity":"1"}`), "", 422, "/problems/validation-failed"},
		{"fractional quantity", nil, placeBody(`{"product_id":"` + s.mug.ID + `","quantity":1.5}`), "", 422, "/problems/validation-failed"},
		{"missing lines", nil, `{}`, "", 422, "/problems/validation-failed"},
		{"no lines", nil, placeBody(), "", 422, "/problems/validation-failed"},
		{"quantity 0", nil, placeBody(lineJSON(s.mug.ID, 0)), "", 422, "/problems/validation-failed"},
		{"quantity 101", nil, placeBody(lineJSON(s.mug.ID, 101)), "", 422, "/problems/validation-failed"},
		{"21 lines", nil, placeBody(many...), "", 422, "/problems/validation-failed"},
		{"malformed product id", nil, placeBody(lineJSON("mug", 1)), "", 400, "/problems/invalid-request"},
		{"duplicate product", nil, placeBody(mug, lineJSON(s.mug.ID, 2)), "", 400, "/problems/invalid-request"},
		{"token of an unknown user", unknownUser, placeBody(mug), "", 422, "/problems/unknown-user"},
		{"unknown product", nil, placeBody(mug, lineJSON(unknownID, 1)), "", 422, "/problems/unknown-product"},
		{"key too long", nil, placeBody(mug), strings.Repeat("k", 129), 422, "/problems/validation-failed"},
		{"key not ascii", nil, placeBody(mug), "clé", 400, "/problems/invalid-request"},
		{"oversize body", nil, `{"lines":"` + strings.Repeat("x", 70000) + `"}`, "", 413, "/problems/too-large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = s.asAda(t)
			}
			resp, body := post(t, srv, h, tt.body, tt.key)
			problemtest.Check(t, resp.StatusCode, resp.Header, body, tt.want, tt.wantType)
		})
	}
	// None of them created anything or emitted an event.
	for _, u := range []string{s.ada.ID, s.bob.ID, unknownID} {
		p, err := s.orders.ListByUser(context.Background(), u, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 0 {
			t.Errorf("orders of %s after bad requests = %d, want 0", u, len(p.Items))
		}
	}
	if got := ordersdbtest.Kinds(t, s.db); got != nil {
		t.Errorf("outbox after bad requests = %v, want nothing", got)
	}
}

func decodeOrder(t *testing.T, b []byte) orders.Order {
	t.Helper()
	var o orders.Order
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("order: %v: %s", err, b)
	}
	return o
}

func TestPlaceOrderIdempotencyKey(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	body := placeBody(lineJSON(s.mug.ID, 2), lineJSON(s.hat.ID, 1))

	resp, b := post(t, srv, s.asAda(t), body, "key-1")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first POST status = %d, want 202; body %s", resp.StatusCode, b)
	}
	first := decodeOrder(t, b)
	if got, want := resp.Header.Get("Location"), "/api/v1/orders/"+first.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if first.UserID != s.ada.ID || first.Status != orders.StatusPending || first.Total.Amount != 2*1490+2290 || first.Deadline.IsZero() {
		t.Errorf("first order = %s of %s total %d deadline %v, want pending of Ada total %d with a deadline",
			first.Status, first.UserID, first.Total.Amount, first.Deadline, 2*1490+2290)
	}

	resp, b = post(t, srv, s.asAda(t), body, "key-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replay status = %d, want 200; body %s", resp.StatusCode, b)
	}
	if diff := cmp.Diff(first, decodeOrder(t, b)); diff != "" {
		t.Errorf("replayed order (-first +replay):\n%s", diff)
	}
	// A replay answers with the order as it is now.
	s.stock(t, events.StockReserved, first.ID)
	resp, b = post(t, srv, s.asAda(t), body, "key-1")
	if got := decodeOrder(t, b); resp.StatusCode != http.StatusOK || got.ID != first.ID || got.Status != orders.StatusConfirmed {
		t.Errorf("replay after confirmation = %d, order %s %s; want 200 and the confirmed order", resp.StatusCode, got.ID, got.Status)
	}

	resp, b = post(t, srv, s.asAda(t), placeBody(lineJSON(s.mug.ID, 3)), "key-1")
	problemtest.Check(t, resp.StatusCode, resp.Header, b, http.StatusUnprocessableEntity, "/problems/idempotency-key-reused")

	resp, b = post(t, srv, s.asAda(t), body, "key-2")
	if resp.StatusCode != http.StatusAccepted || decodeOrder(t, b).ID == first.ID {
		t.Errorf("POST with another key = %d %s, want 202 and a new order", resp.StatusCode, b)
	}

	// Keys are per user: Bob's key-1 places Bob's own order.
	resp, b = post(t, srv, s.asBob(t), body, "key-1")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("Bob's POST status = %d, want 202; body %s", resp.StatusCode, b)
	}
	if o := decodeOrder(t, b); o.ID == first.ID || o.UserID != s.bob.ID {
		t.Errorf("Bob's order = %s of %s, want a new order of Bob", o.ID, o.UserID)
	}
}

func TestGetOrder(t *testing.T) {
	s := newShop(t)
	o := s.placeAs(t, s.ada.ID)
	// The same store behind a service whose users peer is down.
	degraded := httptest.NewServer(ordershttp.Handler(
		orders.NewService(s.store, downDirectory{}, s.catalog, logging.Discard()), s.authn, nil, nil, logging.Discard()))
	t.Cleanup(degraded.Close)
	srv := s.server(t)
	tests := []struct {
		name     string
		url      string
		want     int
		wantJSON map[string]string // top-level fields as raw JSON
	}{
		{"complete", srv.URL + "/api/v1/orders/" + o.ID, 200, map[string]string{"id": `"` + o.ID + `"`, "degraded": `[]`}},
		{"users down", degraded.URL + "/api/v1/orders/" + o.ID, 200, map[string]string{"user": `null`, "degraded": `["user"]`}},
		{"unknown", srv.URL + "/api/v1/orders/" + unknownID, 404, nil},
		{"malformed", srv.URL + "/api/v1/orders/nope", 404, nil},
		{"list", srv.URL + "/api/v1/orders?user_id=" + s.ada.ID + "&limit=1", 200, nil},
		{"list without user", srv.URL + "/api/v1/orders", 200, nil},
		{"list with bad user", srv.URL + "/api/v1/orders?user_id=ada", 400, nil},
		{"list with unknown parameter", srv.URL + "/api/v1/orders?user_id=" + s.ada.ID + "&status=x", 422, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := call(t, http.MethodGet, tt.url, s.asAda(t), "", "")
			problemtest.Check(t, resp.StatusCode, resp.Header, b, tt.want, "")
			if tt.want >= 400 {
				return
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.wantJSON {
				if string(got[k]) != want {
					t.Errorf("%s = %s, want %s", k, got[k], want)
				}
			}
		})
	}
}

type downDirectory struct{}

func (downDirectory) User(context.Context, string) (users.User, error) {
	return users.User{}, fault.New(fault.Unavailable, "users is unavailable")
}

// newClient returns a client of the orders service at url whose calls carry
// the credentials auth.Credentials adds, as the wiring configures it.
func newClient(t *testing.T, url string) *ordershttp.Client {
	t.Helper()
	gateway := authtest.NewService(t, "gateway") // orders trusts no service: its token is never sent without AsService
	up, err := upstream.New(upstream.Options{Name: "orders", BaseURL: url, Decorate: auth.Credentials(gateway.Signer)})
	if err != nil {
		t.Fatal(err)
	}
	return ordershttp.NewClient(up)
}

func TestClientRoundTrip(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	c := newClient(t, srv.URL)
	ctx := s.issuer.Context(t, context.Background(), s.ada.ID, auth.RoleCustomer)
	lines := []orders.LineRequest{{ProductID: s.hat.ID, Quantity: 2}}
	placed, err := c.Place(ctx, lines, "round-trip")
	if err != nil {
		t.Fatal(err)
	}
	if placed.Status != orders.StatusPending {
		t.Errorf("Place() = %s, want pending", placed.Status)
	}
	again, err := c.Place(ctx, lines, "round-trip")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(placed, again); diff != "" {
		t.Errorf("Place() with the same key (-first +second):\n%s", diff)
	}
	s.stock(t, events.StockReserved, placed.ID)
	confirmed, err := s.orders.Order(ctx, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Order(ctx, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	hat := s.hat
	want := orders.EnrichedOrder{
		ID: placed.ID, UserID: s.ada.ID, Status: orders.StatusConfirmed, Total: placed.Total, Deadline: placed.Deadline,
		CreatedAt: placed.CreatedAt, UpdatedAt: confirmed.UpdatedAt, User: &s.ada, Degraded: []string{},
		Lines: []orders.EnrichedLine{{ProductID: hat.ID, Quantity: 2, UnitPrice: hat.Price, Product: &hat}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Order() (-want +got):\n%s", diff)
	}
	if got, err := c.Order(s.issuer.Context(t, context.Background(), s.admin.ID, auth.RoleAdmin), placed.ID); err != nil || got.ID != placed.ID {
		t.Errorf("Order() as an admin = %s, %v; want the order", got.ID, err)
	}
	bob := s.issuer.Context(t, context.Background(), s.bob.ID, auth.RoleCustomer)
	unknownUser := s.issuer.Context(t, context.Background(), unknownID, auth.RoleCustomer) // a valid token of a user that does not exist
	tests := []struct {
		name     string
		call     func() error
		wantKind fault.Kind
		wantCode string
	}{
		{"unknown order", func() error { _, err := c.Order(ctx, unknownID); return err }, fault.NotFound, ""},
		{"malformed order id", func() error { _, err := c.Order(ctx, "../../healthz"); return err }, fault.NotFound, ""},
		{"another customer's order", func() error { _, err := c.Order(bob, placed.ID); return err }, fault.NotFound, ""},
		{"order without a user", func() error { _, err := c.Order(context.Background(), placed.ID); return err }, fault.Unauthenticated, ""},
		{"place without a user", func() error { _, err := c.Place(context.Background(), lines, ""); return err }, fault.Unauthenticated, ""},
		{"unknown user", func() error { _, err := c.Place(unknownUser, lines, ""); return err }, fault.Unprocessable, "unknown-user"},
		{"key reused", func() error {
			_, err := c.Place(ctx, []orders.LineRequest{{ProductID: s.mug.ID, Quantity: 1}}, "round-trip")
			return err
		}, fault.Unprocessable, "idempotency-key-reused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if fault.KindOf(err) != tt.wantKind || fault.CodeOf(err) != tt.wantCode || err == nil {
				t.Errorf("error = %v (kind %v, code %q), want kind %v code %q", err, fault.KindOf(err), fault.CodeOf(err), tt.wantKind, tt.wantCode)
			}
		})
	}
	// Bob's key of the same name places Bob's order.
	bobs, err := c.Place(bob, lines, "round-trip")
	if err != nil || bobs.UserID != s.bob.ID || bobs.ID == placed.ID {
		t.Errorf("Place() for Bob = %s of %s, %v; want a new order of Bob", bobs.ID, bobs.UserID, err)
	}
	// Cancelling: only the owner (or an admin), only once.
	if _, err := c.Cancel(bob, placed.ID); !fault.Is(err, fault.NotFound) {
		t.Errorf("Cancel() of Ada's order by Bob: error = %v, want not found", err)
	}
	if o, err := c.Cancel(ctx, placed.ID); err != nil || o.Status != orders.StatusCancelled {
		t.Errorf("Cancel() = %s, %v; want cancelled", o.Status, err)
	}
	if _, err := c.Cancel(ctx, placed.ID); fault.KindOf(err) != fault.Conflict || fault.CodeOf(err) != orders.CodeIllegalTransition {
		t.Errorf("Cancel() again: error = %v (code %q), want conflict %s", err, fault.CodeOf(err), orders.CodeIllegalTransition)
	}
	if _, err := c.Cancel(ctx, "../healthz"); !fault.Is(err, fault.NotFound) {
		t.Errorf("Cancel() of a malformed id: error = %v, want not found", err)
	}
}

// TestClientDistrustsPeer checks that an order placed for another user than
// the caller is a fault.BadGateway error.
func TestClientDistrustsPeer(t *testing.T) {
	s := newShop(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"`+unknownID+`","user_id":"`+s.bob.ID+`","status":"confirmed","lines":[{}]}`)
	}))
	defer srv.Close()
	ctx := s.issuer.Context(t, context.Background(), s.ada.ID, auth.RoleCustomer)
	_, err := newClient(t, srv.URL).Place(ctx, []orders.LineRequest{{ProductID: s.mug.ID, Quantity: 1}}, "")
	if !fault.Is(err, fault.BadGateway) {
		t.Errorf("error = %v (kind %v), want bad_gateway", err, fault.KindOf(err))
	}
}

func FuzzPlaceOrderRequest(f *testing.F) {
	s := newShop(f)
	valid := placeBody(lineJSON(s.mug.ID, 1))
	f.Add(valid, "")
	f.Add(valid, "k1")
	f.Add(placeBody(lineJSON(s.mug.ID, 2), lineJSON(s.hat.ID, 100)), "k2")
	f.Add(placeBody(lineJSON(s.mug.ID, 1), lineJSON(s.mug.ID, 1)), "")
	f.Add(`{"user_id":"`+s.bob.ID+`","lines":[`+lineJSON(s.hat.ID, 1)+`]}`, "")
	f.Add(`{"lines":[{"product_id":"`+s.mug.ID+`","quantity":1e300}]}`, "")
	f.Add(`{"lines":null}`, "\x7f")
	f.Add(`{"lines":[{}]}`, " ")
	f.Add(`[`, "")
	f.Add(``, "")
	f.Fuzz(func(t *testing.T, body, key string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/orders", strings.NewReader(body))
		req.Header = s.asAda(t)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key} // unchecked, as a raw client could send it
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q key %q: %s", rec.Code, body, key, rec.Body)
		}
		if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
			t.Fatalf("status %d: the credentials were refused: %s", rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("status %d with Content-Type %q, want a problem", rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Code < 300 {
			var o orders.Order
			if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil || o.UserID != s.ada.ID {
				t.Fatalf("status %d: order of %q (%v), want Ada's", rec.Code, o.UserID, err)
			}
		}
	})
}
