// Package orders is the orders service's domain: placing an order (checked
// against the users and products services), its life cycle driven by the
// checkout saga's events, and the idempotency of checkout. It knows nothing of
// HTTP or SQL: its Store adds the events it emits to a transactional outbox.
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

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/products"
	"github.com/microshop/microshop/internal/users"
)

// Order statuses. An order starts pending while products reserves its stock
// (the checkout saga) and becomes confirmed (stock held), rejected (no stock),
// expired (no answer before its deadline) or cancelled (by its owner or an
// admin). A confirmed order can still be cancelled; rejected, expired and
// cancelled orders never change again.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusRejected  = "rejected"
	StatusExpired   = "expired"
	StatusCancelled = "cancelled"
)

// Statuses lists every status, in the order of the life cycle.
var Statuses = []string{StatusPending, StatusConfirmed, StatusRejected, StatusExpired, StatusCancelled}

// CodeIllegalTransition is the fault code of a change of status the life
// cycle does not allow.
const CodeIllegalTransition = "illegal-transition"

// transitions lists the legal changes of status; final statuses have none.
var transitions = map[string][]string{
	StatusPending:   {StatusConfirmed, StatusRejected, StatusExpired, StatusCancelled},
	StatusConfirmed: {StatusCancelled},
}

// Final reports whether an order of this status can never change again.
func Final(status string) bool {
	return status == StatusRejected || status == StatusExpired || status == StatusCancelled
}

// CanTransition reports whether an order may go from status from to status to.
func CanTransition(from, to string) bool {
	return slices.Contains(transitions[from], to)
}

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

