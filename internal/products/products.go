// Package products is the products service's domain: the catalog, prices and
// stock with reservations, and its part of the checkout saga (saga.go). It
// knows nothing of HTTP or SQL.
package products

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
)

// Money is an amount in integer minor units (cents) of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount" minimum:"0" doc:"Amount in minor units (for EUR, cents)."`
	Currency string `json:"currency" pattern:"^[A-Z]{3}$" doc:"ISO 4217 currency code."`
}

// Product is an item of the catalog. Stock is the number of units available to
// reserve now; units reserved for orders or sold are not part of it (see
// StockLevel).
type Product struct {
	ID          string    `json:"id" doc:"Product id (UUID)."`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       Money     `json:"price"`
	Stock       int       `json:"stock" doc:"Units available now."`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Line asks for a quantity of one product.
type Line struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// Reservation statuses.
const (
	Reserved = "reserved" // every line's stock is held for the order
	Rejected = "rejected" // nothing was held: see Reason and Shortages
)

// ReasonInsufficientStock is the Reason of a reservation rejected for lack of stock.
const ReasonInsufficientStock = "insufficient stock"

// ReasonUnknownProduct is the Reason of a reservation rejected because a
// product does not exist; its Shortages list the unknown products.
const ReasonUnknownProduct = "unknown product"

// ReasonInvalidOrder starts the Reason of an orders.placed rejected because
// its order cannot be served as asked (a malformed id, no lines, a bad
// quantity): "invalid order: <what is wrong>".
const ReasonInvalidOrder = "invalid order"

// ReasonReleased is the Reason of a reservation refused because the order's
// stock was already released: a release is final, so a reservation request
// that arrives late cannot hold stock for an order that was given up.
const ReasonReleased = "order already released"

// Reservation is the outcome of reserving stock for all lines of one order:
// all lines or none.
type Reservation struct {
	OrderID   string     `json:"order_id"`
	Status    string     `json:"status" enum:"reserved,rejected"`
	Reason    string     `json:"reason,omitempty"`
	Lines     []Line     `json:"lines"`
	Shortages []Shortage `json:"shortages,omitempty"`
}

// Shortage names a line that could not be served.
type Shortage struct {
	ProductID string `json:"product_id"`
	Requested int    `json:"requested"`
	Available int    `json:"available"`
}

// Limits on product fields and requests.
const (
	MaxSKULen         = 64
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxPrice          = 100_000_000
	MaxStock          = 1_000_000
	MaxQueryLen       = 100
	MaxBatch          = 100 // ids in one Products call
	MaxLines          = 50  // lines in one reservation
	MaxQuantity       = 1000
)

// NewProduct is the input to Create.
type NewProduct struct {
	SKU         string
	Name        string
	Description string
	Price       Money
	Stock       int
}

// Patch is the input to Update: nil fields stay as they are.
type Patch struct {
	Name        *string
	Description *string
	Price       *Money
	Stock       *int // sets the units available now
}

// ListQuery is the input to List.
type ListQuery struct {
	Cursor string
	Limit  int
	Query  string // case-insensitive substring of the name; "" matches all
}

// Store keeps products and reservations. Implementations return a
// fault.NotFound error for an unknown product id and a fault.Conflict error
// with code "sku-taken" for a duplicate SKU.
type Store interface {
	CreateProduct(ctx context.Context, p Product) error
	Product(ctx context.Context, id string) (Product, error)
	// Products returns up to limit products with ids greater than after whose
	// name contains query, ignoring case, in id order.
	Products(ctx context.Context, after, query string, limit int) ([]Product, error)
	// ProductsByID returns the products with the given distinct ids, in id
	// order; unknown ids are absent.
	ProductsByID(ctx context.Context, ids []string) ([]Product, error)
	// UpdateProduct calls fn with the current product in a transaction that
	// keeps others from changing it, and stores what fn leaves (except ID, SKU
	// and CreatedAt, which never change) unless fn fails.
	UpdateProduct(ctx context.Context, id string, fn func(*Product) error) (Product, error)
	// StockLevels returns the stock levels of the products with the given
	// distinct ids, in id order, as of one consistent moment; unknown ids are
	// absent.
	StockLevels(ctx context.Context, ids []string) ([]StockLevel, error)
	// Atomically runs fn in one transaction, which commits if fn returns nil
	// and rolls back otherwise. fn may be called again (in a new transaction)
	// when the transaction fails on a conflict with a concurrent one, so it
	// must have no effect outside tx.
	Atomically(ctx context.Context, fn func(tx StockTx) error) error
	// Together runs fn in one transaction in which every Atomically made
	// with fn's context takes part, each in a savepoint of its own (undone
	// alone if it fails); it commits if fn returns nil and rolls back
	// otherwise.
	Together(ctx context.Context, fn func(ctx context.Context) error) error
	// Seed inserts ps if the catalog is empty, skipping taken SKUs.
	Seed(ctx context.Context, ps []Product) error
}

// StockTx is the stock of every product within one transaction, with the
// transaction's inbox and outbox: what an event handler changes, records and
// announces commits together or not at all.
type StockTx interface {
	// Seen records in consumer's inbox that the event eventID is applied and
	// reports whether it already was; then the caller skips the effect.
	Seen(ctx context.Context, consumer, eventID string) (already bool, err error)
	// Reserve takes the stock of all lines (of distinct products) for orderID,
	// or none. An order that reserved before gets its reservation as it
	// stands (Reserved with what it holds, reserved or sold), a released one
	// a Rejected reservation with ReasonReleased. Otherwise short stock gives
	// a Rejected reservation with ReasonInsufficientStock and the Shortages,
	// and an unknown product one with ReasonUnknownProduct whose Shortages
	// are the unknown products (Available 0). A rejection leaves no trace.
	Reserve(ctx context.Context, orderID string, lines []Line, at time.Time) (Reservation, error)
	// Sell turns the stock reserved for orderID into a sale and returns the
	// lines it sold, in product id order: none when the order holds nothing
	// reserved (never reserved, already sold or released).
	Sell(ctx context.Context, orderID string, at time.Time) ([]Line, error)
	// Release gives back to the available stock everything orderID holds,
	// reserved or sold, and makes the release final: a later Reserve for the
	// order is rejected with ReasonReleased. It returns the lines given back,
	// in product id order, none when the order held nothing.
	Release(ctx context.Context, orderID string, at time.Time) ([]Line, error)
	// Emit adds e to the outbox: it is published once, and only if, the
	// transaction commits.
	Emit(ctx context.Context, e broker.Event) error
}

// StockLevel is where the units of a product are. The units stocked (set by
// an admin) always equal Available + Reserved + Sold.
type StockLevel struct {
	ProductID string `json:"product_id"`
	Available int    `json:"available" doc:"Units that can be reserved now (the product's stock)."`
	Reserved  int    `json:"reserved" doc:"Units held for orders not yet confirmed."`
	Sold      int    `json:"sold" doc:"Units bought by confirmed orders."`
}

// Service implements the products use cases.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service over store.
func NewService(store Store) *Service {
	return &Service{store: store, now: time.Now}
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Create validates in and stores a new product. It returns a fault.Invalid
// error for bad input and a fault.Conflict error "sku-taken" when the SKU is
// taken.
func (s *Service) Create(ctx context.Context, in NewProduct) (Product, error) {
	p, err := s.build(in)
	if err != nil {
		return Product{}, err
	}
	if err := s.store.CreateProduct(ctx, p); err != nil {
		return Product{}, err
	}
	return p, nil
}

func (s *Service) build(in NewProduct) (Product, error) {
	sku, err := ValidSKU(in.SKU)
	if err != nil {
		return Product{}, err
	}
	name, err := ValidName(in.Name)
	if err != nil {
		return Product{}, err
	}
	desc, err := ValidDescription(in.Description)
	if err != nil {
		return Product{}, err
	}
	if err := ValidPrice(in.Price); err != nil {
		return Product{}, err
	}
	if err := ValidStock(in.Stock); err != nil {
		return Product{}, err
	}
	now := s.timestamp()
	return Product{
		ID: uuid.Must(uuid.NewV7()).String(), SKU: sku, Name: name, Description: desc,
		Price: in.Price, Stock: in.Stock, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// Update changes the fields set in p of the product with id. It returns a
// fault.Invalid error for an empty or bad patch and a fault.NotFound error for
// an unknown product.
func (s *Service) Update(ctx context.Context, id string, p Patch) (Product, error) {
	if p.Name == nil && p.Description == nil && p.Price == nil && p.Stock == nil {
		return Product{}, fault.New(fault.Invalid, "the patch changes nothing: set at least one of name, description, price, stock")
	}
	// Validate everything before the transaction, so it holds its locks briefly.
	var name, desc string
	var err error
	if p.Name != nil {
		if name, err = ValidName(*p.Name); err != nil {
			return Product{}, err
		}
	}
	if p.Description != nil {
		if desc, err = ValidDescription(*p.Description); err != nil {
			return Product{}, err
		}
	}
	if p.Price != nil {
		if err := ValidPrice(*p.Price); err != nil {
			return Product{}, err
		}
	}
	if p.Stock != nil {
		if err := ValidStock(*p.Stock); err != nil {
			return Product{}, err
		}
	}
	if !ValidID(id) {
		return Product{}, fault.New(fault.NotFound, "product not found")
	}
	now := s.timestamp()
	return s.store.UpdateProduct(ctx, id, func(cur *Product) error {
		if p.Name != nil {
			cur.Name = name
		}
		if p.Description != nil {
			cur.Description = desc
		}
		if p.Price != nil {
			cur.Price = *p.Price
		}
		if p.Stock != nil {
			cur.Stock = *p.Stock
		}
		cur.UpdatedAt = now
		return nil
	})
}

// Product returns the product with id, or a fault.NotFound error.
func (s *Service) Product(ctx context.Context, id string) (Product, error) {
	if !ValidID(id) {
		return Product{}, fault.New(fault.NotFound, "product not found")
	}
	return s.store.Product(ctx, id)
}

// List returns one page of products in creation order, filtered by q.Query.
// A bad cursor or an overlong query is a fault.Invalid error.
func (s *Service) List(ctx context.Context, q ListQuery) (page.Page[Product], error) {
	after, err := page.Decode(q.Cursor)
	if err != nil {
		return page.Page[Product]{}, err
	}
	if utf8.RuneCountInString(q.Query) > MaxQueryLen || !utf8.ValidString(q.Query) {
		return page.Page[Product]{}, fault.Invalidf("query.q", "q must be at most %d characters", MaxQueryLen)
	}
	limit := page.Limit(q.Limit)
	rows, err := s.store.Products(ctx, after, q.Query, limit+1)
	if err != nil {
		return page.Page[Product]{}, err
	}
	return page.Of(rows, limit, func(p Product) string { return p.ID }), nil
}

// Products returns the products with the given ids, once each and in id order;
// unknown ids are absent from the result. It returns a fault.Invalid error for
// fewer than 1 or more than MaxBatch ids or for a malformed id.
func (s *Service) Products(ctx context.Context, ids []string) ([]Product, error) {
	distinct, err := distinctIDs(ids)
	if err != nil {
		return nil, err
	}
	out, err := s.store.ProductsByID(ctx, distinct)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []Product{}
	}
	return out, nil
}

// Reserve holds stock for all lines of the order orderID, or for none. It is
// idempotent: while the order holds a reservation (or has bought it), Reserve
// returns it as it is. Short stock is not an error but a Rejected reservation
// listing the shortages. Once the order was released, Reserve is refused
// (Rejected with ReasonReleased), so a request that arrives late holds
// nothing. It returns a fault.Invalid error for bad input and a
// fault.Unprocessable error "unknown-product" for an unknown product.
func (s *Service) Reserve(ctx context.Context, orderID string, lines []Line) (Reservation, error) {
	if err := ValidReservation(orderID, lines); err != nil {
		return Reservation{}, err
	}
	var r Reservation
	err := s.store.Atomically(ctx, func(tx StockTx) error {
		var err error
		r, err = tx.Reserve(ctx, orderID, lines, s.timestamp())
		return err
	})
	if err != nil {
		return Reservation{}, err
	}
	if r.Status == Rejected && r.Reason == ReasonUnknownProduct && len(r.Shortages) > 0 {
		return Reservation{}, fault.New(fault.Unprocessable, "product %s does not exist", r.Shortages[0].ProductID).WithCode("unknown-product")
	}
	return r, nil
}

// Release returns the stock held for orderID, reserved or sold, and makes the
// release final. Releasing an order that holds nothing (never reserved,
// rejected or already released) succeeds and returns nothing. A malformed
// order id is a fault.Invalid error.
func (s *Service) Release(ctx context.Context, orderID string) error {
	if !ValidID(orderID) {
		return fault.Invalidf("path.order_id", "order_id must be an order id (UUID)")
	}
	return s.store.Atomically(ctx, func(tx StockTx) error {
		_, err := tx.Release(ctx, orderID, s.timestamp())
		return err
	})
}

// StockLevels returns where the units of the product with productID are:
// available to reserve, reserved for orders, sold. Their sum is the stock an
// admin set. An unknown product is a fault.NotFound error.
func (s *Service) StockLevels(ctx context.Context, productID string) (available, reserved, sold int, err error) {
	if !ValidID(productID) {
		return 0, 0, 0, fault.New(fault.NotFound, "product not found")
	}
	levels, err := s.store.StockLevels(ctx, []string{productID})
	if err != nil {
		return 0, 0, 0, err
	}
	if len(levels) == 0 {
		return 0, 0, 0, fault.New(fault.NotFound, "product not found")
	}
	l := levels[0]
	return l.Available, l.Reserved, l.Sold, nil
}

// StockLevelsOf returns the stock levels of the products with the given ids,
// once each and in id order, read at one moment; unknown ids are absent. It
// returns a fault.Invalid error for fewer than 1 or more than MaxBatch ids or
// for a malformed id.
func (s *Service) StockLevelsOf(ctx context.Context, ids []string) ([]StockLevel, error) {
	distinct, err := distinctIDs(ids)
	if err != nil {
		return nil, err
	}
	out, err := s.store.StockLevels(ctx, distinct)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []StockLevel{}
	}
	return out, nil
}

// distinctIDs checks a batch of 1 to MaxBatch product ids and returns them
// sorted, once each.
func distinctIDs(ids []string) ([]string, error) {
	if len(ids) == 0 || len(ids) > MaxBatch {
		return nil, fault.Invalidf("query.ids", "ids must list 1 to %d product ids", MaxBatch)
	}
	for i, id := range ids {
		if !ValidID(id) {
			return nil, fault.Invalidf(fmt.Sprintf("query.ids[%d]", i), "ids must be product ids (UUIDs)")
		}
	}
	distinct := slices.Clone(ids)
	slices.Sort(distinct)
	return slices.Compact(distinct), nil
}

// Seed fills an empty catalog with demo products. It is idempotent and safe
// when several processes seed at once.
func (s *Service) Seed(ctx context.Context) error {
	catalog := demoCatalog()
	ps := make([]Product, 0, len(catalog))
	for _, in := range catalog {
		p, err := s.build(in)
		if err != nil {
			return fmt.Errorf("products: demo catalog: %w", err) // a bug in demoCatalog
		}
		ps = append(ps, p)
	}
	return s.store.Seed(ctx, ps)
}

// demoCatalog returns the catalog Seed inserts.
func demoCatalog() []NewProduct {
	return []NewProduct{
		{"MUG-001", "Enamel Camp Mug", "A 350 ml enamel steel mug that survives campfires and dishwashers.", eur(1490), 120},
		{"MUG-002", "Stoneware Coffee Mug", "Hand-glazed stoneware, 300 ml, in speckled sand.", eur(1890), 80},
		{"TSH-001", "Organic Cotton T-Shirt", "Heavyweight organic cotton tee with a relaxed fit.", eur(2900), 150},
		{"HOD-001", "Zip Hoodie", "Brushed fleece hoodie with a full-length zip and side pockets.", eur(5900), 60},
		{"BAG-001", "Canvas Tote Bag", "Sturdy 12 oz canvas tote with an inner pocket.", eur(1990), 200},
		{"BTL-001", "Insulated Water Bottle", "Double-walled stainless steel, keeps drinks cold for 24 hours.", eur(2490), 90},
		{"NTB-001", "Dotted Notebook A5", "192 pages of 100 g/m² paper, lay-flat binding.", eur(1590), 180},
		{"PEN-001", "Brass Ballpoint Pen", "Machined brass pen that ages beautifully; refillable.", eur(3490), 40},
		{"CAP-001", "Six-Panel Cap", "Washed cotton cap with an adjustable strap.", eur(2290), 70},
		{"SCK-001", "Merino Socks", "Soft merino wool socks, reinforced heel and toe.", eur(1690), 130},
		{"STK-001", "Sticker Pack", "Ten weatherproof vinyl stickers.", eur(590), 200},
		{"LMP-001", "Desk Lamp", "Dimmable LED desk lamp with a weighted oak base.", eur(7900), 20},
	}
}

func eur(cents int64) Money { return Money{Amount: cents, Currency: "EUR"} }

// ValidReservation checks a reservation request: orderID is a UUID, 1 to
// MaxLines lines of distinct products, each of 1 to MaxQuantity units. It
// returns a fault.Invalid error naming the first bad field.
func ValidReservation(orderID string, lines []Line) error {
	if !ValidID(orderID) {
		return fault.Invalidf("body.order_id", "order_id must be an order id (UUID)")
	}
	if len(lines) == 0 || len(lines) > MaxLines {
		return fault.Invalidf("body.lines", "lines must hold 1 to %d lines", MaxLines)
	}
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
		if !ValidID(l.ProductID) {
			return fault.Invalidf(fmt.Sprintf("body.lines[%d].product_id", i), "product_id must be a product id (UUID)")
		}
		if seen[l.ProductID] {
			return fault.Invalidf(fmt.Sprintf("body.lines[%d].product_id", i), "each product may appear in one line only")
		}
		seen[l.ProductID] = true
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			return fault.Invalidf(fmt.Sprintf("body.lines[%d].quantity", i), "quantity must be 1 to %d", MaxQuantity)
		}
	}
	return nil
}

