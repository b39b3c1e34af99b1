package orders_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

// shop is an orders service over the real users and products services, each
// with its own SQLite database.
type shop struct {
	store   *ordersdb.Store
	users   *users.Service
	catalog *products.Service
	svc     *orders.Service
	ada     users.User
	mug     products.Product // EUR 14.90, 10 in stock
	shirt   products.Product // EUR 29.00, 5 in stock
	lamp    products.Product // EUR 79.00, 1 in stock
	book    products.Product // USD 12.00, 10 in stock
}

func newShop(t *testing.T) *shop {
	t.Helper()
	ctx := context.Background()
	s := &shop{
		store:   ordersdb.New(sqldbtest.Open(t, sqldb.SQLite, "orders", ordersdb.Migrations())),
		users:   users.NewService(usersdb.New(sqldbtest.Open(t, sqldb.SQLite, "users", usersdb.Migrations())), logging.Discard()),
		catalog: products.NewService(productsdb.New(sqldbtest.Open(t, sqldb.SQLite, "products", productsdb.Migrations()))),
	}
	s.svc = s.with(s.users, s.catalog)
	var err error
	if s.ada, err = s.users.Create(ctx, users.NewUser{Name: "Ada", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	add := func(sku, name string, price products.Money, stock int) products.Product {
		t.Helper()
		p, err := s.catalog.Create(ctx, products.NewProduct{SKU: sku, Name: name, Price: price, Stock: stock})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	s.mug = add("MUG-1", "Mug", products.Money{Amount: 1490, Currency: "EUR"}, 10)
	s.shirt = add("TSH-1", "Shirt", products.Money{Amount: 2900, Currency: "EUR"}, 5)
	s.lamp = add("LMP-1", "Lamp", products.Money{Amount: 7900, Currency: "EUR"}, 1)
	s.book = add("BOOK-1", "Book", products.Money{Amount: 1200, Currency: "USD"}, 10)
	return s
}

// with returns an orders service over the shop's store with other peers.
func (s *shop) with(dir orders.UserDirectory, cat orders.Catalog) *orders.Service {
	return orders.NewService(s.store, dir, cat, logging.Discard())
}

// stock returns the units in stock of each product, by name.
func (s *shop) stock(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range []products.Product{s.mug, s.shirt, s.lamp, s.book} {
		got, err := s.catalog.Product(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[got.Name] = got.Stock
	}
	return out
}

// orders returns the ids and statuses of the user's orders, newest first.
func (s *shop) orders(t *testing.T, userID string) []string {
	t.Helper()
	p, err := s.svc.ListByUser(context.Background(), userID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range p.Items {
		out = append(out, o.ID+" "+o.Status)
	}
	return out
}

// as returns ctx acting for the customer userID, as the Authenticator leaves
// it: the in-memory users and products services see who calls.
func as(ctx context.Context, userID string) context.Context {
	return auth.WithPrincipal(ctx, auth.Principal{UserID: userID, Role: auth.RoleCustomer})
}

// asAdmin returns ctx acting for the administrator userID.
func asAdmin(ctx context.Context, userID string) context.Context {
	return auth.WithPrincipal(ctx, auth.Principal{UserID: userID, Role: auth.RoleAdmin})
}

func line(p products.Product, qty int) orders.LineRequest {
	return orders.LineRequest{ProductID: p.ID, Quantity: qty}
}

// wantFault fails unless err is a *fault.Error of kind with code ("" for any).
func wantFault(t *testing.T, err error, kind fault.Kind, code string) {
	t.Helper()
	if fault.KindOf(err) != kind || (code != "" && fault.CodeOf(err) != code) || err == nil {
		t.Fatalf("error = %v (kind %v, code %q), want kind %v code %q", err, fault.KindOf(err), fault.CodeOf(err), kind, code)
	}
}

var fullStock = map[string]int{"Mug": 10, "Shirt": 5, "Lamp": 1, "Book": 10}

// ignoreMade ignores what Place makes up: the id and the times.
var ignoreMade = cmpopts.IgnoreFields(orders.Order{}, "ID", "CreatedAt", "UpdatedAt")

func eur(a int64) products.Money { return products.Money{Amount: a, Currency: "EUR"} }

func TestPlace(t *testing.T) {
	tests := []struct {
		name      string
		req       func(s *shop) orders.PlaceRequest
		want      func(s *shop) orders.Order // nil when Place fails
		wantKind  fault.Kind
		wantCode  string
		wantStock map[string]int
	}{
		{
			name: "confirmed",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 2), line(s.shirt, 1)}}
			},
			want: func(s *shop) orders.Order {
				return orders.Order{UserID: s.ada.ID, Status: orders.StatusConfirmed, Total: eur(2*1490 + 2900), Lines: []orders.Line{
					{ProductID: s.mug.ID, Quantity: 2, UnitPrice: eur(1490)}, {ProductID: s.shirt.ID, Quantity: 1, UnitPrice: eur(2900)}}}
			},
			wantStock: map[string]int{"Mug": 8, "Shirt": 4, "Lamp": 1, "Book": 10},
		},
		{
			name: "rejected for stock, nothing taken",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), line(s.lamp, 2)}}
			},
			want: func(s *shop) orders.Order {
				return orders.Order{UserID: s.ada.ID, Status: orders.StatusRejected, Reason: "insufficient stock: Lamp", Total: eur(1490 + 2*7900),
					Lines: []orders.Line{{ProductID: s.mug.ID, Quantity: 1, UnitPrice: eur(1490)}, {ProductID: s.lamp.ID, Quantity: 2, UnitPrice: eur(7900)}}}
			},
			wantStock: fullStock,
		},
		{
			name: "unknown user",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: "0190f000-0000-7000-8000-000000000000", Lines: []orders.LineRequest{line(s.mug, 1)}}
			},
			wantKind: fault.Unprocessable, wantCode: "unknown-user", wantStock: fullStock,
		},
		{
			name: "unknown product",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), {ProductID: "0190f000-0000-7000-8000-000000000000", Quantity: 1}}}
			},
			wantKind: fault.Unprocessable, wantCode: "unknown-product", wantStock: fullStock,
		},
		{
			name: "mixed currencies",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), line(s.book, 1)}}
			},
			wantKind: fault.Unprocessable, wantCode: "mixed-currencies", wantStock: fullStock,
		},
		{
			name: "invalid",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 0)}}
			},
			wantKind: fault.Invalid, wantStock: fullStock,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShop(t)
			req := tt.req(s)
			ctx := as(context.Background(), req.UserID)
			got, replayed, err := s.svc.Place(ctx, req)
			if tt.want == nil {
				wantFault(t, err, tt.wantKind, tt.wantCode)
				if got := s.orders(t, s.ada.ID); got != nil {
					t.Errorf("orders after a failed Place = %v, want none", got)
				}
			} else {
				if err != nil || replayed {
					t.Fatalf("Place() = replayed %v, error %v", replayed, err)
				}
				if diff := cmp.Diff(tt.want(s), got, ignoreMade); diff != "" {
					t.Errorf("Place() (-want +got):\n%s", diff)
				}
				stored, err := s.svc.Order(ctx, got.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(got, stored); diff != "" {
					t.Errorf("stored order (-placed +stored):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.wantStock, s.stock(t)); diff != "" {
				t.Errorf("stock (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlaceIdempotency(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	bob, err := s.users.Create(ctx, users.NewUser{Name: "Bob", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	req := orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), line(s.shirt, 1)}, IdempotencyKey: "checkout-1"}
	first, replayed, err := s.svc.Place(as(ctx, s.ada.ID), req)
	if err != nil || replayed {
		t.Fatalf("first Place() = replayed %v, error %v", replayed, err)
	}
	tests := []struct {
		name         string
		req          orders.PlaceRequest
		wantSame     bool   // the first order comes back, replayed
		wantCode     string // the error's code; "" for none
		wantNewOrder bool
	}{
		{"same request", req, true, "", false},
		{"same lines in another order", orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.shirt, 1), line(s.mug, 1)}, IdempotencyKey: "checkout-1"}, true, "", false},
		{"other quantity", orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), line(s.shirt, 2)}, IdempotencyKey: "checkout-1"}, false, "idempotency-key-reused", false},
		{"other product", orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1)}, IdempotencyKey: "checkout-1"}, false, "idempotency-key-reused", false},
		{"same key, other user", orders.PlaceRequest{UserID: bob.ID, Lines: req.Lines, IdempotencyKey: "checkout-1"}, false, "", true},
		{"no key", orders.PlaceRequest{UserID: s.ada.ID, Lines: req.Lines}, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, replayed, err := s.svc.Place(as(ctx, tt.req.UserID), tt.req)
			if tt.wantCode != "" {
				wantFault(t, err, fault.Unprocessable, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if replayed != tt.wantSame || (got.ID == first.ID) != tt.wantSame {
				t.Errorf("Place() = order %s replayed %v, want the first order (%s): %v", got.ID, replayed, first.ID, tt.wantSame)
			}
			if tt.wantSame {
				if diff := cmp.Diff(first, got); diff != "" {
					t.Errorf("replayed order (-first +replayed):\n%s", diff)
				}
			}
		})
	}
	// Replays took no stock: three orders of a mug and a shirt were placed.
	if diff := cmp.Diff(map[string]int{"Mug": 7, "Shirt": 2, "Lamp": 1, "Book": 10}, s.stock(t)); diff != "" {
		t.Errorf("stock (-want +got):\n%s", diff)
	}
}

