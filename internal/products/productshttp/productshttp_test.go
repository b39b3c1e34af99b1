package productshttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/auth/authtest"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
	"github.com/microshop/microshop/internal/products/productshttp"
)

func newService(t testing.TB) *products.Service {
	t.Helper()
	db := sqldbtest.Open(t, sqldb.SQLite, "products", productsdb.Migrations())
	return products.NewService(productsdb.New(db))
}

// creds are the credentials of the tests: an issuer of users' access tokens,
// the orders service (the only one allowed to reserve stock) and another
// service the products service also trusts.
type creds struct {
	users  *authtest.Issuer
	orders *authtest.Service
	other  *authtest.Service
}

func newCreds(t testing.TB) *creds {
	return &creds{users: authtest.NewIssuer(t), orders: authtest.NewService(t, "orders"), other: authtest.NewService(t, "other")}
}

// handler returns the products handler checking c's credentials.
func (c *creds) handler(svc *products.Service) http.Handler {
	return productshttp.Handler(svc, authtest.Authenticator(c.users, c.orders, c.other), nil, logging.Discard())
}

// admin returns the headers of a request by an administrator.
func (c *creds) admin(t testing.TB) http.Header {
	return authtest.Header(c.users.Admin(t, adminID), "")
}

// service returns the headers of a request by the orders service.
func (c *creds) service(t testing.TB) http.Header {
	return authtest.Header("", c.orders.Token(t))
}

// Users of the tests. The products service does not look users up: who they
// are is what their tokens say.
const (
	adaID   = "0190f000-0000-7000-8000-00000000ada0"
	bobID   = "0190f000-0000-7000-8000-00000000b0b0"
	adminID = "0190f000-0000-7000-8000-00000000ad00"
)

func newServer(t *testing.T) (*httptest.Server, *products.Service, *creds) {
	t.Helper()
	svc := newService(t)
	c := newCreds(t)
	srv := httptest.NewServer(c.handler(svc))
	t.Cleanup(srv.Close)
	return srv, svc, c
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func eur(cents int64) products.Money { return products.Money{Amount: cents, Currency: "EUR"} }

func create(t *testing.T, svc *products.Service, sku string, stock int) products.Product {
	t.Helper()
	p, err := svc.Create(t.Context(), products.NewProduct{SKU: sku, Name: "Product " + sku, Price: eur(1000), Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// request is one call and the answer it must get: status and, for errors, the
// problem type ("" to skip checking it).
type request struct {
	name     string
	method   string
	path     string
	body     string
	want     int
	wantType string
}

// do makes the call with the credentials in header and checks the answer. A
// 401 must come with a Bearer challenge.
func (tt request) do(t *testing.T, base string, header http.Header) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, strings.NewReader(tt.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if tt.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	problemtest.Check(t, resp.StatusCode, resp.Header, body, tt.want, tt.wantType)
	if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), auth.Challenge) {
		t.Errorf("WWW-Authenticate = %q, want the Bearer challenge", resp.Header.Get("WWW-Authenticate"))
	}
	return body
}

func run(t *testing.T, base string, header http.Header, tests []request) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.do(t, base, header) })
	}
}

