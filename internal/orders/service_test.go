package orders_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordersdb"
	"github.com/microshop/microshop/internal/orders/ordersdb/ordersdbtest"
	"github.com/microshop/microshop/internal/orders/orderstest"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/users"
	"github.com/microshop/microshop/internal/users/usersdb"
)

// The monolith gives orders the products service itself.
var _ orders.Catalog = (*products.Service)(nil)

// shop is an orders service over the real users service and an in-memory
// catalog, with its own database (orders, outbox, inbox).
type shop struct {
	db      *sqldb.DB
	store   *ordersdb.Store
	users   *users.Service
	catalog *orderstest.Catalog
	svc     *orders.Service
	kicks   atomic.Int32 // relay kicks by svc
	ada     users.User
	mug     products.Product // EUR 14.90
	shirt   products.Product // EUR 29.00
	lamp    products.Product // EUR 79.00, 1 in stock
	book    products.Product // USD 12.00
}

func newShop(t *testing.T) *shop {
	t.Helper()
	return newShopOn(t, ordersdbtest.Open(t, sqldb.SQLite))
}

// newShopOn returns a shop whose orders live in db.
func newShopOn(t *testing.T, db *sqldb.DB) *shop {
	t.Helper()
	ctx := context.Background()
	s := &shop{
		db:      db,
		store:   ordersdb.New(db),
		users:   users.NewService(usersdb.New(sqldbtest.Open(t, sqldb.SQLite, "users", usersdb.Migrations())), logging.Discard()),
		catalog: orderstest.NewCatalog(),
	}
	s.svc = s.with(s.users, s.catalog, orders.WithKick(func() { s.kicks.Add(1) }))
	var err error
	if s.ada, err = s.users.Create(ctx, users.NewUser{Name: "Ada", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	s.mug = s.catalog.Add("MUG-1", "Mug", eur(1490), 10)
	s.shirt = s.catalog.Add("TSH-1", "Shirt", eur(2900), 5)
	s.lamp = s.catalog.Add("LMP-1", "Lamp", eur(7900), 1)
	s.book = s.catalog.Add("BOOK-1", "Book", products.Money{Amount: 1200, Currency: "USD"}, 10)
	return s
}

// with returns another orders service (as another replica) over the shop's
// store with other peers and options.
func (s *shop) with(dir orders.UserDirectory, cat orders.Catalog, opts ...orders.Option) *orders.Service {
	return orders.NewService(s.store, dir, cat, logging.Discard(), opts...)
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

// place places an order of lines for Ada.
func (s *shop) place(t *testing.T, svc *orders.Service, lines ...orders.LineRequest) orders.Order {
	t.Helper()
	o, _, err := svc.Place(as(context.Background(), s.ada.ID), orders.PlaceRequest{UserID: s.ada.ID, Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// stock delivers a stock event of type typ about the order to the service,
// as the consumer does, and returns the order after it.
func (s *shop) stock(t *testing.T, typ, orderID, reason string) orders.Order {
	t.Helper()
	if err := s.svc.HandleStockEvent(context.Background(), orderstest.StockEvent(t, typ, orderID, reason)); err != nil {
		t.Fatalf("HandleStockEvent(%s): %v", typ, err)
	}
	return s.order(t, orderID)
}

func (s *shop) order(t *testing.T, id string) orders.Order {
	t.Helper()
	o, err := s.svc.Order(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// as returns ctx acting for the customer userID, as the Authenticator leaves
// it: the in-memory users service sees who calls.
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

// ignoreMade ignores what Place makes up: the id and the times.
var ignoreMade = cmpopts.IgnoreFields(orders.Order{}, "ID", "CreatedAt", "UpdatedAt", "Deadline")

func eur(a int64) products.Money { return products.Money{Amount: a, Currency: "EUR"} }

// placedData decodes an orders.placed event's data.
func placedData(t *testing.T, raw []byte) events.OrderPlacedData {
	t.Helper()
	var d events.OrderPlacedData
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("orders.placed data %s: %v", raw, err)
	}
	return d
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name     string
		req      func(s *shop) orders.PlaceRequest
		want     func(s *shop) orders.Order // nil when Place fails
		wantKind fault.Kind
		wantCode string
	}{
		{
			name: "pending",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 2), line(s.shirt, 1)}}
			},
			want: func(s *shop) orders.Order {
				return orders.Order{UserID: s.ada.ID, Status: orders.StatusPending, Total: eur(2*1490 + 2900), Lines: []orders.Line{
					{ProductID: s.mug.ID, Quantity: 2, UnitPrice: eur(1490)}, {ProductID: s.shirt.ID, Quantity: 1, UnitPrice: eur(2900)}}}
			},
		},
		{
			name: "more than in stock is for products to decide",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.lamp, 2)}}
			},
			want: func(s *shop) orders.Order {
				return orders.Order{UserID: s.ada.ID, Status: orders.StatusPending, Total: eur(2 * 7900),
					Lines: []orders.Line{{ProductID: s.lamp.ID, Quantity: 2, UnitPrice: eur(7900)}}}
			},
		},
		{
			name: "unknown user",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: "0190f000-0000-7000-8000-000000000000", Lines: []orders.LineRequest{line(s.mug, 1)}}
			},
			wantKind: fault.Unprocessable, wantCode: "unknown-user",
		},
		{
			name: "unknown product",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), {ProductID: "0190f000-0000-7000-8000-000000000000", Quantity: 1}}}
			},
			wantKind: fault.Unprocessable, wantCode: "unknown-product",
		},
		{
			name: "mixed currencies",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1), line(s.book, 1)}}
			},
			wantKind: fault.Unprocessable, wantCode: "mixed-currencies",
		},
		{
			name: "invalid",
			req: func(s *shop) orders.PlaceRequest {
				return orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 0)}}
			},
			wantKind: fault.Invalid,
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
				if got := ordersdbtest.Kinds(t, s.db); got != nil {
					t.Errorf("outbox after a failed Place = %v, want nothing", got)
				}
				if n := s.kicks.Load(); n != 0 {
					t.Errorf("relay kicked %d times after a failed Place, want 0", n)
				}
				return
			}
			if err != nil || replayed {
				t.Fatalf("Place() = replayed %v, error %v", replayed, err)
			}
			if diff := cmp.Diff(tt.want(s), got, ignoreMade); diff != "" {
				t.Errorf("Place() (-want +got):\n%s", diff)
			}
			if want := got.CreatedAt.Add(orders.DefaultCheckoutTimeout); !got.Deadline.Equal(want) {
				t.Errorf("deadline = %v, want %v (placed + %v)", got.Deadline, want, orders.DefaultCheckoutTimeout)
			}
			if diff := cmp.Diff(got, s.order(t, got.ID)); diff != "" {
				t.Errorf("stored order (-placed +stored):\n%s", diff)
			}
			// Exactly one event, orders.placed, was committed with the order.
			out := ordersdbtest.Outbox(t, s.db)
			if len(out) != 1 || out[0].Type != events.OrderPlaced || out[0].Subject != got.ID || out[0].Source != events.SourceOrders {
				t.Fatalf("outbox = %v, want one orders.placed about %s", ordersdbtest.Kinds(t, s.db), got.ID)
			}
			want := events.OrderPlacedData{OrderID: got.ID, UserID: s.ada.ID, Deadline: got.Deadline}
			for _, l := range got.Lines {
				want.Lines = append(want.Lines, events.Line{ProductID: l.ProductID, Quantity: l.Quantity})
			}
			if diff := cmp.Diff(want, placedData(t, out[0].Data)); diff != "" {
				t.Errorf("orders.placed data (-want +got):\n%s", diff)
			}
			if n := s.kicks.Load(); n != 1 {
				t.Errorf("relay kicked %d times, want 1", n)
			}
		})
	}
}