// Order is a customer's order. Lines, Total and Deadline are fixed when it is
// placed, at the prices of that moment; only Status, Reason, ReleasedAt and
// UpdatedAt change later.
type Order struct {
	ID         string         `json:"id" doc:"Order id (UUIDv7)."`
	UserID     string         `json:"user_id"`
	Status     string         `json:"status" enum:"pending,confirmed,rejected,expired,cancelled" doc:"pending while the stock is being reserved; then confirmed, rejected (no stock), expired (no answer before the deadline) or cancelled. A confirmed order may still be cancelled."`
	Reason     string         `json:"reason,omitempty" doc:"Why the order was rejected, expired or cancelled."`
	Lines      []Line         `json:"lines"`
	Total      products.Money `json:"total"`
	Deadline   time.Time      `json:"deadline" doc:"Until when a pending order waits for its stock; after it the order expires."`
	ReleasedAt *time.Time     `json:"released_at,omitempty" doc:"When the stock held for the order was given back, after it was cancelled or expired."`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
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
	ID         string         `json:"id" doc:"Order id (UUIDv7)."`
	UserID     string         `json:"user_id"`
	Status     string         `json:"status" enum:"pending,confirmed,rejected,expired,cancelled" doc:"pending while the stock is being reserved; then confirmed, rejected (no stock), expired (no answer before the deadline) or cancelled. A confirmed order may still be cancelled."`
	Reason     string         `json:"reason,omitempty" doc:"Why the order was rejected, expired or cancelled."`
	Lines      []EnrichedLine `json:"lines"`
	Total      products.Money `json:"total"`
	Deadline   time.Time      `json:"deadline" doc:"Until when a pending order waits for its stock; after it the order expires."`
	ReleasedAt *time.Time     `json:"released_at,omitempty" doc:"When the stock held for the order was given back, after it was cancelled or expired."`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	User       *users.User    `json:"user" doc:"The customer; null when the users service could not tell."`
	Degraded   []string       `json:"degraded" doc:"Parts that could not be fetched (user, products); empty when complete."`
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

// Catalog reads products. products.Service and productshttp.Client implement
// it. Stock is not reserved through it: products reserves it when it hears of
// the order (the orders.placed event) and answers with an event of its own.
type Catalog interface {
	// Products returns the products with the given ids; unknown ids are absent.
	Products(ctx context.Context, ids []string) ([]products.Product, error)
}

// Change is what a Store's UpdateOrder passes the order to: it changes the
// order in place and returns the events that announce the change, which are
// added to the outbox in the same transaction. An error leaves everything as
// it was.
type Change func(o *Order) ([]broker.Event, error)

// Store keeps orders, and the outbox of the events that announce their
// changes. Implementations return a fault.NotFound error for an unknown order.
type Store interface {
	// CreateOrder inserts o with its lines, key (when not nil) and the events
	// (added to the outbox) in one transaction: all of it is stored or none.
	// A key already stored for the user is a fault.Conflict error with code
	// CodeKeyExists, and then nothing is stored.
	CreateOrder(ctx context.Context, o Order, key *IdempotencyKey, events []broker.Event) error
	Order(ctx context.Context, id string) (Order, error)
	// IdempotencyKey returns the key stored for the user, or a fault.NotFound error.
	IdempotencyKey(ctx context.Context, userID, key string) (IdempotencyKey, error)
	// UpdateOrder reads the order, passes it to change and stores what change
	// did (status, reason, released and updated times) together with the
	// events it returns, all in one transaction that no other update of the
	// order can interleave with. An error from change is returned as is and
	// nothing is stored.
	UpdateOrder(ctx context.Context, id string, change Change) (Order, error)
	// ApplyEvent is UpdateOrder on behalf of an event that consumer received:
	// the same transaction records eventID in the consumer's inbox. When it is
	// there already, change is not called, nothing is stored and applied is
	// false.
	ApplyEvent(ctx context.Context, consumer, eventID, id string, change Change) (o Order, applied bool, err error)
	// Together runs fn in one transaction in which every ApplyEvent made
	// with fn's context takes part, each in a savepoint of its own (undone
	// alone if it fails); it commits if fn returns nil and rolls back
	// otherwise.
	Together(ctx context.Context, fn func(ctx context.Context) error) error
	// OrdersByUser returns up to limit orders of the user with ids before
	// before ("" for no bound), newest first.
	OrdersByUser(ctx context.Context, userID, before string, limit int) ([]Order, error)
	// PendingOrders returns the ids, greater than after, of up to limit orders
	// still pending whose deadline is before t, in id (so creation) order.
	PendingOrders(ctx context.Context, t time.Time, after string, limit int) ([]string, error)
}

// Transition changes the status of o to status at time now, with reason (kept
// for rejected, expired and cancelled orders). A change the life cycle does not
// allow (see CanTransition) is a fault.Conflict error with code
// CodeIllegalTransition and leaves o as it was.
func (o *Order) Transition(status, reason string, now time.Time) error {
	if !CanTransition(o.Status, status) {
		return fault.New(fault.Conflict, "the order is %s and cannot become %s", o.Status, status).WithCode(CodeIllegalTransition)
	}
	o.Status = status
	o.Reason = ""
	if Final(status) {
		o.Reason = reason
	}
	o.UpdatedAt = now
	return nil
}

// Trigger is something that happens to an order.
type Trigger string

// The triggers of the life cycle.
const (
	TriggerReserved Trigger = events.StockReserved // products holds the stock
	TriggerRejected Trigger = events.StockRejected // products could not hold it
	TriggerReleased Trigger = events.StockReleased // products gave back what was held
	TriggerCancel   Trigger = "cancel"             // the owner or an admin cancels
	TriggerExpire   Trigger = "expire"             // the deadline passed without an answer
)

// Triggers lists every trigger.
var Triggers = []Trigger{TriggerReserved, TriggerRejected, TriggerReleased, TriggerCancel, TriggerExpire}

// Apply changes o as tr demands at time now and returns the type of the event
// that announces the change, or "" when none does:
//
//   - TriggerReserved: pending → confirmed, announced by orders.confirmed;
//   - TriggerRejected: pending → rejected with reason, orders.rejected;
//   - TriggerCancel: pending or confirmed → cancelled with reason, orders.cancelled;
//   - TriggerExpire: pending → expired with reason, orders.expired;
//   - TriggerReleased: records when the stock was released (the first time
//     only); the status does not change and no event is due.
//
// Any other change is Transition's fault.Conflict error, and o is left as it
// was.
func (o *Order) Apply(tr Trigger, reason string, now time.Time) (event string, err error) {
	var to string
	switch tr {
	case TriggerReserved:
		to, event = StatusConfirmed, events.OrderConfirmed
	case TriggerRejected:
		to, event = StatusRejected, events.OrderRejected
	case TriggerCancel:
		to, event = StatusCancelled, events.OrderCancelled
	case TriggerExpire:
		to, event = StatusExpired, events.OrderExpired
	case TriggerReleased:
		if o.ReleasedAt == nil {
			at := now
			o.ReleasedAt, o.UpdatedAt = &at, now
		}
		return "", nil
	default:
		return "", fault.New(fault.Invalid, "unknown trigger %q", tr)
	}
	if err := o.Transition(to, reason, now); err != nil {
		return "", err
	}
	return event, nil
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