func listAll(t *testing.T, svc *products.Service) []products.Product {
	t.Helper()
	p, err := svc.List(t.Context(), products.ListQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

func TestCreateProductRequests(t *testing.T) {
	srv, svc, c := newServer(t)
	const valid = `{"sku":"MUG-001","name":"Mug","price":{"amount":1490,"currency":"EUR"},"stock":5}`
	post := func(name, body string, want int, wantType string) request {
		return request{name, http.MethodPost, "/api/v1/products", body, want, wantType}
	}
	run(t, srv.URL, c.admin(t), []request{
		post("valid", valid, 201, ""),
		post("duplicate sku", strings.Replace(valid, `"Mug"`, `"Other"`, 1), 409, "/problems/sku-taken"),
		post("malformed json", `{"sku":`, 400, "/problems/invalid-request"),
		post("unknown field", `{"sku":"A-1","name":"A","price":{"amount":1,"currency":"EUR"},"stock":1,"id":"x"}`, 422, "/problems/validation-failed"),
		post("unknown nested field", `{"sku":"A-1","name":"A","price":{"amount":1,"currency":"EUR","tax":1},"stock":1}`, 422, "/problems/validation-failed"),
		post("wrong type", `{"sku":"A-1","name":"A","price":{"amount":"1","currency":"EUR"},"stock":1}`, 422, "/problems/validation-failed"),
		post("missing price", `{"sku":"A-1","name":"A","stock":1}`, 422, "/problems/validation-failed"),
		post("lower-case sku", `{"sku":"a-1","name":"A","price":{"amount":1,"currency":"EUR"},"stock":1}`, 422, "/problems/validation-failed"),
		post("bad currency", `{"sku":"A-1","name":"A","price":{"amount":1,"currency":"euro"},"stock":1}`, 422, "/problems/validation-failed"),
		post("price too high", `{"sku":"A-1","name":"A","price":{"amount":100000001,"currency":"EUR"},"stock":1}`, 422, "/problems/validation-failed"),
		post("negative stock", `{"sku":"A-1","name":"A","price":{"amount":1,"currency":"EUR"},"stock":-1}`, 422, "/problems/validation-failed"),
		post("fractional stock", `{"sku":"A-1","name":"A","price":{"amount":1,"currency":"EUR"},"stock":1.5}`, 422, "/problems/validation-failed"),
		post("blank name", `{"sku":"A-1","name":"  ","price":{"amount":1,"currency":"EUR"},"stock":1}`, 400, "/problems/invalid-request"),
		post("control character", `{"sku":"A-1","name":"A\u0007","price":{"amount":1,"currency":"EUR"},"stock":1}`, 400, "/problems/invalid-request"),
		post("oversize body", `{"sku":"A-1","name":"`+strings.Repeat("x", 70000)+`"}`, 413, "/problems/too-large"),
		post("empty body", ``, 400, ""),
	})
	all := listAll(t, svc)
	if len(all) != 1 {
		t.Fatalf("products after bad requests = %d, want 1", len(all))
	}

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/products", strings.NewReader(strings.Replace(valid, "MUG-001", "MUG-002", 1)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.admin(t)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got products.Product
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if loc, want := resp.Header.Get("Location"), "/api/v1/products/"+got.ID; resp.StatusCode != 201 || loc != want {
		t.Errorf("status %d, Location %q; want 201, %q", resp.StatusCode, loc, want)
	}
	want := products.Product{ID: got.ID, SKU: "MUG-002", Name: "Mug", Price: eur(1490), Stock: 5, CreatedAt: got.CreatedAt, UpdatedAt: got.CreatedAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created product mismatch (-want +got):\n%s", diff)
	}
}

func TestReadProductRequests(t *testing.T) {
	srv, svc, _ := newServer(t)
	a, b, c := create(t, svc, "A-1", 1), create(t, svc, "B-1", 2), create(t, svc, "C-1", 3)
	get := func(name, path string, want int, wantType string) request {
		return request{name, http.MethodGet, path, "", want, wantType}
	}
	run(t, srv.URL, nil, []request{ // anonymous: the catalog is public
		get("product", "/api/v1/products/"+a.ID, 200, ""),
		get("unknown product", "/api/v1/products/"+newID(), 404, "/problems/not-found"),
		get("malformed id", "/api/v1/products/nope", 404, "/problems/not-found"),
		get("limit too large", "/api/v1/products?limit=101", 422, "/problems/validation-failed"),
		get("limit not a number", "/api/v1/products?limit=x", 422, "/problems/validation-failed"),
		get("bad cursor", "/api/v1/products?cursor=***", 400, "/problems/invalid-request"),
		get("query too long", "/api/v1/products?q="+strings.Repeat("x", 101), 422, "/problems/validation-failed"),
		get("unknown parameter", "/api/v1/products?sort=name", 422, "/problems/validation-failed"),
		get("malformed id in batch", "/api/v1/products?ids="+a.ID+",x", 400, "/problems/invalid-request"),
		get("batch too large", "/api/v1/products?ids="+strings.Repeat(a.ID+",", 100)+a.ID, 422, "/problems/validation-failed"),
		get("batch with q", "/api/v1/products?q=a&ids="+a.ID, 400, "/problems/invalid-request"),
		get("no such route", "/api/v1/nope", 404, "/problems/not-found"),
	})

	tests := []struct {
		name, query string
		want        []products.Product
		wantNext    bool
	}{
		{"first page", "limit=2", []products.Product{a, b}, true},
		{"search", "q=product%20b", []products.Product{b}, false},
		{"batch, duplicates and unknown ids", "ids=" + c.ID + "," + a.ID + "," + c.ID + "," + newID(), []products.Product{a, c}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := request{"", http.MethodGet, "/api/v1/products?" + tt.query, "", 200, ""}.do(t, srv.URL, nil)
			var got struct {
				Items      []products.Product `json:"items"`
				NextCursor string             `json:"next_cursor"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Items); diff != "" || (got.NextCursor != "") != tt.wantNext {
				t.Errorf("next cursor %q, want one: %v; items mismatch (-want +got):\n%s", got.NextCursor, tt.wantNext, diff)
			}
		})
	}
}

func TestUpdateProductRequests(t *testing.T) {
	srv, svc, c := newServer(t)
	p := create(t, svc, "A-1", 1)
	patch := func(name, id, body string, want int, wantType string) request {
		return request{name, http.MethodPatch, "/api/v1/products/" + id, body, want, wantType}
	}
	run(t, srv.URL, c.admin(t), []request{
		patch("empty patch", p.ID, `{}`, 400, "/problems/invalid-request"),
		patch("unknown field", p.ID, `{"sku":"B-1"}`, 422, "/problems/validation-failed"),
		patch("negative stock", p.ID, `{"stock":-1}`, 422, "/problems/validation-failed"),
		patch("incomplete price", p.ID, `{"price":{"amount":5}}`, 422, "/problems/validation-failed"),
		patch("unknown product", newID(), `{"stock":1}`, 404, "/problems/not-found"),
		patch("malformed json", p.ID, `{"stock":`, 400, "/problems/invalid-request"),
	})
	if got := listAll(t, svc); !cmp.Equal([]products.Product{p}, got) {
		t.Fatalf("bad patches changed the product: %s", cmp.Diff([]products.Product{p}, got))
	}
	body := patch("valid", p.ID, `{"stock":40,"price":{"amount":2000,"currency":"USD"}}`, 200, "").do(t, srv.URL, c.admin(t))
	var got products.Product
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := p
	want.Stock, want.Price, want.UpdatedAt = 40, products.Money{Amount: 2000, Currency: "USD"}, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PATCH mismatch (-want +got):\n%s", diff)
	}
}

func TestReserveRequests(t *testing.T) {
	srv, svc, c := newServer(t)
	p, q := create(t, svc, "A-1", 10), create(t, svc, "B-1", 10)
	order := newID()
	line := func(id string, qty int) string {
		return `{"product_id":"` + id + `","quantity":` + strconv.Itoa(qty) + `}`
	}
	body := func(orderID string, lines ...string) string {
		return `{"order_id":"` + orderID + `","lines":[` + strings.Join(lines, ",") + `]}`
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = line(newID(), 1)
	}
	post := func(name, b string, want int, wantType string) request {
		return request{name, http.MethodPost, "/internal/v1/reservations", b, want, wantType}
	}
	run(t, srv.URL, c.service(t), []request{
		post("malformed json", `{"order_id":`, 400, "/problems/invalid-request"),
		post("not an object", `[]`, 422, "/problems/validation-failed"),
		post("unknown field", `{"order_id":"`+order+`","lines":[`+line(p.ID, 1)+`],"user_id":"x"}`, 422, "/problems/validation-failed"),
		post("unknown line field", body(order, `{"product_id":"`+p.ID+`","quantity":1,"price":1}`), 422, "/problems/validation-failed"),
		post("quantity as string", body(order, `{"product_id":"`+p.ID+`","quantity":"1"}`), 422, "/problems/validation-failed"),
		post("quantity zero", body(order, line(p.ID, 0)), 422, "/problems/validation-failed"),
		post("quantity too large", body(order, line(p.ID, 1001)), 422, "/problems/validation-failed"),
		post("no lines", body(order), 422, "/problems/validation-failed"),
		post("null lines", `{"order_id":"`+order+`","lines":null}`, 400, "/problems/invalid-request"),
		post("too many lines", body(order, many...), 422, "/problems/validation-failed"),
		post("malformed order id", body("order-1", line(p.ID, 1)), 422, "/problems/validation-failed"),
		post("malformed product id", body(order, line("mug", 1)), 422, "/problems/validation-failed"),
		post("duplicate product", body(order, line(p.ID, 1), line(p.ID, 2)), 400, "/problems/invalid-request"),
		post("unknown product", body(order, line(p.ID, 1), line(newID(), 1)), 422, "/problems/unknown-product"),
		post("oversize body", body(order, line(p.ID, 1))+strings.Repeat(" ", 70000), 413, "/problems/too-large"),
		post("empty body", ``, 400, ""),
		{"malformed order id on release", http.MethodDelete, "/internal/v1/reservations/x", "", 400, "/problems/invalid-request"},
	})
	if got := []int{listAll(t, svc)[0].Stock, listAll(t, svc)[1].Stock}; !slices.Equal(got, []int{10, 10}) {
		t.Fatalf("stock after bad requests = %v, want [10 10]", got)
	}

	tests := []struct {
		name  string
		order string
		body  string
		want  products.Reservation
		stock []int
	}{
		{"short", order, body(order, line(p.ID, 1), line(q.ID, 11)),
			products.Reservation{OrderID: order, Status: products.Rejected, Reason: "insufficient stock",
				Lines:     []products.Line{{ProductID: p.ID, Quantity: 1}, {ProductID: q.ID, Quantity: 11}},
				Shortages: []products.Shortage{{ProductID: q.ID, Requested: 11, Available: 10}}},
			[]int{10, 10}},
		{"reserved", order, body(order, line(p.ID, 1), line(q.ID, 10)),
			products.Reservation{OrderID: order, Status: products.Reserved,
				Lines: []products.Line{{ProductID: p.ID, Quantity: 1}, {ProductID: q.ID, Quantity: 10}}},
			[]int{9, 0}},
		{"repeated", order, body(order, line(p.ID, 1), line(q.ID, 10)),
			products.Reservation{OrderID: order, Status: products.Reserved,
				Lines: []products.Line{{ProductID: p.ID, Quantity: 1}, {ProductID: q.ID, Quantity: 10}}},
			[]int{9, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got products.Reservation
			if err := json.Unmarshal(post(tt.name, tt.body, 200, "").do(t, srv.URL, c.service(t)), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reservation mismatch (-want +got):\n%s", diff)
			}
			all := listAll(t, svc)
			if got := []int{all[0].Stock, all[1].Stock}; !slices.Equal(got, tt.stock) {
				t.Errorf("stock = %v, want %v", got, tt.stock)
			}
		})
	}
	for range 2 {
		request{"release", http.MethodDelete, "/internal/v1/reservations/" + order, "", 204, ""}.do(t, srv.URL, c.service(t))
		all := listAll(t, svc)
		if got := []int{all[0].Stock, all[1].Stock}; !slices.Equal(got, []int{10, 10}) {
			t.Errorf("stock after release = %v, want [10 10]", got)
		}
	}
}

// newClient returns a client of the products service at url whose calls carry
// the credentials auth.Credentials(signer) adds, as the wiring configures it.
func newClient(t *testing.T, url string, signer *auth.ServiceSigner) *productshttp.Client {
	t.Helper()
	up, err := upstream.New(upstream.Options{Name: "products", BaseURL: url, MaxRetries: 1, Decorate: auth.Credentials(signer)})
	if err != nil {
		t.Fatal(err)
	}
	return productshttp.NewClient(up)
}

func TestClientRoundTrip(t *testing.T) {
	srv, svc, cr := newServer(t)
	// The orders service calls for a customer, whose token it forwards.
	ctx := cr.users.Context(t, t.Context(), adaID, auth.RoleCustomer)
	a, b := create(t, svc, "A-1", 3), create(t, svc, "B-1", 1)
	c := newClient(t, srv.URL, cr.orders.Signer)

	got, err := c.Products(ctx, []string{b.ID, a.ID, newID()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]products.Product{a, b}, got); diff != "" {
		t.Errorf("Products() mismatch (-want +got):\n%s", diff)
	}

	order := newID()
	lines := []products.Line{{ProductID: a.ID, Quantity: 2}, {ProductID: b.ID, Quantity: 1}}
	for range 2 { // idempotent
		r, err := c.Reserve(ctx, order, lines)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(products.Reservation{OrderID: order, Status: products.Reserved, Lines: lines}, r); diff != "" {
			t.Errorf("Reserve() mismatch (-want +got):\n%s", diff)
		}
	}
	r, err := c.Reserve(ctx, newID(), []products.Line{{ProductID: b.ID, Quantity: 1}})
	if err != nil || r.Status != products.Rejected || len(r.Shortages) != 1 {
		t.Errorf("Reserve(sold out) = %+v, %v; want a rejection with one shortage", r, err)
	}
	for range 2 { // idempotent
		if err := c.Release(ctx, order); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := svc.Products(ctx, []string{a.ID, b.ID}); got[0].Stock != 3 || got[1].Stock != 1 {
		t.Errorf("stock after release = %d, %d; want 3, 1", got[0].Stock, got[1].Stock)
	}

	tests := []struct {
		name string
		call func() error
		want fault.Kind
		code string
	}{
		{"products, no ids", func() error { _, err := c.Products(ctx, nil); return err }, fault.Invalid, ""},
		{"products, malformed id", func() error { _, err := c.Products(ctx, []string{a.ID + ",x"}); return err }, fault.Invalid, ""},
		{"reserve, unknown product", func() error {
			_, err := c.Reserve(ctx, newID(), []products.Line{{ProductID: newID(), Quantity: 1}})
			return err
		}, fault.Unprocessable, "unknown-product"},
		{"reserve, zero quantity", func() error {
			_, err := c.Reserve(ctx, newID(), []products.Line{{ProductID: a.ID, Quantity: 0}})
			return err
		}, fault.Invalid, ""},
		{"release, malformed id", func() error { return c.Release(ctx, "../x") }, fault.Invalid, ""},
		{"release, unknown order", func() error { return c.Release(ctx, newID()) }, fault.Internal, ""}, // nil error
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.want == fault.Internal {
				if err != nil {
					t.Errorf("error = %v, want nil", err)
				}
				return
			}
			if fault.KindOf(err) != tt.want || fault.CodeOf(err) != tt.code {
				t.Errorf("error = %v (kind %v, code %q), want kind %v code %q", err, fault.KindOf(err), fault.CodeOf(err), tt.want, tt.code)
			}
		})
	}
}

// TestClientDistrustsPeer checks that answers that do not fit the request
// become fault.BadGateway errors.
func TestClientDistrustsPeer(t *testing.T) {
	ctx := context.Background()
	order, asked, other := newID(), newID(), newID()
	tests := []struct {
		name   string
		answer string
		call   func(c *productshttp.Client) error
	}{
		{"product not asked for", `{"items":[{"id":"` + other + `"}]}`, func(c *productshttp.Client) error {
			_, err := c.Products(ctx, []string{asked})
			return err
		}},
		{"product twice", `{"items":[{"id":"` + asked + `"},{"id":"` + asked + `"}]}`, func(c *productshttp.Client) error {
			_, err := c.Products(ctx, []string{asked})
			return err
		}},
		{"not json", `<html>`, func(c *productshttp.Client) error {
			_, err := c.Products(ctx, []string{asked})
			return err
		}},
		{"other order", `{"order_id":"` + other + `","status":"reserved","lines":[{"product_id":"` + asked + `","quantity":1}]}`, reserve(order, asked)},
		{"unknown status", `{"order_id":"` + order + `","status":"maybe","lines":[{"product_id":"` + asked + `","quantity":1}]}`, reserve(order, asked)},
		{"reserved nothing", `{"order_id":"` + order + `","status":"reserved","lines":[]}`, reserve(order, asked)},
		{"rejected without shortages", `{"order_id":"` + order + `","status":"rejected","lines":[]}`, reserve(order, asked)},
		{"shortage of another product", `{"order_id":"` + order + `","status":"rejected","shortages":[{"product_id":"` + other + `","requested":1,"available":0}]}`, reserve(order, asked)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.answer)
			}))
			defer srv.Close()
			if err := tt.call(newClient(t, srv.URL, nil)); !fault.Is(err, fault.BadGateway) {
				t.Errorf("error = %v (kind %v), want bad_gateway", err, fault.KindOf(err))
			}
		})
	}
}

func reserve(order, product string) func(c *productshttp.Client) error {
	return func(c *productshttp.Client) error {
		_, err := c.Reserve(context.Background(), order, []products.Line{{ProductID: product, Quantity: 1}})
		return err
	}
}

func TestDescribeLeavesOutInternalOperations(t *testing.T) {
	_, api := humatest.New(t)
	productshttp.Describe(api)
	var got []string
	for path, item := range api.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PATCH": item.Patch, "DELETE": item.Delete, "PUT": item.Put} {
			if op != nil {
				got = append(got, method+" "+path)
			}
		}
	}
	slices.Sort(got)
	want := []string{"GET /api/v1/products", "GET /api/v1/products/{id}", "PATCH /api/v1/products/{id}", "POST /api/v1/products"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("described operations mismatch (-want +got):\n%s", diff)
	}
}
