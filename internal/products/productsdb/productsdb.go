// Package productsdb stores products and stock reservations in SQL (SQLite or
// PostgreSQL). Its event handling (Store.Atomically's Seen and Emit) also uses
// the outbox and inbox tables of internal/platform/outbox, whose migrations
// (outbox.Migrations) are applied beside this package's own (Migrations).
package productsdb

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/outbox"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/products"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the products service's own migrations, one directory per
// dialect. The outbox and inbox tables are not among them: apply
// outbox.Migrations too.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Store implements products.Store.
type Store struct{ db *sqldb.DB }

// New returns a Store over db, which must be migrated.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

var _ products.Store = (*Store)(nil)

const selectProduct = `SELECT id, sku, name, description, price_amount, price_currency, stock, created_at, updated_at FROM products`

// CreateProduct inserts p. A taken SKU is a fault.Conflict error "sku-taken".
func (s *Store) CreateProduct(ctx context.Context, p products.Product) error {
	err := insertProduct(ctx, s.db, p, "")
	if sqldb.IsUniqueViolation(err) {
		return fault.New(fault.Conflict, "a product with this sku already exists").WithCode("sku-taken")
	}
	if err != nil {
		return fmt.Errorf("productsdb: insert product: %w", err)
	}
	return nil
}

func insertProduct(ctx context.Context, q sqldb.Querier, p products.Product, suffix string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO products
		(id, sku, name, description, price_amount, price_currency, stock, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`+suffix,
		p.ID, p.SKU, p.Name, p.Description, p.Price.Amount, p.Price.Currency, p.Stock, p.CreatedAt, p.UpdatedAt)
	return err
}

// Product returns the product with id, or a fault.NotFound error.
func (s *Store) Product(ctx context.Context, id string) (products.Product, error) {
	p, err := scanProduct(s.db.QueryRowContext(ctx, selectProduct+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return products.Product{}, fault.New(fault.NotFound, "product not found")
	}
	if err != nil {
		return products.Product{}, fmt.Errorf("productsdb: get product: %w", err)
	}
	return p, nil
}

// Products returns up to limit products with ids after after whose name
// contains query, ignoring case, in id order (ids are UUIDv7, so this is
// creation order). SQLite's lower() only folds ASCII letters.
func (s *Store) Products(ctx context.Context, after, query string, limit int) ([]products.Product, error) {
	q, args := selectProduct+` WHERE id > ?`, []any{after}
	if query != "" {
		q += ` AND lower(name) LIKE lower(?) ESCAPE '\'`
		args = append(args, "%"+escapeLike(query)+"%")
	}
	q += ` ORDER BY id LIMIT ?`
	return s.query(ctx, "list products", q, append(args, limit)...)
}

// escapeLike makes the LIKE wildcards in s match themselves.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ProductsByID returns the products with the given distinct ids in id order,
// in one query; unknown ids are absent.
func (s *Store) ProductsByID(ctx context.Context, ids []string) ([]products.Product, error) {
	if len(ids) == 0 {
		return nil, nil // "IN ()" is a syntax error
	}
	return s.query(ctx, "get products",
		selectProduct+` WHERE id IN (`+placeholders(len(ids))+`) ORDER BY id`, anys(ids)...)
}

func (s *Store) query(ctx context.Context, what, q string, args ...any) ([]products.Product, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("productsdb: %s: %w", what, err)
	}
	defer rows.Close()
	var out []products.Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, fmt.Errorf("productsdb: %s: %w", what, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("productsdb: %s: %w", what, err)
	}
	return out, nil
}

