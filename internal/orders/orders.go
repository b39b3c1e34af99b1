// Package orders is the orders service's domain: placing an order against the
// users and products services, its life cycle and the idempotency of checkout.
// It knows nothing of HTTP or SQL.
package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/users"
)

// Order statuses. An order starts pending while its stock is reserved and ends
// confirmed or rejected; nothing else is allowed.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusRejected  = "rejected"
)

// Limits on a request to place an order.
const (
	MaxLines    = 20
	MaxQuantity = 100
	MaxKeyLen   = 128
)

// Degraded parts of an EnrichedOrder.
const (
	PartUser     = "user"
	PartProducts = "products"
)

// CodeKeyExists is the fault code a Store returns when an idempotency key is
// already stored for the user.
const CodeKeyExists = "idempotency-key-exists"

// Order is a customer's order. Lines and Total are fixed when it is placed, at
// the prices of that moment; only Status, Reason and UpdatedAt change later.
type Order struct {
	ID        string         `json:"id" doc:"Order id (UUIDv7)."`
	UserID    string         `json:"user_id"`
	Status    string         `json:"status" enum:"pending,confirmed,rejected"`
	Reason    string         `json:"reason,omitempty" doc:"Why the order was rejected."`
	Lines     []Line         `json:"lines"`
	Total     products.Money `json:"total"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// Line is one product of an order, with the unit price it was sold at.
type Line struct {
	ProductID string         `json:"product_id"`
	Quantity  int            `json:"quantity"`
	UnitPrice products.Money `json:"unit_price"`
}

// EnrichedOrder is an order with its user and products as they are now. A part
// that could not be fetched is null and named in Degraded.
type EnrichedOrder struct {
	ID        string         `json:"id" doc:"Order id (UUIDv7)."`
	UserID    string         `json:"user_id"`
	Status    string         `json:"status" enum:"pending,confirmed,rejected"`
	Reason    string         `json:"reason,omitempty" doc:"Why the order was rejected."`
	Lines     []EnrichedLine `json:"lines"`
	Total     products.Money `json:"total"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	User      *users.User    `json:"user" doc:"The customer; null when the users service could not tell."`
	Degraded  []string       `json:"degraded" doc:"Parts that could not be fetched (user, products); empty when complete."`
}

// EnrichedLine is a line with its product as it is now.
type EnrichedLine struct {
	ProductID string            `json:"product_id"`
	Quantity  int               `json:"quantity"`
	UnitPrice products.Money    `json:"unit_price" doc:"Price paid, which may differ from the product's current price."`
	Product   *products.Product `json:"product" doc:"The product now; null when unavailable."`
}

// Viewer is who reads an order: a user sees their own orders, an admin sees
// every order.
type Viewer struct {
	UserID string
	Admin  bool
}

// CanSee reports whether v may see an order of the user ownerID.
func (v Viewer) CanSee(ownerID string) bool {
	return v.Admin || (v.UserID != "" && v.UserID == ownerID)
}

// OrderNotFound returns the error for an order that does not exist, or that
// the caller may not see: the two must not be told apart.
func OrderNotFound() *fault.Error { return fault.New(fault.NotFound, "order not found") }

// PlaceRequest is the input to Place.
type PlaceRequest struct {
	UserID string
	Lines  []LineRequest
	// IdempotencyKey, when set, makes retries of the same request safe: it is
	// scoped to the user.
	IdempotencyKey string
}

// LineRequest asks for a quantity of one product.
type LineRequest struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// IdempotencyKey records which order a user's key produced, and a hash of the
// request that produced it so that a reuse with another request is caught.
type IdempotencyKey struct {
	UserID      string
	Key         string
	RequestHash string
	OrderID     string
	CreatedAt   time.Time
}

// UserDirectory finds users. users.Service and usershttp.Client implement it.
type UserDirectory interface {
	// User returns a fault.NotFound error for an unknown id.
	User(ctx context.Context, id string) (users.User, error)
}

// Catalog reads products and holds their stock. products.Service and
// productshttp.Client implement it.
type Catalog interface {
	// Products returns the products with the given ids; unknown ids are absent.
	Products(ctx context.Context, ids []string) ([]products.Product, error)
	// Reserve holds stock for every line or for none; lack of stock is a
	// Rejected reservation, not an error. It is idempotent by orderID.
	Reserve(ctx context.Context, orderID string, lines []products.Line) (products.Reservation, error)
	// Release gives back what was reserved for orderID. It is idempotent.
	Release(ctx context.Context, orderID string) error
}