func TestPlaceConcurrentSameKey(t *testing.T) {
	s := newShop(t)
	req := orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1)}, IdempotencyKey: "double-click"}
	const n = 8
	type result struct {
		o        orders.Order
		replayed bool
		err      error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o, replayed, err := s.svc.Place(as(context.Background(), s.ada.ID), req)
			results[i] = result{o, replayed, err}
		})
	}
	wg.Wait()
	created := map[string]bool{}
	for _, r := range results {
		switch {
		case r.err == nil && !r.replayed:
			created[r.o.ID] = true
		case r.err == nil:
		case fault.CodeOf(r.err) != "request-in-progress":
			t.Errorf("Place() error = %v, want none or request-in-progress", r.err)
		}
	}
	if len(created) != 1 {
		t.Fatalf("orders created = %d, want 1", len(created))
	}
	for _, r := range results {
		if r.err == nil && !created[r.o.ID] {
			t.Errorf("a request returned order %s, not the one created", r.o.ID)
		}
	}
	if got := s.stock(t)["Mug"]; got != 9 {
		t.Errorf("mugs in stock = %d, want 9", got)
	}
}

// brokenCatalog is the real catalog with failures injected after the real call,
// as when the answer of a successful call is lost.
type brokenCatalog struct {
	orders.Catalog
	reserve func(ctx context.Context) error // called after the real Reserve
	release error                           // returned instead of calling the real Release
}

