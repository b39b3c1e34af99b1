package productsdb_test

import (
	"context"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
)

func eur(cents int64) products.Money { return products.Money{Amount: cents, Currency: "EUR"} }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func create(t *testing.T, svc *products.Service, in products.NewProduct) products.Product {
	t.Helper()
	p, err := svc.Create(t.Context(), in)
	if err != nil {
		t.Fatalf("Create(%+v): %v", in, err)
	}
	return p
}

// stock returns the stock of each product, in the order of ids.
func stock(t *testing.T, svc *products.Service, ids ...string) []int {
	t.Helper()
	out := make([]int, len(ids))
	for i, id := range ids {
		p, err := svc.Product(t.Context(), id)
		if err != nil {
			t.Fatalf("Product(%s): %v", id, err)
		}
		out[i] = p.Stock
	}
	return out
}

func wantStock(t *testing.T, svc *products.Service, want []int, ids ...string) {
	t.Helper()
	if diff := cmp.Diff(want, stock(t, svc, ids...)); diff != "" {
		t.Errorf("stock mismatch (-want +got):\n%s", diff)
	}
}

func wantKind(t *testing.T, err error, kind fault.Kind, code string) {
	t.Helper()
	if fault.KindOf(err) != kind || (code != "" && fault.CodeOf(err) != code) {
		t.Errorf("error = %v (kind %v, code %q), want kind %v code %q", err, fault.KindOf(err), fault.CodeOf(err), kind, code)
	}
}

func count(t *testing.T, svc *products.Service) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		p, err := svc.List(t.Context(), products.ListQuery{Cursor: cursor, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Items)
		if p.NextCursor == "" {
			return n
		}
		cursor = p.NextCursor
	}
}

