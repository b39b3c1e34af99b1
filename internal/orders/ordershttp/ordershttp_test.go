package ordershttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordershttp"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

// shop is the orders HTTP handler over the real users and products services.
type shop struct {
	handler  http.Handler
	store    *ordersdb.Store
	users    *users.Service
	catalog  *products.Service
	orders   *orders.Service
	ada      users.User
	mug, hat products.Product
}

func newShop(t testing.TB) *shop {
	t.Helper()
	ctx := context.Background()
	s := &shop{
		users:   users.NewService(usersdb.New(sqldbtest.Open(t, sqldb.SQLite, "users", usersdb.Migrations()))),
		catalog: products.NewService(productsdb.New(sqldbtest.Open(t, sqldb.SQLite, "products", productsdb.Migrations()))),
	}
	s.store = ordersdb.New(sqldbtest.Open(t, sqldb.SQLite, "orders", ordersdb.Migrations()))
	s.orders = orders.NewService(s.store, s.users, s.catalog, logging.Discard())
	s.handler = ordershttp.Handler(s.orders, nil, nil, logging.Discard())
	var err error
	if s.ada, err = s.users.Create(ctx, users.NewUser{Name: "Ada", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	if s.mug, err = s.catalog.Create(ctx, products.NewProduct{SKU: "MUG-1", Name: "Mug", Price: products.Money{Amount: 1490, Currency: "EUR"}, Stock: 100_000}); err != nil {
		t.Fatal(err)
	}
	if s.hat, err = s.catalog.Create(ctx, products.NewProduct{SKU: "HAT-1", Name: "Hat", Price: products.Money{Amount: 2290, Currency: "EUR"}, Stock: 100_000}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *shop) server(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s.handler)
	t.Cleanup(srv.Close)
	return srv
}

// post posts body with an Idempotency-Key when key is not empty, and returns
// the status and body of the answer.
func post(t *testing.T, srv *httptest.Server, body, key string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/orders", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
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

// checkProblem fails unless resp is a problem with status want and, when
// wantType is set, that type.
func checkProblem(t *testing.T, resp *http.Response, body []byte, want int, wantType string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, body)
	}
	if p.Status != want || (wantType != "" && p.Type != wantType) {
		t.Errorf("problem = %+v, want status %d type %q; body %s", p, want, wantType, body)
	}
}

func placeBody(user string, lines ...string) string {
	return `{"user_id":"` + user + `","lines":[` + strings.Join(lines, ",") + `]}`
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
	tests := []struct {
		name     string
		body     string
		key      string
		want     int
		wantType string
	}{
		{"malformed json", `{"user_id":`, "", 400, "/problems/invalid-request"},
		{"empty body", ``, "", 400, ""},
		{"not an object", `[]`, "", 422, "/problems/validation-failed"},
		{"unknown field status", `{"user_id":"` + s.ada.ID + `","lines":[` + mug + `],"status":"confirmed"}`, "", 422, "/problems/validation-failed"},
		{"unknown line field", placeBody(s.ada.ID, `{"product_id":"`+s.mug.ID+`","quantity":1,"unit_price":0}`), "", 422, "/problems/validation-failed"},
		{"user id of wrong type", `{"user_id":1,"lines":[` + mug + `]}`, "", 422, "/problems/validation-failed"},
		{"quantity of wrong type", placeBody(s.ada.ID, `{"product_id":"`+s.mug.ID+`","quantity":"1"}`), "", 422, "/problems/validation-failed"},
		{"fractional quantity", placeBody(s.ada.ID, `{"product_id":"`+s.mug.ID+`","quantity":1.5}`), "", 422, "/problems/validation-failed"},
		{"missing lines", `{"user_id":"` + s.ada.ID + `"}`, "", 422, "/problems/validation-failed"},
		{"no lines", placeBody(s.ada.ID), "", 422, "/problems/validation-failed"},
		{"quantity 0", placeBody(s.ada.ID, lineJSON(s.mug.ID, 0)), "", 422, "/problems/validation-failed"},
		{"quantity 101", placeBody(s.ada.ID, lineJSON(s.mug.ID, 101)), "", 422, "/problems/validation-failed"},
		{"21 lines", placeBody(s.ada.ID, many...), "", 422, "/problems/validation-failed"},
		{"malformed user id", placeBody("ada", mug), "", 400, "/problems/invalid-request"},
		{"malformed product id", placeBody(s.ada.ID, lineJSON("mug", 1)), "", 400, "/problems/invalid-request"},
		{"duplicate product", placeBody(s.ada.ID, mug, lineJSON(s.mug.ID, 2)), "", 400, "/problems/invalid-request"},
		{"unknown user", placeBody("0190f000-0000-7000-8000-000000000000", mug), "", 422, "/problems/unknown-user"},
		{"unknown product", placeBody(s.ada.ID, mug, lineJSON("0190f000-0000-7000-8000-000000000000", 1)), "", 422, "/problems/unknown-product"},
		{"key too long", placeBody(s.ada.ID, mug), strings.Repeat("k", 129), 422, "/problems/validation-failed"},
		{"key not ascii", placeBody(s.ada.ID, mug), "clé", 400, "/problems/invalid-request"},
		{"oversize body", `{"user_id":"` + strings.Repeat("x", 70000) + `","lines":[]}`, "", 413, "/problems/too-large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, tt.body, tt.key)
			checkProblem(t, resp, body, tt.want, tt.wantType)
		})
	}
	// None of them created anything or took stock.
	p, err := s.orders.ListByUser(context.Background(), s.ada.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 0 {
		t.Errorf("orders after bad requests = %d, want 0", len(p.Items))
	}
	if mug, err := s.catalog.Product(context.Background(), s.mug.ID); err != nil || mug.Stock != s.mug.Stock {
		t.Errorf("mug stock = %d (%v), want %d", mug.Stock, err, s.mug.Stock)
	}
}

func TestPlaceOrderIdempotencyKey(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	body := placeBody(s.ada.ID, lineJSON(s.mug.ID, 2), lineJSON(s.hat.ID, 1))
	decode := func(t *testing.T, b []byte) orders.Order {
		t.Helper()
		var o orders.Order
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("order: %v: %s", err, b)
		}
		return o
	}

	resp, b := post(t, srv, body, "key-1")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first POST status = %d, want 201; body %s", resp.StatusCode, b)
	}
	first := decode(t, b)
	if got, want := resp.Header.Get("Location"), "/api/v1/orders/"+first.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if first.Status != orders.StatusConfirmed || first.Total.Amount != 2*1490+2290 {
		t.Errorf("first order = %s total %d, want confirmed total %d", first.Status, first.Total.Amount, 2*1490+2290)
	}

	resp, b = post(t, srv, body, "key-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replay status = %d, want 200; body %s", resp.StatusCode, b)
	}
	if diff := cmp.Diff(first, decode(t, b)); diff != "" {
		t.Errorf("replayed order (-first +replay):\n%s", diff)
	}

	resp, b = post(t, srv, placeBody(s.ada.ID, lineJSON(s.mug.ID, 3)), "key-1")
	checkProblem(t, resp, b, http.StatusUnprocessableEntity, "/problems/idempotency-key-reused")

	resp, b = post(t, srv, body, "key-2")
	if resp.StatusCode != http.StatusCreated || decode(t, b).ID == first.ID {
		t.Errorf("POST with another key = %d %s, want 201 and a new order", resp.StatusCode, b)
	}
}

