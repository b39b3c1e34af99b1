// Package events is the contract of the events microshop's services exchange
// over NATS JetStream: their types (also their NATS subjects) and payloads.
// The producer owns each event; consumers depend only on this package, never
// on the producer's code. Payloads only ever gain optional fields within a
// schema version; anything else is a new version (see docs/events.md).
package events

import "time"

// Sources of events (the CloudEvents source attribute).
const (
	SourceOrders   = "microshop/orders"
	SourceProducts = "microshop/products"
)

// Event types published by orders, on the ORDERS stream. The subject of each
// (the CloudEvents subject attribute) is the order id.
const (
	OrderPlaced    = "orders.placed"    // a pending order asks for its stock
	OrderConfirmed = "orders.confirmed" // its stock was reserved: the reservation becomes a sale
	OrderRejected  = "orders.rejected"  // no stock: nothing is held
	OrderCancelled = "orders.cancelled" // the customer cancelled: release what is held or sold
	OrderExpired   = "orders.expired"   // no answer before the deadline: release whatever is, or will be, held
)

// Event types published by products, on the STOCK stream. The subject is the
// order id the stock movement is for.
const (
	StockReserved = "stock.reserved" // every line is held for the order
	StockRejected = "stock.rejected" // nothing is held: not enough stock, unknown product, or the order was already released
	StockReleased = "stock.released" // what the order held (or had bought) is available again
)

// Line is a quantity of one product.
type Line struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// OrderPlacedData is the payload of orders.placed.
type OrderPlacedData struct {
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Lines    []Line    `json:"lines"`
	Deadline time.Time `json:"deadline"` // after it, orders expires the order
}

// OrderData is the payload of orders.confirmed, orders.rejected,
// orders.cancelled and orders.expired.
type OrderData struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason,omitempty"`
}

// StockData is the payload of stock.reserved, stock.rejected and stock.released.
type StockData struct {
	OrderID   string     `json:"order_id"`
	Lines     []Line     `json:"lines,omitempty"`
	Reason    string     `json:"reason,omitempty"`    // stock.rejected
	Shortages []Shortage `json:"shortages,omitempty"` // stock.rejected
}

// Shortage names a line that could not be served.
type Shortage struct {
	ProductID string `json:"product_id"`
	Requested int    `json:"requested"`
	Available int    `json:"available"`
}

// Durable consumer names: one per consuming service and stream.
const (
	ProductsOnOrders = "products-orders" // products consumes ORDERS
	OrdersOnStock    = "orders-stock"    // orders consumes STOCK
)