func TestStore(t *testing.T) {
	sqldbtest.ForEach(t, "products", productsdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		svc := products.NewService(productsdb.New(db))
		mug := create(t, svc, products.NewProduct{SKU: "MUG-001", Name: "Blue Mug", Description: "Holds tea.", Price: eur(1200), Stock: 10})
		promo := create(t, svc, products.NewProduct{SKU: "MUG-002", Name: "Red MUG 100%_off", Price: eur(900), Stock: 5})
		shirt := create(t, svc, products.NewProduct{SKU: "TSH-001", Name: "T-Shirt", Price: eur(2500)})
		all := []products.Product{mug, promo, shirt}

		t.Run("create", func(t *testing.T) {
			_, err := svc.Create(ctx, products.NewProduct{SKU: "MUG-001", Name: "Other", Price: eur(1)})
			wantKind(t, err, fault.Conflict, "sku-taken")
			if n := count(t, svc); n != 3 {
				t.Errorf("products after conflict = %d, want 3", n)
			}
		})

		t.Run("get", func(t *testing.T) {
			got, err := svc.Product(ctx, mug.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(mug, got); diff != "" {
				t.Errorf("Product() mismatch (-want +got):\n%s", diff)
			}
			for _, id := range []string{newID(), "nope", "'; DROP TABLE products; --"} {
				_, err := svc.Product(ctx, id)
				wantKind(t, err, fault.NotFound, "")
			}
		})

		t.Run("pagination", func(t *testing.T) {
			var got []products.Product
			cursor, pages := "", 0
			for {
				p, err := svc.List(ctx, products.ListQuery{Cursor: cursor, Limit: 2})
				if err != nil {
					t.Fatal(err)
				}
				got, cursor, pages = append(got, p.Items...), p.NextCursor, pages+1
				if cursor == "" {
					break
				}
			}
			if diff := cmp.Diff(all, got); diff != "" || pages != 2 {
				t.Errorf("pages = %d, want 2; items mismatch (-want +got):\n%s", pages, diff)
			}
			_, err := svc.List(ctx, products.ListQuery{Cursor: "!!"})
			wantKind(t, err, fault.Invalid, "")
		})

		t.Run("search", func(t *testing.T) {
			tests := []struct {
				q    string
				want []products.Product
			}{
				{"", all},
				{"mug", []products.Product{mug, promo}},
				{"MUG", []products.Product{mug, promo}},
				{"t-sh", []products.Product{shirt}},
				{"100%", []products.Product{promo}},
				{"%", []products.Product{promo}},
				{"_", []products.Product{promo}},
				{`\`, nil},
				{"zzz", nil},
			}
			for _, tt := range tests {
				p, err := svc.List(ctx, products.ListQuery{Query: tt.q})
				if err != nil {
					t.Fatalf("List(q=%q): %v", tt.q, err)
				}
				if tt.want == nil {
					tt.want = []products.Product{}
				}
				if diff := cmp.Diff(tt.want, p.Items); diff != "" {
					t.Errorf("List(q=%q) mismatch (-want +got):\n%s", tt.q, diff)
				}
			}
			_, err := svc.List(ctx, products.ListQuery{Query: strings.Repeat("a", 101)})
			wantKind(t, err, fault.Invalid, "")
		})

		t.Run("batch", func(t *testing.T) {
			got, err := svc.Products(ctx, []string{shirt.ID, mug.ID, mug.ID, newID()})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]products.Product{mug, shirt}, got); diff != "" {
				t.Errorf("Products() mismatch (-want +got):\n%s", diff)
			}
			got, err = svc.Products(ctx, []string{newID()})
			if err != nil || got == nil || len(got) != 0 {
				t.Errorf("Products(unknown) = %v, %v; want empty, nil", got, err)
			}
			for _, ids := range [][]string{nil, {"x"}, {mug.ID, ""}, make([]string, 101)} {
				_, err := svc.Products(ctx, ids)
				wantKind(t, err, fault.Invalid, "")
			}
		})

		t.Run("update", func(t *testing.T) {
			name, stock := "  Green Shirt ", 7
			got, err := svc.Update(ctx, shirt.ID, products.Patch{Name: &name, Stock: &stock})
			if err != nil {
				t.Fatal(err)
			}
			want := shirt
			want.Name, want.Stock, want.UpdatedAt = "Green Shirt", 7, got.UpdatedAt
			if diff := cmp.Diff(want, got); diff != "" || got.UpdatedAt.Before(shirt.UpdatedAt) {
				t.Errorf("Update() mismatch (-want +got):\n%s", diff)
			}
			stored, err := svc.Product(ctx, shirt.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, stored); diff != "" {
				t.Errorf("stored product mismatch (-want +got):\n%s", diff)
			}
			shirt = stored

			bad, neg := products.Money{Amount: 1, Currency: "eur"}, -1
			tests := []struct {
				name string
				id   string
				p    products.Patch
				kind fault.Kind
			}{
				{"empty patch", shirt.ID, products.Patch{}, fault.Invalid},
				{"bad currency", shirt.ID, products.Patch{Name: &name, Price: &bad}, fault.Invalid},
				{"negative stock", shirt.ID, products.Patch{Stock: &neg}, fault.Invalid},
				{"unknown id", newID(), products.Patch{Name: &name}, fault.NotFound},
				{"malformed id", "x", products.Patch{Name: &name}, fault.NotFound},
			}
			for _, tt := range tests {
				_, err := svc.Update(ctx, tt.id, tt.p)
				if fault.KindOf(err) != tt.kind {
					t.Errorf("%s: error = %v, want kind %v", tt.name, err, tt.kind)
				}
			}
			if after, _ := svc.Product(ctx, shirt.ID); !cmp.Equal(shirt, after) {
				t.Errorf("failed updates changed the product: %s", cmp.Diff(shirt, after))
			}
		})

		t.Run("reserve", func(t *testing.T) {
			order := newID()
			lines := []products.Line{{ProductID: promo.ID, Quantity: 2}, {ProductID: mug.ID, Quantity: 3}}
			got, err := svc.Reserve(ctx, order, lines)
			if err != nil {
				t.Fatal(err)
			}
			want := products.Reservation{OrderID: order, Status: products.Reserved, Lines: lines}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Reserve() mismatch (-want +got):\n%s", diff)
			}
			wantStock(t, svc, []int{7, 3}, mug.ID, promo.ID)

			// Idempotent: the stored reservation comes back, stock is not taken twice.
			got, err = svc.Reserve(ctx, order, []products.Line{{ProductID: mug.ID, Quantity: 1}})
			if err != nil {
				t.Fatal(err)
			}
			want.Lines = []products.Line{{ProductID: mug.ID, Quantity: 3}, {ProductID: promo.ID, Quantity: 2}} // in id order
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("second Reserve() mismatch (-want +got):\n%s", diff)
			}
			wantStock(t, svc, []int{7, 3}, mug.ID, promo.ID)

			// All or nothing: the mug line could be served but is not.
			other := newID()
			short := []products.Line{{ProductID: mug.ID, Quantity: 1}, {ProductID: promo.ID, Quantity: 4}, {ProductID: shirt.ID, Quantity: 8}}
			got, err = svc.Reserve(ctx, other, short)
			if err != nil {
				t.Fatal(err)
			}
			want = products.Reservation{OrderID: other, Status: products.Rejected, Reason: "insufficient stock", Lines: short,
				Shortages: []products.Shortage{{ProductID: promo.ID, Requested: 4, Available: 3}, {ProductID: shirt.ID, Requested: 8, Available: 7}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("short Reserve() mismatch (-want +got):\n%s", diff)
			}
			wantStock(t, svc, []int{7, 3, 7}, mug.ID, promo.ID, shirt.ID)

			_, err = svc.Reserve(ctx, newID(), []products.Line{{ProductID: mug.ID, Quantity: 1}, {ProductID: newID(), Quantity: 1}})
			wantKind(t, err, fault.Unprocessable, "unknown-product")
			wantStock(t, svc, []int{7}, mug.ID)

			many := make([]products.Line, 51)
			for i := range many {
				many[i] = products.Line{ProductID: newID(), Quantity: 1}
			}
			invalid := []struct {
				name  string
				order string
				lines []products.Line
			}{
				{"malformed order id", "order-1", lines},
				{"no lines", newID(), nil},
				{"too many lines", newID(), many},
				{"duplicate product", newID(), []products.Line{{ProductID: mug.ID, Quantity: 1}, {ProductID: mug.ID, Quantity: 1}}},
				{"zero quantity", newID(), []products.Line{{ProductID: mug.ID, Quantity: 0}}},
				{"quantity too large", newID(), []products.Line{{ProductID: mug.ID, Quantity: 1001}}},
				{"malformed product id", newID(), []products.Line{{ProductID: "mug", Quantity: 1}}},
			}
			for _, tt := range invalid {
				_, err := svc.Reserve(ctx, tt.order, tt.lines)
				if fault.KindOf(err) != fault.Invalid {
					t.Errorf("%s: error = %v, want kind invalid", tt.name, err)
				}
			}
			wantStock(t, svc, []int{7, 3, 7}, mug.ID, promo.ID, shirt.ID)

			// Release gives the units back, once.
			for range 2 {
				if err := svc.Release(ctx, order); err != nil {
					t.Fatal(err)
				}
				wantStock(t, svc, []int{10, 5}, mug.ID, promo.ID)
			}
			if err := svc.Release(ctx, newID()); err != nil {
				t.Errorf("Release(unknown order) = %v, want nil", err)
			}
			wantKind(t, svc.Release(ctx, "x"), fault.Invalid, "")

			// A release is final: a reservation request arriving late (after
			// orders gave up on a timeout and released) holds nothing.
			if got, err := svc.Reserve(ctx, order, lines); err != nil || got.Status != products.Rejected || got.Reason != products.ReasonReleased {
				t.Fatalf("Reserve after Release = %+v, %v; want rejected, %q", got, err, products.ReasonReleased)
			}
			wantStock(t, svc, []int{10, 5}, mug.ID, promo.ID)
			late := newID()
			if err := svc.Release(ctx, late); err != nil {
				t.Fatal(err)
			}
			if got, err := svc.Reserve(ctx, late, lines); err != nil || got.Status != products.Rejected {
				t.Fatalf("Reserve after a Release that found nothing = %+v, %v; want rejected", got, err)
			}
			wantStock(t, svc, []int{10, 5}, mug.ID, promo.ID)
		})

		t.Run("seed", func(t *testing.T) {
			before := count(t, svc)
			if err := svc.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			if n := count(t, svc); n != before {
				t.Errorf("Seed on a non-empty catalog: %d products, want %d", n, before)
			}
		})
	})
}

func TestConcurrency(t *testing.T) {
	sqldbtest.ForEach(t, "products", productsdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		svc := products.NewService(productsdb.New(db))
		run := func(n int, fn func(i int)) {
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { fn(i) })
			}
			wg.Wait()
		}

		t.Run("last units", func(t *testing.T) {
			p := create(t, svc, products.NewProduct{SKU: "LAST-5", Name: "Rare", Price: eur(100), Stock: 5})
			statuses := make([]string, 30)
			errs := make([]error, 30)
			run(30, func(i int) {
				r, err := svc.Reserve(ctx, newID(), []products.Line{{ProductID: p.ID, Quantity: 1}})
				statuses[i], errs[i] = r.Status, err
			})
			got := map[string]int{}
			for i := range statuses {
				if errs[i] != nil {
					t.Errorf("Reserve: %v", errs[i])
				}
				got[statuses[i]]++
			}
			if diff := cmp.Diff(map[string]int{products.Reserved: 5, products.Rejected: 25}, got); diff != "" {
				t.Errorf("outcomes mismatch (-want +got):\n%s", diff)
			}
			wantStock(t, svc, []int{0}, p.ID)
		})

		t.Run("same order", func(t *testing.T) {
			p := create(t, svc, products.NewProduct{SKU: "MANY", Name: "Common", Price: eur(100), Stock: 100})
			order := newID()
			errs := make([]error, 10)
			run(10, func(i int) {
				r, err := svc.Reserve(ctx, order, []products.Line{{ProductID: p.ID, Quantity: 3}})
				if err == nil && r.Status != products.Reserved {
					t.Errorf("status = %q, want reserved", r.Status)
				}
				errs[i] = err
			})
			for _, err := range errs {
				if err != nil {
					t.Errorf("Reserve: %v", err)
				}
			}
			wantStock(t, svc, []int{97}, p.ID)
			run(10, func(i int) { errs[i] = svc.Release(ctx, order) })
			for _, err := range errs {
				if err != nil {
					t.Errorf("Release: %v", err)
				}
			}
			wantStock(t, svc, []int{100}, p.ID)
		})

		// A reservation racing with the release of the same order either
		// happens before it (and is given back) or is refused: either way
		// nothing stays held.
		t.Run("reserve racing release", func(t *testing.T) {
			p := create(t, svc, products.NewProduct{SKU: "RACE", Name: "Raced", Price: eur(100), Stock: 1000})
			orders := make([]string, 20)
			for i := range orders {
				orders[i] = newID()
			}
			run(40, func(i int) {
				if i%2 == 0 {
					svc.Reserve(ctx, orders[i/2], []products.Line{{ProductID: p.ID, Quantity: 2}})
				} else if err := svc.Release(ctx, orders[i/2]); err != nil {
					t.Errorf("Release: %v", err)
				}
			})
			wantStock(t, svc, []int{1000}, p.ID)
		})
	})
}

func TestSeed(t *testing.T) {
	sqldbtest.ForEach(t, "products", productsdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		// Two processes starting at once share the database, not the Service.
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = products.NewService(productsdb.New(db)).Seed(context.Background()) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		svc := products.NewService(productsdb.New(db))
		if err := svc.Seed(t.Context()); err != nil {
			t.Fatal(err)
		}
		p, err := svc.List(t.Context(), products.ListQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 12 {
			t.Fatalf("seeded %d products, want 12", len(p.Items))
		}
		for _, it := range p.Items {
			if it.Price.Currency != "EUR" || it.Stock < 20 || it.Stock > 200 {
				t.Errorf("seeded %+v: want EUR and stock 20..200", it)
			}
		}
	})
}

// forEachWithOutbox is sqldbtest.ForEach with the outbox's migrations applied
// beside the service's, as the service's wiring does.
func forEachWithOutbox(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.ForEach(t, "products", productsdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		if err := sqldb.Migrate(context.Background(), db, outbox.Migrations()); err != nil {
			t.Fatalf("outbox migrations: %v", err)
		}
		fn(t, db)
	})
}

type level struct{ Available, Reserved, Sold int }

func levels(t *testing.T, svc *products.Service, ids ...string) []level {
	t.Helper()
	var out []level
	for _, id := range ids {
		a, r, s, err := svc.StockLevels(t.Context(), id)
		if err != nil {
			t.Fatalf("StockLevels(%s): %v", id, err)
		}
		out = append(out, level{a, r, s})
	}
	return out
}

func wantLevels(t *testing.T, svc *products.Service, want []level, ids ...string) {
	t.Helper()
	if diff := cmp.Diff(want, levels(t, svc, ids...)); diff != "" {
		t.Errorf("stock levels (-want +got):\n%s", diff)
	}
}

// Stock accounting: the synchronous path (Reserve, Release) and the events
// keep every unit in one of available, reserved, sold.
func TestStockLevels(t *testing.T) {
	forEachWithOutbox(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		svc := products.NewService(productsdb.New(db))
		mug := create(t, svc, products.NewProduct{SKU: "MUG-001", Name: "Mug", Price: eur(1200), Stock: 10})
		cup := create(t, svc, products.NewProduct{SKU: "CUP-001", Name: "Cup", Price: eur(900), Stock: 5})

		order := newID()
		lines := []products.Line{{ProductID: mug.ID, Quantity: 3}, {ProductID: cup.ID, Quantity: 1}}
		if r, err := svc.Reserve(ctx, order, lines); err != nil || r.Status != products.Reserved {
			t.Fatalf("Reserve = %+v, %v", r, err)
		}
		wantLevels(t, svc, []level{{7, 3, 0}, {4, 1, 0}}, mug.ID, cup.ID)

		if err := svc.OrderConfirmed(ctx, newID(), events.OrderData{OrderID: order}); err != nil {
			t.Fatal(err)
		}
		wantLevels(t, svc, []level{{7, 0, 3}, {4, 0, 1}}, mug.ID, cup.ID)

		// Reserving a sold order again answers what it bought and takes nothing.
		got, err := svc.Reserve(ctx, order, []products.Line{{ProductID: mug.ID, Quantity: 9}})
		if err != nil {
			t.Fatal(err)
		}
		want := products.Reservation{OrderID: order, Status: products.Reserved, Lines: []products.Line{{ProductID: mug.ID, Quantity: 3}, {ProductID: cup.ID, Quantity: 1}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Reserve of a sold order (-want +got):\n%s", diff)
		}
		wantLevels(t, svc, []level{{7, 0, 3}, {4, 0, 1}}, mug.ID, cup.ID)

		// An admin sets the available units; what is reserved or sold stays.
		other := newID()
		if _, err := svc.Reserve(ctx, other, []products.Line{{ProductID: mug.ID, Quantity: 2}}); err != nil {
			t.Fatal(err)
		}
		twenty := 20
		if _, err := svc.Update(ctx, mug.ID, products.Patch{Stock: &twenty}); err != nil {
			t.Fatal(err)
		}
		wantLevels(t, svc, []level{{20, 2, 3}}, mug.ID)

		batch, err := svc.StockLevelsOf(ctx, []string{cup.ID, mug.ID, cup.ID, newID()})
		if err != nil {
			t.Fatal(err)
		}
		wantBatch := []products.StockLevel{
			{ProductID: mug.ID, Available: 20, Reserved: 2, Sold: 3},
			{ProductID: cup.ID, Available: 4, Reserved: 0, Sold: 1},
		}
		if mug.ID > cup.ID {
			wantBatch[0], wantBatch[1] = wantBatch[1], wantBatch[0]
		}
		if diff := cmp.Diff(wantBatch, batch); diff != "" {
			t.Errorf("StockLevelsOf (-want +got):\n%s", diff)
		}

		// Release gives back what was sold too, and is final.
		for range 2 {
			if err := svc.Release(ctx, order); err != nil {
				t.Fatal(err)
			}
			wantLevels(t, svc, []level{{23, 2, 0}, {5, 0, 0}}, mug.ID, cup.ID)
		}
		if r, err := svc.Reserve(ctx, order, lines); err != nil || r.Status != products.Rejected || r.Reason != products.ReasonReleased {
			t.Errorf("Reserve after Release = %+v, %v; want rejected, %q", r, err, products.ReasonReleased)
		}
		// A release by event is final for the synchronous path too.
		if err := svc.OrderExpired(ctx, newID(), events.OrderData{OrderID: other}); err != nil {
			t.Fatal(err)
		}
		if r, err := svc.Reserve(ctx, other, lines); err != nil || r.Status != products.Rejected || r.Reason != products.ReasonReleased {
			t.Errorf("Reserve after orders.expired = %+v, %v; want rejected, %q", r, err, products.ReasonReleased)
		}
		wantLevels(t, svc, []level{{25, 0, 0}, {5, 0, 0}}, mug.ID, cup.ID)

		_, _, _, err = svc.StockLevels(ctx, newID())
		wantKind(t, err, fault.NotFound, "")
		_, _, _, err = svc.StockLevels(ctx, "x")
		wantKind(t, err, fault.NotFound, "")
		for _, ids := range [][]string{nil, {"x"}, make([]string, 101)} {
			_, err := svc.StockLevelsOf(ctx, ids)
			wantKind(t, err, fault.Invalid, "")
		}
		if got, err := svc.StockLevelsOf(ctx, []string{newID()}); err != nil || got == nil || len(got) != 0 {
			t.Errorf("StockLevelsOf(unknown) = %v, %v; want empty, nil", got, err)
		}
	})
}

// Migration 0002 keeps the reservations made before it, as reserved.
func TestMigrationKeepsReservations(t *testing.T) {
	first := fstest.MapFS{}
	for _, d := range []string{"sqlite", "postgres"} {
		name := d + "/0001_products.sql"
		body, err := fs.ReadFile(productsdb.Migrations(), name)
		if err != nil {
			t.Fatal(err)
		}
		first[name] = &fstest.MapFile{Data: body}
	}
	sqldbtest.ForEach(t, "products", first, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		svc := products.NewService(productsdb.New(db))
		p := create(t, svc, products.NewProduct{SKU: "OLD-1", Name: "Old", Price: eur(100), Stock: 6})
		order := newID()
		if _, err := db.ExecContext(ctx, `INSERT INTO reservations (order_id, product_id, quantity, created_at) VALUES (?, ?, 4, ?)`,
			order, p.ID, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if err := sqldb.Migrate(ctx, db, productsdb.Migrations()); err != nil {
			t.Fatal(err)
		}
		wantLevels(t, svc, []level{{6, 4, 0}}, p.ID)
		if _, err := db.ExecContext(ctx, `UPDATE reservations SET status = 'lost'`); err == nil {
			t.Errorf("a reservation status other than reserved or sold was accepted")
		}
	})
}