// ValidID reports whether id has the canonical shape of a UUID, so that
// garbage never reaches the store.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

// ValidSKU trims sku and checks that it is 1 to MaxSKULen characters of A-Z,
// 0-9 and '-'.
func ValidSKU(sku string) (string, error) {
	sku = strings.TrimSpace(sku)
	if len(sku) == 0 || len(sku) > MaxSKULen {
		return "", fault.Invalidf("body.sku", "sku must be 1 to %d characters", MaxSKULen)
	}
	for _, r := range sku {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' {
			return "", fault.Invalidf("body.sku", "sku may only contain A-Z, 0-9 and '-'")
		}
	}
	return sku, nil
}

// ValidName trims name and checks its length and that it has no control
// characters.
func ValidName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxNameLen || !utf8.ValidString(name) {
		return "", fault.Invalidf("body.name", "name must be 1 to %d characters", MaxNameLen)
	}
	for _, r := range name {
		if isControl(r) {
			return "", fault.Invalidf("body.name", "name must not contain control characters")
		}
	}
	return name, nil
}

// ValidDescription trims d and checks its length and that it has no control
// characters other than line breaks and tabs.
func ValidDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if utf8.RuneCountInString(d) > MaxDescriptionLen || !utf8.ValidString(d) {
		return "", fault.Invalidf("body.description", "description must be at most %d characters", MaxDescriptionLen)
	}
	for _, r := range d {
		if isControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return "", fault.Invalidf("body.description", "description must not contain control characters")
		}
	}
	return d, nil
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// ValidPrice checks that m is 0 to MaxPrice minor units of a currency written
// as three capital letters.
func ValidPrice(m Money) error {
	if m.Amount < 0 || m.Amount > MaxPrice {
		return fault.Invalidf("body.price.amount", "price amount must be 0 to %d minor units", MaxPrice)
	}
	if len(m.Currency) != 3 || strings.IndexFunc(m.Currency, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return fault.Invalidf("body.price.currency", "price currency must be an ISO 4217 code such as EUR")
	}
	return nil
}

// ValidStock checks that n is 0 to MaxStock units.
func ValidStock(n int) error {
	if n < 0 || n > MaxStock {
		return fault.Invalidf("body.stock", "stock must be 0 to %d", MaxStock)
	}
	return nil
}