func TestPlaceCheckoutTimeout(t *testing.T) {
	s := newShop(t)
	svc := s.with(s.users, s.catalog, orders.WithCheckoutTimeout(5*time.Minute))
	o := s.place(t, svc, line(s.mug, 1))
	if want := o.CreatedAt.Add(5 * time.Minute); !o.Deadline.Equal(want) {
		t.Errorf("deadline = %v, want %v", o.Deadline, want)
	}
	if d := placedData(t, ordersdbtest.Outbox(t, s.db)[0].Data); !d.Deadline.Equal(o.Deadline) {
		t.Errorf("orders.placed deadline = %v, want %v", d.Deadline, o.Deadline)
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
	// While pending, a replay returns the pending order.
	again, replayed, err := s.svc.Place(as(ctx, s.ada.ID), req)
	if err != nil || !replayed {
		t.Fatalf("replay while pending = replayed %v, error %v", replayed, err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("replay while pending (-first +replay):\n%s", diff)
	}
	// Once confirmed, a replay returns the order as it is now.
	confirmed := s.stock(t, events.StockReserved, first.ID, "")
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
				if diff := cmp.Diff(confirmed, got); diff != "" {
					t.Errorf("replayed order (-current +replayed):\n%s", diff)
				}
			}
		})
	}
	// Replays emitted nothing: three orders were placed, one confirmed.
	want := []string{events.OrderPlaced + " " + first.ID, events.OrderConfirmed + " " + first.ID}
	var got []string
	placed := 0
	for _, k := range ordersdbtest.Kinds(t, s.db) {
		if k[:len(events.OrderPlaced)] == events.OrderPlaced && k != want[0] {
			placed++
			continue
		}
		got = append(got, k)
	}
	if diff := cmp.Diff(want, got); diff != "" || placed != 2 {
		t.Errorf("outbox: events of the first order (-want +got):\n%s\nand %d other orders.placed, want 2", diff, placed)
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
		case r.err != nil:
			t.Errorf("Place() error = %v", r.err)
		case !r.replayed:
			created[r.o.ID] = true
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
	if got := ordersdbtest.Kinds(t, s.db); len(got) != 1 {
		t.Errorf("outbox = %v, want one orders.placed", got)
	}
}

