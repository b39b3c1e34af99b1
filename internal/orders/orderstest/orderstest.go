// Package orderstest holds what the orders service's tests share: an
// in-memory catalog and the stock events products would send.
package orderstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/products"
)

// Catalog is an in-memory orders.Catalog.
type Catalog struct {
	mu       sync.Mutex
	products map[string]products.Product
	calls    int
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog { return &Catalog{products: map[string]products.Product{}} }

// Add adds a product and returns it.
func (c *Catalog) Add(sku, name string, price products.Money, stock int) products.Product {
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := products.Product{ID: uuid.Must(uuid.NewV7()).String(), SKU: sku, Name: name, Price: price, Stock: stock, CreatedAt: now, UpdatedAt: now}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.products[p.ID] = p
	return p
}

// Products returns the products with the given ids that exist, in the order
// asked for.
func (c *Catalog) Products(_ context.Context, ids []string) ([]products.Product, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	out := []products.Product{}
	for _, id := range ids {
		if p, ok := c.products[id]; ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Calls returns how many times Products was called.
func (c *Catalog) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// StockEvent returns an event of type typ (stock.reserved, stock.rejected,
// stock.released) about the order, as products publishes it; reason goes with
// rejections.
func StockEvent(t testing.TB, typ, orderID, reason string) broker.Event {
	t.Helper()
	e, err := broker.NewEvent(events.SourceProducts, typ, orderID, events.StockData{OrderID: orderID, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// RawEvent returns an event of type typ about subject whose data is raw, for
// malformed payloads.
func RawEvent(t testing.TB, typ, subject, raw string) broker.Event {
	t.Helper()
	e, err := broker.NewEvent(events.SourceProducts, typ, subject, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	e.Data = []byte(raw)
	if err := e.Validate(); err != nil {
		t.Fatalf("raw event: %v", err)
	}
	return e
}