func (c *brokenCatalog) Reserve(ctx context.Context, orderID string, lines []products.Line) (products.Reservation, error) {
	r, err := c.Catalog.Reserve(ctx, orderID, lines)
	if err != nil {
		return r, err
	}
	if err := c.reserve(ctx); err != nil {
		return products.Reservation{}, err
	}
	return r, nil
}

func (c *brokenCatalog) Release(ctx context.Context, orderID string) error {
	if c.release != nil {
		return c.release
	}
	return c.Catalog.Release(ctx, orderID)
}

func unavailable(context.Context) error {
	return fault.New(fault.Unavailable, "products is unavailable")
}

func TestPlaceUndoesFailedReservation(t *testing.T) {
	tests := []struct {
		name     string
		fail     func(cancel context.CancelFunc) func(context.Context) error
		wantKind fault.Kind
	}{
		{"reserve unavailable", func(context.CancelFunc) func(context.Context) error { return unavailable }, fault.Unavailable},
		{"caller gone during reserve", func(cancel context.CancelFunc) func(context.Context) error {
			return func(ctx context.Context) error { cancel(); return ctx.Err() }
		}, fault.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShop(t)
			ctx, cancel := context.WithCancel(as(context.Background(), s.ada.ID))
			defer cancel()
			svc := s.with(s.users, &brokenCatalog{Catalog: s.catalog, reserve: tt.fail(cancel)})
			req := orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 3), line(s.lamp, 1)}, IdempotencyKey: "k"}
			_, _, err := svc.Place(ctx, req)
			wantFault(t, err, tt.wantKind, "")
			if diff := cmp.Diff(fullStock, s.stock(t)); diff != "" {
				t.Errorf("stock after undo (-want +got):\n%s", diff)
			}
			if got := s.orders(t, s.ada.ID); got != nil {
				t.Errorf("orders after undo = %v, want none", got)
			}
			// Nothing is left of the first try: a retry with the same key places the order.
			o, replayed, err := s.svc.Place(as(context.Background(), s.ada.ID), req)
			if err != nil || replayed || o.Status != orders.StatusConfirmed {
				t.Errorf("retry = %s replayed %v error %v, want a new confirmed order", o.Status, replayed, err)
			}
		})
	}
}