func TestCancel(t *testing.T) {
	const adminID = "0190f000-0000-7000-8000-00000000ad00"
	admin := orders.Viewer{UserID: adminID, Admin: true}
	tests := []struct {
		name       string
		setup      func(t *testing.T, s *shop, id string) // brings the order to its status
		viewer     func(s *shop, bob users.User) orders.Viewer
		wantReason string     // of the cancelled order; "" when the cancellation fails
		wantKind   fault.Kind // when it fails
		wantCode   string
	}{
		{"owner, pending", nil, func(s *shop, _ users.User) orders.Viewer { return orders.Viewer{UserID: s.ada.ID} },
			orders.CancelledReason, 0, ""},
		{"owner, confirmed", func(t *testing.T, s *shop, id string) { s.stock(t, events.StockReserved, id, "") },
			func(s *shop, _ users.User) orders.Viewer { return orders.Viewer{UserID: s.ada.ID} }, orders.CancelledReason, 0, ""},
		{"admin", nil, func(*shop, users.User) orders.Viewer { return admin }, orders.AdminCancelledReason, 0, ""},
		{"another customer", nil, func(_ *shop, bob users.User) orders.Viewer { return orders.Viewer{UserID: bob.ID} },
			"", fault.NotFound, ""},
		{"nobody", nil, func(*shop, users.User) orders.Viewer { return orders.Viewer{} }, "", fault.NotFound, ""},
		{"rejected", func(t *testing.T, s *shop, id string) { s.stock(t, events.StockRejected, id, "no lamps") },
			func(s *shop, _ users.User) orders.Viewer { return orders.Viewer{UserID: s.ada.ID} }, "", fault.Conflict, orders.CodeIllegalTransition},
		{"cancelled", func(t *testing.T, s *shop, id string) {
			if _, err := s.svc.Cancel(context.Background(), id, orders.Viewer{UserID: s.ada.ID}); err != nil {
				t.Fatal(err)
			}
		}, func(s *shop, _ users.User) orders.Viewer { return orders.Viewer{UserID: s.ada.ID} }, "", fault.Conflict, orders.CodeIllegalTransition},
		{"expired", func(t *testing.T, s *shop, id string) { expireAll(t, s) },
			func(*shop, users.User) orders.Viewer { return admin }, "", fault.Conflict, orders.CodeIllegalTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShop(t)
			bob, err := s.users.Create(context.Background(), users.NewUser{Name: "Bob", Email: "bob@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			o := s.place(t, s.svc, line(s.mug, 1))
			if tt.setup != nil {
				tt.setup(t, s, o.ID)
			}
			before := s.order(t, o.ID)
			outbox := ordersdbtest.Kinds(t, s.db)
			got, err := s.svc.Cancel(context.Background(), o.ID, tt.viewer(s, bob))
			if tt.wantReason == "" {
				wantFault(t, err, tt.wantKind, tt.wantCode)
				if tt.wantKind == fault.NotFound {
					_, unknownErr := s.svc.Cancel(context.Background(), "0190f000-0000-7000-8000-000000000000", tt.viewer(s, bob))
					if err.Error() != unknownErr.Error() || fault.CodeOf(err) != fault.CodeOf(unknownErr) {
						t.Errorf("error = %q, want the error of an unknown order, %q", err, unknownErr)
					}
				}
				if diff := cmp.Diff(before, s.order(t, o.ID)); diff != "" {
					t.Errorf("a refused cancellation changed the order (-before +after):\n%s", diff)
				}
				if diff := cmp.Diff(outbox, ordersdbtest.Kinds(t, s.db)); diff != "" {
					t.Errorf("a refused cancellation emitted (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != orders.StatusCancelled || got.Reason != tt.wantReason {
				t.Errorf("Cancel() = %s %q, want cancelled %q", got.Status, got.Reason, tt.wantReason)
			}
			if diff := cmp.Diff(got, s.order(t, o.ID)); diff != "" {
				t.Errorf("stored order (-returned +stored):\n%s", diff)
			}
			want := append(outbox, events.OrderCancelled+" "+o.ID)
			if diff := cmp.Diff(want, ordersdbtest.Kinds(t, s.db)); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
			var d events.OrderData
			if err := json.Unmarshal(ordersdbtest.Outbox(t, s.db)[len(want)-1].Data, &d); err != nil || d != (events.OrderData{OrderID: o.ID, Reason: tt.wantReason}) {
				t.Errorf("orders.cancelled data = %+v (%v)", d, err)
			}
		})
	}
	t.Run("malformed id", func(t *testing.T) {
		s := newShop(t)
		_, err := s.svc.Cancel(context.Background(), "../x", orders.Viewer{UserID: s.ada.ID})
		wantFault(t, err, fault.NotFound, "")
	})
}

// expireAll expires every pending order of the shop at once, through a
// replica whose clock is past every deadline.
func expireAll(t *testing.T, s *shop) int {
	t.Helper()
	late := s.with(s.users, s.catalog, orders.WithKick(func() { s.kicks.Add(1) }))
	orders.SetClock(late, func() time.Time { return time.Now().Add(orders.DefaultCheckoutTimeout + time.Minute) })
	n, err := late.ExpirePending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExpirePending(t *testing.T) {
	s := newShop(t)
	ctx := as(context.Background(), s.ada.ID)
	quick := s.with(s.users, s.catalog, orders.WithCheckoutTimeout(time.Millisecond))
	stale, _, err := quick.Place(ctx, orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 4)}, IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	answered := s.place(t, quick, line(s.lamp, 1))
	s.stock(t, events.StockReserved, answered.ID, "")
	fresh := s.place(t, s.svc, line(s.shirt, 1))
	time.Sleep(5 * time.Millisecond) // past the quick orders' deadline

	if n, err := s.svc.ExpirePending(ctx); n != 1 || err != nil {
		t.Errorf("ExpirePending() = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.svc.ExpirePending(ctx); n != 0 || err != nil {
		t.Errorf("ExpirePending() again = %d, %v; want 0, nil", n, err)
	}
	got := map[string]string{}
	for _, o := range []orders.Order{stale, answered, fresh} {
		got[o.ID] = s.order(t, o.ID).Status
	}
	want := map[string]string{stale.ID: orders.StatusExpired, answered.ID: orders.StatusConfirmed, fresh.ID: orders.StatusPending}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	var expired []string
	for _, k := range ordersdbtest.Kinds(t, s.db) {
		if k[:len(events.OrderExpired)] == events.OrderExpired {
			expired = append(expired, k)
		}
	}
	if diff := cmp.Diff([]string{events.OrderExpired + " " + stale.ID}, expired); diff != "" {
		t.Errorf("orders.expired events (-want +got):\n%s", diff)
	}
	// The key now replays the expired order.
	o, replayed, err := s.svc.Place(ctx, orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 4)}, IdempotencyKey: "k"})
	if err != nil || !replayed || o.Status != orders.StatusExpired || o.Reason != orders.ExpiredReason {
		t.Errorf("replay = %s %q replayed %v error %v, want the expired order", o.Status, o.Reason, replayed, err)
	}
}

// TestExpireConcurrentSweepers runs the sweepers of two replicas at once over
// the same orders: each order expires once, with one orders.expired event.
func TestExpireConcurrentSweepers(t *testing.T) {
	ordersdbtest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		s := newShopOn(t, db)
		quick := s.with(s.users, s.catalog, orders.WithCheckoutTimeout(time.Millisecond))
		const n = 30
		for range n {
			s.place(t, quick, line(s.mug, 1))
		}
		time.Sleep(5 * time.Millisecond)
		replicas := []*orders.Service{s.svc, s.with(s.users, s.catalog)}
		var total atomic.Int32
		var wg sync.WaitGroup
		for _, r := range replicas {
			for range 2 {
				wg.Go(func() {
					got, err := r.ExpirePending(context.Background())
					if err != nil {
						t.Error(err)
					}
					total.Add(int32(got))
				})
			}
		}
		wg.Wait()
		if total.Load() != n {
			t.Errorf("orders expired by all sweepers = %d, want %d", total.Load(), n)
		}
		perOrder := map[string]int{}
		for _, e := range ordersdbtest.Outbox(t, db) {
			if e.Type == events.OrderExpired {
				perOrder[e.Subject]++
			}
		}
		if len(perOrder) != n {
			t.Errorf("orders with an orders.expired event = %d, want %d", len(perOrder), n)
		}
		for id, k := range perOrder {
			if k != 1 {
				t.Errorf("order %s: %d orders.expired events, want 1", id, k)
			}
		}
	})
}