// Store keeps orders. Implementations return a fault.NotFound error for an
// unknown order.
type Store interface {
	// CreateOrder inserts o with its lines and, when key is not nil, key, in one
	// transaction. A key already stored for the user is a fault.Conflict error
	// with code CodeKeyExists, and then nothing is inserted.
	CreateOrder(ctx context.Context, o Order, key *IdempotencyKey) error
	Order(ctx context.Context, id string) (Order, error)
	// IdempotencyKey returns the key stored for the user, or a fault.NotFound error.
	IdempotencyKey(ctx context.Context, userID, key string) (IdempotencyKey, error)
	// UpdateOrder reads the order, passes it to fn and stores what fn changed
	// (status, reason, updated time), all in one transaction that no other
	// update of the order can interleave with. An error from fn is returned
	// as is and nothing is stored.
	UpdateOrder(ctx context.Context, id string, fn func(*Order) error) (Order, error)
	// DeletePending deletes the order and its idempotency key if it is still
	// pending, and does nothing otherwise.
	DeletePending(ctx context.Context, id string) error
	// OrdersByUser returns up to limit orders of the user with ids before
	// before ("" for no bound), newest first.
	OrdersByUser(ctx context.Context, userID, before string, limit int) ([]Order, error)
	// PendingOrders returns the ids, greater than after, of up to limit orders
	// still pending that were created before t, in id (so creation) order.
	PendingOrders(ctx context.Context, t time.Time, after string, limit int) ([]string, error)
}

// Transition moves a pending order to confirmed or rejected at time now, with
// reason (kept for rejections only). Any other change is a fault.Conflict error
// and leaves o as it was: a finished order never changes again.
func (o *Order) Transition(status, reason string, now time.Time) error {
	if o.Status != StatusPending || (status != StatusConfirmed && status != StatusRejected) {
		return fault.New(fault.Conflict, "order is %s and cannot become %s", o.Status, status).WithCode("illegal-transition")
	}
	o.Status = status
	o.Reason = ""
	if status == StatusRejected {
		o.Reason = reason
	}
	o.UpdatedAt = now
	return nil
}

// Validate checks r on its own, without asking any other service. It returns a
// fault.Invalid error that lists every invalid field.
func (r PlaceRequest) Validate() error {
	var fields []fault.FieldError
	bad := func(location, format string, args ...any) {
		fields = append(fields, fault.FieldError{Location: location, Message: fmt.Sprintf(format, args...)})
	}
	if !ValidID(r.UserID) {
		bad("body.user_id", "user_id must be a UUID")
	}
	if len(r.Lines) == 0 || len(r.Lines) > MaxLines {
		bad("body.lines", "an order must have 1 to %d lines", MaxLines)
	}
	seen := make(map[string]bool, len(r.Lines))
	for i, l := range r.Lines[:min(len(r.Lines), MaxLines)] {
		at := "body.lines[" + strconv.Itoa(i) + "]"
		switch {
		case !ValidID(l.ProductID):
			bad(at+".product_id", "product_id must be a UUID")
		case seen[l.ProductID]:
			bad(at+".product_id", "product appears on more than one line")
		}
		seen[l.ProductID] = true
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			bad(at+".quantity", "quantity must be 1 to %d", MaxQuantity)
		}
	}
	if !validKey(r.IdempotencyKey) {
		bad("header.Idempotency-Key", "Idempotency-Key must be at most %d printable ASCII characters", MaxKeyLen)
	}
	if len(fields) == 0 {
		return nil
	}
	return &fault.Error{Kind: fault.Invalid, Msg: fields[0].Message, Fields: fields}
}

// ValidID reports whether id has the shape of an order, user or product id, so
// that garbage never reaches a store or a peer.
func ValidID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

func validKey(k string) bool {
	if len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// hash identifies what r asks for, so that the same request sent again matches
// whatever the order of its lines.
func (r PlaceRequest) hash() string {
	lines := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		lines[i] = l.ProductID + " " + strconv.Itoa(l.Quantity)
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(r.UserID + "\n" + strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}