// UpdateProduct locks the product with id, lets fn change it and stores the
// result, all in one transaction. It returns a fault.NotFound error for an
// unknown id and fn's error, if any, unchanged.
func (s *Store) UpdateProduct(ctx context.Context, id string, fn func(*products.Product) error) (products.Product, error) {
	q := selectProduct + ` WHERE id = ?`
	if s.db.Dialect == sqldb.Postgres {
		// Without the row lock a reservation committed between this read and
		// the write below would be overwritten. SQLite transactions already
		// hold the database's write lock from their start (_txlock=immediate).
		q += ` FOR UPDATE`
	}
	var p products.Product
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var err error
		p, err = scanProduct(tx.QueryRowContext(ctx, q, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fault.New(fault.NotFound, "product not found")
		}
		if err != nil {
			return fmt.Errorf("productsdb: get product: %w", err)
		}
		if err := fn(&p); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE products SET name = ?, description = ?, price_amount = ?,
			price_currency = ?, stock = ?, updated_at = ? WHERE id = ?`,
			p.Name, p.Description, p.Price.Amount, p.Price.Currency, p.Stock, p.UpdatedAt, id)
		if err != nil {
			return fmt.Errorf("productsdb: update product: %w", err)
		}
		return nil
	})
	if err != nil {
		return products.Product{}, err
	}
	return p, nil
}

// StockLevels returns the stock levels of the products with the given
// distinct ids in id order, in one query (so from one snapshot); unknown ids
// are absent.
func (s *Store) StockLevels(ctx context.Context, ids []string) ([]products.StockLevel, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT p.id, p.stock,
			COALESCE(SUM(CASE WHEN r.status = 'reserved' THEN r.quantity ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN r.status = 'sold' THEN r.quantity ELSE 0 END), 0)
		FROM products p LEFT JOIN reservations r ON r.product_id = p.id
		WHERE p.id IN (`+placeholders(len(ids))+`)
		GROUP BY p.id, p.stock ORDER BY p.id`, anys(ids)...)
	if err != nil {
		return nil, fmt.Errorf("productsdb: stock levels: %w", err)
	}
	defer rows.Close()
	var out []products.StockLevel
	for rows.Next() {
		var l products.StockLevel
		if err := rows.Scan(&l.ProductID, &l.Available, &l.Reserved, &l.Sold); err != nil {
			return nil, fmt.Errorf("productsdb: stock levels: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("productsdb: stock levels: %w", err)
	}
	return out, nil
}

// Atomically runs fn in one transaction whose StockTx also writes the
// outbox and inbox tables (outbox.Migrations must be applied beside
// Migrations to use Seen and Emit). When the transaction fails on a unique
// violation (a concurrent transaction got there first) fn runs again, in a new
// transaction, up to twice more.
func (s *Store) Atomically(ctx context.Context, fn func(tx products.StockTx) error) error {
	for attempt := 1; ; attempt++ {
		err := outbox.InTx(ctx, s.db, func(tx *sqldb.Tx) error { return fn(stockTx{tx}) })
		if sqldb.IsUniqueViolation(err) && attempt < 3 {
			continue
		}
		return err
	}
}

// Together runs fn in one transaction that every Atomically with fn's
// context joins, in a savepoint (outbox.Batch).
func (s *Store) Together(ctx context.Context, fn func(ctx context.Context) error) error {
	return outbox.Batch(ctx, s.db, fn)
}

// stockTx implements products.StockTx on a transaction.
type stockTx struct{ tx *sqldb.Tx }

// Seen records eventID in consumer's inbox (outbox.Seen).
func (t stockTx) Seen(ctx context.Context, consumer, eventID string) (bool, error) {
	return outbox.Seen(ctx, t.tx, consumer, eventID)
}

// Emit adds e to the outbox (outbox.Add).
func (t stockTx) Emit(ctx context.Context, e broker.Event) error {
	return outbox.Add(ctx, t.tx, e)
}

func (t stockTx) Reserve(ctx context.Context, orderID string, lines []products.Line, at time.Time) (products.Reservation, error) {
	return reserveTx(ctx, t.tx, orderID, lines, at)
}

func (t stockTx) Sell(ctx context.Context, orderID string, at time.Time) ([]products.Line, error) {
	return sellTx(ctx, t.tx, orderID, at)
}

func (t stockTx) Release(ctx context.Context, orderID string, at time.Time) ([]products.Line, error) {
	return releaseTx(ctx, t.tx, orderID, at)
}

// reserveTx holds the stock of every line for orderID in tx, or none; lines
// must name distinct products. An existing reservation of orderID is returned
// as it stands (Reserved, with what it holds, reserved or sold); a released
// order gets a Rejected reservation with products.ReasonReleased. Short stock
// yields a Rejected reservation with products.ReasonInsufficientStock and the
// Shortages, an unknown product one with products.ReasonUnknownProduct whose
// Shortages are the unknown products (Available 0). A rejection leaves tx as
// it found it, apart from its row locks.
func reserveTx(ctx context.Context, tx *sqldb.Tx, orderID string, lines []products.Line, at time.Time) (products.Reservation, error) {
	// The order's row first: Reserve, Sell and Release of one order queue on
	// it (on PostgreSQL) and never interleave, and an event added after it is
	// committed in the order of the order's events.
	res, err := tx.ExecContext(ctx, `INSERT INTO reservation_orders (order_id, status, updated_at) VALUES (?, 'reserved', ?)
		ON CONFLICT (order_id) DO NOTHING`, orderID, at)
	if err != nil {
		return products.Reservation{}, fmt.Errorf("productsdb: mark reservation: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return products.Reservation{}, fmt.Errorf("productsdb: mark reservation: %w", err)
	} else if n == 0 {
		// This order reserved or released before: answer as it stands.
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM reservation_orders WHERE order_id = ?`, orderID).Scan(&status); err != nil {
			return products.Reservation{}, fmt.Errorf("productsdb: read reservation: %w", err)
		}
		if status == "released" {
			return products.Reservation{OrderID: orderID, Status: products.Rejected, Reason: products.ReasonReleased, Lines: slices.Clone(lines)}, nil
		}
		held, err := heldLines(ctx, tx, orderID)
		if err != nil {
			return products.Reservation{}, err
		}
		return products.Reservation{OrderID: orderID, Status: products.Reserved, Lines: held}, nil
	}
	// A savepoint lets a rejection undo the lines already taken while the
	// transaction goes on (to record the event and its answer).
	if _, err := tx.ExecContext(ctx, `SAVEPOINT reserve`); err != nil {
		return products.Reservation{}, fmt.Errorf("productsdb: savepoint: %w", err)
	}
	// Taking row locks in one global order keeps two PostgreSQL
	// transactions from deadlocking on each other's products.
	sorted := slices.SortedFunc(slices.Values(lines), func(a, b products.Line) int {
		return cmp.Compare(a.ProductID, b.ProductID)
	})
	short := map[string]bool{}
	for _, l := range sorted {
		// The condition is evaluated on the row as it is when the update gets
		// it (after any concurrent writer committed), so stock can never go
		// below zero, under SQLite or PostgreSQL.
		res, err := tx.ExecContext(ctx, `UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?`,
			l.Quantity, l.ProductID, l.Quantity)
		if err != nil {
			return products.Reservation{}, fmt.Errorf("productsdb: take stock: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return products.Reservation{}, fmt.Errorf("productsdb: take stock: %w", err)
		}
		if n == 0 {
			short[l.ProductID] = true
		}
	}
	if len(short) > 0 {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT reserve`); err != nil {
			return products.Reservation{}, fmt.Errorf("productsdb: undo reservation: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT reserve`); err != nil {
			return products.Reservation{}, fmt.Errorf("productsdb: undo reservation: %w", err)
		}
		// Nothing is held: forget the order, so that it may try again. (Its
		// row stays locked until tx ends.)
		if _, err := tx.ExecContext(ctx, `DELETE FROM reservation_orders WHERE order_id = ?`, orderID); err != nil {
			return products.Reservation{}, fmt.Errorf("productsdb: undo reservation: %w", err)
		}
		reason, shortages, err := shortagesOf(ctx, tx, lines, short)
		if err != nil {
			return products.Reservation{}, err
		}
		return products.Reservation{OrderID: orderID, Status: products.Rejected, Reason: reason, Lines: slices.Clone(lines), Shortages: shortages}, nil
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT reserve`); err != nil {
		return products.Reservation{}, fmt.Errorf("productsdb: release savepoint: %w", err)
	}
	for _, l := range sorted {
		if _, err := tx.ExecContext(ctx, `INSERT INTO reservations (order_id, product_id, quantity, created_at, status) VALUES (?, ?, ?, ?, 'reserved')`,
			orderID, l.ProductID, l.Quantity, at); err != nil {
			return products.Reservation{}, fmt.Errorf("productsdb: insert reservation: %w", err)
		}
	}
	return products.Reservation{OrderID: orderID, Status: products.Reserved, Lines: slices.Clone(lines)}, nil
}

// heldLines returns what orderID holds, reserved or sold, in product id order.
func heldLines(ctx context.Context, tx *sqldb.Tx, orderID string) ([]products.Line, error) {
	rows, err := tx.QueryContext(ctx, `SELECT product_id, quantity FROM reservations WHERE order_id = ? ORDER BY product_id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("productsdb: get reservation: %w", err)
	}
	return scanLines(rows, "get reservation")
}

// shortagesOf reads the stock of the short lines, in the order of lines, and
// names the reason: products.ReasonUnknownProduct, with the unknown products
// as shortages, when a product does not exist, else
// products.ReasonInsufficientStock.
func shortagesOf(ctx context.Context, tx *sqldb.Tx, lines []products.Line, short map[string]bool) (string, []products.Shortage, error) {
	ids := make([]string, 0, len(short))
	for id := range short {
		ids = append(ids, id)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, stock FROM products WHERE id IN (`+placeholders(len(ids))+`)`, anys(ids)...)
	if err != nil {
		return "", nil, fmt.Errorf("productsdb: read stock: %w", err)
	}
	defer rows.Close()
	stock := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return "", nil, fmt.Errorf("productsdb: read stock: %w", err)
		}
		stock[id] = n
	}
	if err := rows.Err(); err != nil {
		return "", nil, fmt.Errorf("productsdb: read stock: %w", err)
	}
	var out, unknown []products.Shortage
	for _, l := range lines {
		if !short[l.ProductID] {
			continue
		}
		n, ok := stock[l.ProductID]
		if !ok {
			unknown = append(unknown, products.Shortage{ProductID: l.ProductID, Requested: l.Quantity})
			continue
		}
		out = append(out, products.Shortage{ProductID: l.ProductID, Requested: l.Quantity, Available: n})
	}
	if len(unknown) > 0 {
		return products.ReasonUnknownProduct, unknown, nil
	}
	return products.ReasonInsufficientStock, out, nil
}

// sellTx turns the stock reserved for orderID into a sale, in tx, and returns
// the lines sold, in product id order: none when the order holds nothing
// reserved (never reserved, sold already, or released).
func sellTx(ctx context.Context, tx *sqldb.Tx, orderID string, at time.Time) ([]products.Line, error) {
	// The order's row first, as reserveTx and releaseTx do.
	res, err := tx.ExecContext(ctx, `UPDATE reservation_orders SET updated_at = ? WHERE order_id = ? AND status = 'reserved'`, at, orderID)
	if err != nil {
		return nil, fmt.Errorf("productsdb: mark sale: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("productsdb: mark sale: %w", err)
	} else if n == 0 {
		return nil, nil // never reserved, or released
	}
	rows, err := tx.QueryContext(ctx, `UPDATE reservations SET status = 'sold' WHERE order_id = ? AND status = 'reserved'
		RETURNING product_id, quantity`, orderID)
	if err != nil {
		return nil, fmt.Errorf("productsdb: sell reservation: %w", err)
	}
	sold, err := scanLines(rows, "sell reservation")
	if err != nil {
		return nil, err
	}
	sortLines(sold)
	return sold, nil
}

// releaseTx gives the stock held for orderID back, reserved or sold, and
// deletes its reservation, in tx; the release is final (a later reserveTx for
// the order is rejected). It returns the lines given back in product id
// order; an order without a reservation is not an error.
func releaseTx(ctx context.Context, tx *sqldb.Tx, orderID string, at time.Time) ([]products.Line, error) {
	// The marker makes the release final: a Reserve for this order that
	// arrives later is refused (see reservation_orders in the migration).
	if _, err := tx.ExecContext(ctx, `INSERT INTO reservation_orders (order_id, status, updated_at) VALUES (?, 'released', ?)
		ON CONFLICT (order_id) DO UPDATE SET status = 'released', updated_at = excluded.updated_at`, orderID, at); err != nil {
		return nil, fmt.Errorf("productsdb: mark release: %w", err)
	}
	// Deleting first and returning what was deleted makes a concurrent
	// second release find nothing (it waits for this one's row locks), so
	// units are never given back twice.
	rows, err := tx.QueryContext(ctx, `DELETE FROM reservations WHERE order_id = ? RETURNING product_id, quantity`, orderID)
	if err != nil {
		return nil, fmt.Errorf("productsdb: delete reservation: %w", err)
	}
	held, err := scanLines(rows, "delete reservation")
	if err != nil {
		return nil, err
	}
	sortLines(held)
	for _, l := range held {
		if _, err := tx.ExecContext(ctx, `UPDATE products SET stock = stock + ? WHERE id = ?`, l.Quantity, l.ProductID); err != nil {
			return nil, fmt.Errorf("productsdb: return stock: %w", err)
		}
	}
	return held, nil
}

func sortLines(lines []products.Line) {
	slices.SortFunc(lines, func(a, b products.Line) int { return cmp.Compare(a.ProductID, b.ProductID) })
}

// Seed inserts ps if there are no products yet. Two processes seeding at once
// insert one catalog: the second's rows clash on the SKU and are skipped.
func (s *Store) Seed(ctx context.Context, ps []products.Product) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM products`).Scan(&n); err != nil {
			return fmt.Errorf("productsdb: count products: %w", err)
		}
		if n > 0 {
			return nil
		}
		for _, p := range ps {
			if err := insertProduct(ctx, tx, p, ` ON CONFLICT (sku) DO NOTHING`); err != nil {
				return fmt.Errorf("productsdb: seed product: %w", err)
			}
		}
		return nil
	})
}

func scanProduct(row interface{ Scan(...any) error }) (products.Product, error) {
	var p products.Product
	if err := row.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.Price.Amount, &p.Price.Currency,
		&p.Stock, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return products.Product{}, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, nil
}

// scanLines reads (product_id, quantity) rows and closes them.
func scanLines(rows *sql.Rows, what string) ([]products.Line, error) {
	defer rows.Close()
	var out []products.Line
	for rows.Next() {
		var l products.Line
		if err := rows.Scan(&l.ProductID, &l.Quantity); err != nil {
			return nil, fmt.Errorf("productsdb: %s: %w", what, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("productsdb: %s: %w", what, err)
	}
	return out, nil
}

// placeholders returns n comma-separated '?'.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