func TestRunSweeper(t *testing.T) {
	s := newShop(t)
	quick := s.with(s.users, s.catalog, orders.WithCheckoutTimeout(time.Millisecond))
	o := s.place(t, quick, line(s.mug, 1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.svc.RunSweeper(ctx, 10*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.order(t, o.ID).Status != orders.StatusExpired && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := s.order(t, o.ID); got.Status != orders.StatusExpired || got.Reason != orders.ExpiredReason {
		t.Errorf("order after sweeping = %s %q, want expired", got.Status, got.Reason)
	}
}

// TestKicks checks that the relay is kicked after each commit that emitted an
// event, and only then.
func TestKicks(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	o := s.place(t, s.svc, line(s.mug, 1))
	steps := []struct {
		name string
		do   func() error
		want int32
	}{
		{"confirmed", func() error {
			return s.svc.HandleStockEvent(ctx, orderstest.StockEvent(t, events.StockReserved, o.ID, ""))
		}, 2},
		{"late rejection, ignored", func() error {
			return s.svc.HandleStockEvent(ctx, orderstest.StockEvent(t, events.StockRejected, o.ID, ""))
		}, 2},
		{"cancelled", func() error { _, err := s.svc.Cancel(ctx, o.ID, orders.Viewer{UserID: s.ada.ID}); return err }, 3},
		{"cancelled again, refused", func() error {
			_, err := s.svc.Cancel(ctx, o.ID, orders.Viewer{UserID: s.ada.ID})
			if fault.CodeOf(err) == orders.CodeIllegalTransition {
				return nil
			}
			return err
		}, 3},
		{"released, no event", func() error {
			return s.svc.HandleStockEvent(ctx, orderstest.StockEvent(t, events.StockReleased, o.ID, ""))
		}, 3},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.kicks.Load(); got != st.want {
			t.Errorf("%s: kicks = %d, want %d", st.name, got, st.want)
		}
	}
}

// downDirectory and downCatalog cannot answer.
type downDirectory struct{}

func (downDirectory) User(context.Context, string) (users.User, error) {
	return users.User{}, fault.New(fault.Unavailable, "users is unavailable")
}

type downCatalog struct{}

func (downCatalog) Products(context.Context, []string) ([]products.Product, error) {
	return nil, fault.New(fault.Timeout, "products did not answer in time")
}

func TestPlaceWithPeersDown(t *testing.T) {
	s := newShop(t)
	req := orders.PlaceRequest{UserID: s.ada.ID, Lines: []orders.LineRequest{line(s.mug, 1)}, IdempotencyKey: "k"}
	ctx := as(context.Background(), s.ada.ID)
	nobody := req
	nobody.UserID = uuid.NewString() // no such user
	nobody.IdempotencyKey = "k2"
	// Users and products are asked at once; the user's answer comes first.
	failures := []struct {
		name string
		svc  *orders.Service
		req  orders.PlaceRequest
		kind fault.Kind
		code string
	}{
		{"users down", s.with(downDirectory{}, s.catalog), req, fault.Unavailable, ""},
		{"products down", s.with(s.users, downCatalog{}), req, fault.Timeout, ""},
		{"both down", s.with(downDirectory{}, downCatalog{}), req, fault.Unavailable, ""},
		{"unknown user, products down", s.with(s.users, downCatalog{}), nobody, fault.Unprocessable, "unknown-user"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			_, _, err := f.svc.Place(ctx, f.req)
			wantFault(t, err, f.kind, f.code)
		})
	}
	if got := ordersdbtest.Kinds(t, s.db); got != nil || s.orders(t, s.ada.ID) != nil {
		t.Errorf("after failed Places: outbox %v, orders %v; want nothing", got, s.orders(t, s.ada.ID))
	}
	// Nothing is left of the failures: the key places the order.
	if o, replayed, err := s.svc.Place(ctx, req); err != nil || replayed || o.Status != orders.StatusPending {
		t.Errorf("retry = %s replayed %v error %v, want a new pending order", o.Status, replayed, err)
	}
}

func TestEnriched(t *testing.T) {
	s := newShop(t)
	ctx := as(context.Background(), s.ada.ID)
	o := s.place(t, s.svc, line(s.mug, 1), line(s.shirt, 2))
	tests := []struct {
		name         string
		svc          *orders.Service
		wantUser     *users.User
		wantProducts []*products.Product
		wantDegraded []string
	}{
		{"complete", s.svc, &s.ada, []*products.Product{&s.mug, &s.shirt}, []string{}},
		{"users down", s.with(downDirectory{}, s.catalog), nil, []*products.Product{&s.mug, &s.shirt}, []string{"user"}},
		{"products down", s.with(s.users, downCatalog{}), &s.ada, []*products.Product{nil, nil}, []string{"products"}},
		{"both down", s.with(downDirectory{}, downCatalog{}), nil, []*products.Product{nil, nil}, []string{"user", "products"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.svc.Enriched(ctx, o.ID, orders.Viewer{UserID: s.ada.ID})
			if err != nil {
				t.Fatal(err)
			}
			want := orders.EnrichedOrder{
				ID: o.ID, UserID: o.UserID, Status: o.Status, Total: o.Total, Deadline: o.Deadline,
				CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, User: tt.wantUser, Degraded: tt.wantDegraded,
			}
			for i, l := range o.Lines {
				want.Lines = append(want.Lines, orders.EnrichedLine{ProductID: l.ProductID, Quantity: l.Quantity, UnitPrice: l.UnitPrice, Product: tt.wantProducts[i]})
			}
			if diff := cmp.Diff(want, got); diff != "" {
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
		o := s.place(t, s.svc, line(s.mug, 1))
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

// countingDirectory counts the calls that reach the real users service.
type countingDirectory struct {
	orders.UserDirectory
	calls *atomic.Int32
}

func (d countingDirectory) User(ctx context.Context, id string) (users.User, error) {
	d.calls.Add(1)
	return d.UserDirectory.User(ctx, id)
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
	o := s.place(t, s.svc, line(s.mug, 1))
	var userCalls atomic.Int32
	svc := s.with(countingDirectory{s.users, &userCalls}, s.catalog)
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
			productCalls := s.catalog.Calls()
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
			if n, m := userCalls.Load(), s.catalog.Calls()-productCalls; n != 0 || m != 0 {
				t.Errorf("users called %d times, products %d times; want neither", n, m)
			}
		})
	}
}