func TestGetOrder(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	o, _, err := s.orders.Place(ctx, orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{{ProductID: s.mug.ID, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	// The same store behind a service whose users peer is down.
	degraded := httptest.NewServer(ordershttp.Handler(
		orders.NewService(s.store, downDirectory{}, s.catalog, logging.Discard()), nil, nil, logging.Discard()))
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
		{"unknown", srv.URL + "/api/v1/orders/0190f000-0000-7000-8000-000000000000", 404, nil},
		{"malformed", srv.URL + "/api/v1/orders/nope", 404, nil},
		{"list", srv.URL + "/api/v1/orders?user_id=" + s.ada.ID + "&limit=1", 200, nil},
		{"list without user", srv.URL + "/api/v1/orders", 422, nil},
		{"list with bad user", srv.URL + "/api/v1/orders?user_id=ada", 400, nil},
		{"list with unknown parameter", srv.URL + "/api/v1/orders?user_id=" + s.ada.ID + "&status=x", 422, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if tt.want >= 400 {
				checkProblem(t, resp, b, tt.want, "")
				return
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.want, b)
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

func TestClientRoundTrip(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	ctx := context.Background()
	up, err := upstream.New(upstream.Options{Name: "orders", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c := ordershttp.NewClient(up)
	req := orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{{ProductID: s.hat.ID, Quantity: 2}}, IdempotencyKey: "round-trip"}
	placed, err := c.Place(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Place(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(placed, again); diff != "" {
		t.Errorf("Place() with the same key (-first +second):\n%s", diff)
	}
	got, err := c.Order(ctx, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	hat, err := s.catalog.Product(ctx, s.hat.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := orders.EnrichedOrder{
		ID: placed.ID, UserID: s.ada.ID, Status: orders.StatusConfirmed, Total: placed.Total,
		CreatedAt: placed.CreatedAt, UpdatedAt: placed.UpdatedAt, User: &s.ada, Degraded: []string{},
		Lines: []orders.EnrichedLine{{ProductID: hat.ID, Quantity: 2, UnitPrice: hat.Price, Product: &hat}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Order() (-want +got):\n%s", diff)
	}
	tests := []struct {
		name     string
		call     func() error
		wantKind fault.Kind
		wantCode string
	}{
		{"unknown order", func() error { _, err := c.Order(ctx, "0190f000-0000-7000-8000-000000000000"); return err }, fault.NotFound, ""},
		{"malformed order id", func() error { _, err := c.Order(ctx, "../../healthz"); return err }, fault.NotFound, ""},
		{"unknown user", func() error {
			_, err := c.Place(ctx, orders.PlaceRequest{UserID: "0190f000-0000-7000-8000-000000000000", Lines: req.Lines})
			return err
		}, fault.Unprocessable, "unknown-user"},
		{"key reused", func() error {
			_, err := c.Place(ctx, orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{{ProductID: s.mug.ID, Quantity: 1}}, IdempotencyKey: "round-trip"})
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
}

func FuzzPlaceOrderRequest(f *testing.F) {
	s := newShop(f)
	valid := placeBody(s.ada.ID, lineJSON(s.mug.ID, 1))
	f.Add(valid, "")
	f.Add(valid, "k1")
	f.Add(placeBody(s.ada.ID, lineJSON(s.mug.ID, 2), lineJSON(s.hat.ID, 100)), "k2")
	f.Add(placeBody(s.ada.ID, lineJSON(s.mug.ID, 1), lineJSON(s.mug.ID, 1)), "")
	f.Add(placeBody("0190f000-0000-7000-8000-000000000000", lineJSON(s.hat.ID, 1)), "")
	f.Add(`{"user_id":"`+s.ada.ID+`","lines":[{"product_id":"`+s.mug.ID+`","quantity":1e300}]}`, "")
	f.Add(`{"user_id":null,"lines":null}`, "\x7f")
	f.Add(`{"lines":[{}]}`, " ")
	f.Add(`[`, "")
	f.Add(``, "")
	f.Fuzz(func(t *testing.T, body, key string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key} // unchecked, as a raw client could send it
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q key %q: %s", rec.Code, body, key, rec.Body)
		}
		if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("status %d with Content-Type %q, want a problem", rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}