// stuckOrder leaves an order pending with its stock held, as a Place whose
// reservation and undo both failed does.
func stuckOrder(t *testing.T, s *shop, key string) {
	t.Helper()
	broken := &brokenCatalog{Catalog: s.catalog, reserve: unavailable, release: fault.New(fault.Unavailable, "products is unavailable")}
	req := orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 4)}, IdempotencyKey: key}
	ctx := as(context.Background(), s.ada.ID)
	_, _, err := s.with(s.users, broken).Place(ctx, req)
	wantFault(t, err, fault.Unavailable, "")
	// While pending, a retry with the key is told to wait.
	_, _, err = s.svc.Place(ctx, req)
	wantFault(t, err, fault.Conflict, "request-in-progress")
	if got := s.stock(t)["Mug"]; got != 6 {
		t.Fatalf("mugs held by the stuck order: stock = %d, want 6", got)
	}
}

func TestExpirePending(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	stuckOrder(t, s, "k")
	if _, _, err := s.svc.Place(as(ctx, s.ada.ID), orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.shirt, 1)}}); err != nil {
		t.Fatal(err)
	}

	if n, err := s.svc.ExpirePending(ctx, time.Hour); n != 0 || err != nil {
		t.Errorf("ExpirePending(1h) = %d, %v; want 0, nil: the order is recent", n, err)
	}
	down := s.with(s.users, &brokenCatalog{Catalog: s.catalog, release: fault.New(fault.Unavailable, "products is unavailable")})
	if n, err := down.ExpirePending(ctx, 0); n != 0 || err != nil {
		t.Errorf("ExpirePending with products down = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.svc.ExpirePending(ctx, 0); n != 1 || err != nil {
		t.Errorf("ExpirePending(0) = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.svc.ExpirePending(ctx, 0); n != 0 || err != nil {
		t.Errorf("ExpirePending(0) again = %d, %v; want 0, nil", n, err)
	}
	if diff := cmp.Diff(map[string]int{"Mug": 10, "Shirt": 4, "Lamp": 1, "Book": 10}, s.stock(t)); diff != "" {
		t.Errorf("stock (-want +got):\n%s", diff)
	}
	// The key now replays the rejected order.
	o, replayed, err := s.svc.Place(as(ctx, s.ada.ID), orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 4)}, IdempotencyKey: "k"})
	if err != nil || !replayed || o.Status != orders.StatusRejected || o.Reason != orders.ExpiredReason {
		t.Errorf("replay = %s %q replayed %v error %v, want the rejected order", o.Status, o.Reason, replayed, err)
	}
}

func TestRunSweeper(t *testing.T) {
	s := newShop(t)
	stuckOrder(t, s, "k")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.svc.RunSweeper(ctx, 10*time.Millisecond, 0)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.stock(t)["Mug"] != 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := s.stock(t)["Mug"]; got != 10 {
		t.Errorf("mugs in stock after sweeping = %d, want 10", got)
	}
}

// downDirectory and downCatalog cannot answer.
type downDirectory struct{}

func (downDirectory) User(context.Context, string) (users.User, error) {
	return users.User{}, fault.New(fault.Unavailable, "users is unavailable")
}

type downCatalog struct{ orders.Catalog }

func (downCatalog) Products(context.Context, []string) ([]products.Product, error) {
	return nil, fault.New(fault.Timeout, "products did not answer in time")
}

func TestEnriched(t *testing.T) {
	s := newShop(t)
	ctx := as(context.Background(), s.ada.ID)
	o, _, err := s.svc.Place(ctx, orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), line(s.shirt, 2)}})
	if err != nil {
		t.Fatal(err)
	}
	mug, shirt := s.mug, s.shirt
	mug.Stock, shirt.Stock = 9, 3 // as they are now
	tests := []struct {
		name         string
		svc          *orders.Service
		wantUser     *users.User
		wantProducts []*products.Product
		wantDegraded []string
	}{
		{"complete", s.svc, &s.ada, []*products.Product{&mug, &shirt}, []string{}},
		{"users down", s.with(downDirectory{}, s.catalog), nil, []*products.Product{&mug, &shirt}, []string{"user"}},
		{"products down", s.with(s.users, downCatalog{s.catalog}), &s.ada, []*products.Product{nil, nil}, []string{"products"}},
		{"both down", s.with(downDirectory{}, downCatalog{s.catalog}), nil, []*products.Product{nil, nil}, []string{"user", "products"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.svc.Enriched(ctx, o.ID, orders.Viewer{UserID: s.ada.ID})
			if err != nil {
				t.Fatal(err)
			}
			want := orders.EnrichedOrder{
				ID: o.ID, UserID: o.UserID, Status: o.Status, Total: o.Total, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
				User: tt.wantUser, Degraded: tt.wantDegraded,
			}
			for i, l := range o.Lines {
				want.Lines = append(want.Lines, orders.EnrichedLine{ProductID: l.ProductID, Quantity: l.Quantity, UnitPrice: l.UnitPrice, Product: tt.wantProducts[i]})
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(products.Product{}, "UpdatedAt")); diff != "" {
				t.Errorf("Enriched() (-want +got):\n%s", diff)
			}
		})
	}
	for _, id := range []string{"0190f000-0000-7000-8000-000000000000", "not-an-id", ""} {
		if _, err := s.svc.Enriched(ctx, id, orders.Viewer{UserID: s.ada.ID}); !fault.Is(err, fault.NotFound) {
			t.Errorf("Enriched(%q) error = %v, want not found", id, err)
		}
	}
}

