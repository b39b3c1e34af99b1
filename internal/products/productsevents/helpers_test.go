package productsevents_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/platform/sqldb/sqldbtest"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/products/productsdb"
)

// forEach runs fn on each dialect with the products service's and the
// outbox's migrations applied, as the service's wiring does.
func forEach(t *testing.T, fn func(t *testing.T, db *sqldb.DB, svc *products.Service)) {
	t.Helper()
	sqldbtest.ForEach(t, "products", productsdb.Migrations(), func(t *testing.T, db *sqldb.DB) {
		if err := sqldb.Migrate(context.Background(), db, outbox.Migrations()); err != nil {
			t.Fatalf("outbox migrations: %v", err)
		}
		fn(t, db, products.NewService(productsdb.New(db)))
	})
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// create adds a product with stock units and a unique SKU.
func create(t *testing.T, svc *products.Service, stock int) products.Product {
	t.Helper()
	p, err := svc.Create(t.Context(), products.NewProduct{
		SKU: "P-" + strings.ToUpper(newID()), Name: "Product",
		Price: products.Money{Amount: 100, Currency: "EUR"}, Stock: stock,
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return p
}

// event returns an event of orders about orderID with data.
func event(t testing.TB, typ, orderID string, data any) broker.Event {
	t.Helper()
	e, err := broker.NewEvent(events.SourceOrders, typ, orderID, data)
	if err != nil {
		t.Fatalf("NewEvent(%s): %v", typ, err)
	}
	return e
}

func placed(t testing.TB, orderID string, lines ...events.Line) broker.Event {
	t.Helper()
	return event(t, events.OrderPlaced, orderID, events.OrderPlacedData{
		OrderID: orderID, UserID: newID(), Lines: lines, Deadline: time.Now().Add(time.Minute).UTC(),
	})
}

func orderEvent(t testing.TB, typ, orderID string) broker.Event {
	t.Helper()
	return event(t, typ, orderID, events.OrderData{OrderID: orderID})
}

// emitted is an event of the outbox, its data decoded.
type emitted struct {
	Type, Source, Subject string
	Data                  events.StockData
}

// outboxOf returns the events in the outbox about the given orders (all of
// them when none is given), in seq order.
func outboxOf(t *testing.T, db *sqldb.DB, orderIDs ...string) []emitted {
	t.Helper()
	q, args := `SELECT type, source, aggregate, payload FROM outbox`, []any{}
	if len(orderIDs) > 0 {
		q += ` WHERE aggregate IN (?` + strings.Repeat(", ?", len(orderIDs)-1) + `)`
		for _, id := range orderIDs {
			args = append(args, id)
		}
	}
	rows, err := db.QueryContext(context.Background(), q+` ORDER BY seq`, args...)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []emitted
	for rows.Next() {
		var e emitted
		var payload []byte
		if err := rows.Scan(&e.Type, &e.Source, &e.Subject, &payload); err != nil {
			t.Fatalf("read outbox: %v", err)
		}
		if err := json.Unmarshal(payload, &e.Data); err != nil {
			t.Fatalf("outbox payload %s: %v", payload, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

// level is a product's stock levels.
type level struct{ Available, Reserved, Sold int }

func levelOf(t *testing.T, svc *products.Service, productID string) level {
	t.Helper()
	a, r, s, err := svc.StockLevels(t.Context(), productID)
	if err != nil {
		t.Fatalf("StockLevels(%s): %v", productID, err)
	}
	return level{a, r, s}
}

// wantLevels checks the stock levels of products, by name.
func wantLevels(t *testing.T, svc *products.Service, ids map[string]string, want map[string]level) {
	t.Helper()
	got := map[string]level{}
	for name := range want {
		got[name] = levelOf(t, svc, ids[name])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stock levels (-want +got):\n%s", diff)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