func TestListByUser(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	var placed []string
	for range 5 {
		o, _, err := s.svc.Place(as(ctx, s.ada.ID), orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		placed = append([]string{o.ID}, placed...) // newest first
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		p, err := s.svc.ListByUser(ctx, s.ada.ID, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Items {
			got = append(got, o.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if diff := cmp.Diff(placed, got); diff != "" {
		t.Errorf("orders over all pages (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ user, cursor string }{{"nope", ""}, {s.ada.ID, "!!"}} {
		if _, err := s.svc.ListByUser(ctx, tt.user, tt.cursor, 0); !fault.Is(err, fault.Invalid) {
			t.Errorf("ListByUser(%q, %q) error = %v, want invalid", tt.user, tt.cursor, err)
		}
	}
}

// countingDirectory and countingCatalog count the calls that reach the real
// users and products services.
type countingDirectory struct {
	orders.UserDirectory
	calls *atomic.Int32
}

func (d countingDirectory) User(ctx context.Context, id string) (users.User, error) {
	d.calls.Add(1)
	return d.UserDirectory.User(ctx, id)
}

type countingCatalog struct {
	orders.Catalog
	calls *atomic.Int32
}

func (c countingCatalog) Products(ctx context.Context, ids []string) ([]products.Product, error) {
	c.calls.Add(1)
	return c.Catalog.Products(ctx, ids)
}

// TestEnrichedViewers checks who may see an order: its owner and admins. For
// anyone else the order is not found, with the very error of an unknown order,
// and neither the users nor the products service is asked anything about it.
func TestEnrichedViewers(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	bob, err := s.users.Create(ctx, users.NewUser{Name: "Bob", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := s.svc.Place(as(ctx, s.ada.ID), orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	var userCalls, productCalls atomic.Int32
	svc := s.with(countingDirectory{s.users, &userCalls}, countingCatalog{s.catalog, &productCalls})
	_, unknownErr := svc.Enriched(as(ctx, s.ada.ID), "0190f000-0000-7000-8000-000000000000", orders.Viewer{UserID: s.ada.ID})
	wantFault(t, unknownErr, fault.NotFound, "")
	const adminID = "0190f000-0000-7000-8000-00000000ad00"
	tests := []struct {
		name   string
		ctx    context.Context
		viewer orders.Viewer
		want   bool
	}{
		{"owner", as(ctx, s.ada.ID), orders.Viewer{UserID: s.ada.ID}, true},
		{"admin", asAdmin(ctx, adminID), orders.Viewer{UserID: adminID, Admin: true}, true},
		{"another customer", as(ctx, bob.ID), orders.Viewer{UserID: bob.ID}, false},
		{"nobody", ctx, orders.Viewer{}, false},
		{"another customer claiming the owner's context", as(ctx, s.ada.ID), orders.Viewer{UserID: bob.ID}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userCalls.Store(0)
			productCalls.Store(0)
			got, err := svc.Enriched(tt.ctx, o.ID, tt.viewer)
			if tt.want {
				if err != nil || got.ID != o.ID || got.User == nil || len(got.Degraded) != 0 {
					t.Fatalf("Enriched() = %+v, %v; want the complete order", got, err)
				}
				return
			}
			wantFault(t, err, fault.NotFound, "")
			if err.Error() != unknownErr.Error() || fault.CodeOf(err) != fault.CodeOf(unknownErr) {
				t.Errorf("error = %q (code %q), want the error of an unknown order, %q (code %q)",
					err, fault.CodeOf(err), unknownErr, fault.CodeOf(unknownErr))
			}
			if got.ID != "" {
				t.Errorf("Enriched() returned order %s with the error", got.ID)
			}
			if n, m := userCalls.Load(), productCalls.Load(); n != 0 || m != 0 {
				t.Errorf("users called %d times, products %d times; want neither", n, m)
			}
		})
	}
}
