// Package productsdb stores products and stock reservations in SQL (SQLite or
// PostgreSQL).
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

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/sqldb"
	"github.com/microshop/microshop/internal/products"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the products service's migrations, one directory per dialect.
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

// Reserve holds the stock of every line for orderID in one transaction, or
// none; lines must name distinct products. An existing reservation of orderID
// is returned as it is. Short stock yields a Rejected reservation with its
// Shortages; an unknown product is a fault.Unprocessable error
// "unknown-product".
func (s *Store) Reserve(ctx context.Context, orderID string, lines []products.Line, at time.Time) (products.Reservation, error) {
	for attempt := 1; ; attempt++ {
		r, err := s.reserve(ctx, orderID, lines, at)
		// Two concurrent calls for one order both found no reservation and the
		// second hit the primary key: after a retry it sees the first's.
		if sqldb.IsUniqueViolation(err) && attempt < 3 {
			continue
		}
		return r, err
	}
}

func (s *Store) reserve(ctx context.Context, orderID string, lines []products.Line, at time.Time) (products.Reservation, error) {
	var out products.Reservation
	rejected := errors.New("productsdb: reservation rejected") // rolls back a reservation that cannot be served in full
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO reservation_orders (order_id, status, updated_at) VALUES (?, 'reserved', ?)
			ON CONFLICT (order_id) DO NOTHING`, orderID, at)
		if err != nil {
			return fmt.Errorf("productsdb: mark reservation: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("productsdb: mark reservation: %w", err)
		} else if n == 0 {
			// This order reserved or released before: answer as it stands.
			var status string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM reservation_orders WHERE order_id = ?`, orderID).Scan(&status); err != nil {
				return fmt.Errorf("productsdb: read reservation: %w", err)
			}
			if status == "released" {
				out = products.Reservation{OrderID: orderID, Status: products.Rejected, Reason: products.ReasonReleased, Lines: slices.Clone(lines)}
				return nil
			}
			held, err := reservedLines(ctx, tx, orderID)
			if err != nil {
				return err
			}
			out = products.Reservation{OrderID: orderID, Status: products.Reserved, Lines: held}
			return nil
		}
		// Taking row locks in one global order keeps two PostgreSQL
		// transactions from deadlocking on each other's products.
		sorted := slices.SortedFunc(slices.Values(lines), func(a, b products.Line) int {
			return cmp.Compare(a.ProductID, b.ProductID)
		})
		short := map[string]bool{}
		for _, l := range sorted {
			// The condition is evaluated on the row as it is when the update
			// gets it (after any concurrent writer committed), so stock can
			// never go below zero, under SQLite or PostgreSQL.
			res, err := tx.ExecContext(ctx, `UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?`,
				l.Quantity, l.ProductID, l.Quantity)
			if err != nil {
				return fmt.Errorf("productsdb: take stock: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("productsdb: take stock: %w", err)
			}
			if n == 0 {
				short[l.ProductID] = true
			}
		}
		if len(short) > 0 {
			shortages, err := shortagesOf(ctx, tx, lines, short)
			if err != nil {
				return err
			}
			out = products.Reservation{OrderID: orderID, Status: products.Rejected, Lines: slices.Clone(lines), Shortages: shortages}
			return rejected
		}
		for _, l := range sorted {
			if _, err := tx.ExecContext(ctx, `INSERT INTO reservations (order_id, product_id, quantity, created_at) VALUES (?, ?, ?, ?)`,
				orderID, l.ProductID, l.Quantity, at); err != nil {
				return fmt.Errorf("productsdb: insert reservation: %w", err)
			}
		}
		out = products.Reservation{OrderID: orderID, Status: products.Reserved, Lines: slices.Clone(lines)}
		return nil
	})
	if err != nil && !errors.Is(err, rejected) {
		return products.Reservation{}, err
	}
	return out, nil
}

func reservedLines(ctx context.Context, tx *sqldb.Tx, orderID string) ([]products.Line, error) {
	rows, err := tx.QueryContext(ctx, `SELECT product_id, quantity FROM reservations WHERE order_id = ? ORDER BY product_id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("productsdb: get reservation: %w", err)
	}
	return scanLines(rows, "get reservation")
}

// shortagesOf reads the stock of the short lines, in the order of lines. An
// unknown product is a fault.Unprocessable error.
func shortagesOf(ctx context.Context, tx *sqldb.Tx, lines []products.Line, short map[string]bool) ([]products.Shortage, error) {
	ids := make([]string, 0, len(short))
	for id := range short {
		ids = append(ids, id)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, stock FROM products WHERE id IN (`+placeholders(len(ids))+`)`, anys(ids)...)
	if err != nil {
		return nil, fmt.Errorf("productsdb: read stock: %w", err)
	}
	defer rows.Close()
	stock := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("productsdb: read stock: %w", err)
		}
		stock[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("productsdb: read stock: %w", err)
	}
	var out []products.Shortage
	for _, l := range lines {
		if !short[l.ProductID] {
			continue
		}
		n, ok := stock[l.ProductID]
		if !ok {
			return nil, fault.New(fault.Unprocessable, "product %s does not exist", l.ProductID).WithCode("unknown-product")
		}
		out = append(out, products.Shortage{ProductID: l.ProductID, Requested: l.Quantity, Available: n})
	}
	return out, nil
}

// Release gives the stock held for orderID back and deletes its reservation
// in one transaction. An order without a reservation is not an error.
func (s *Store) Release(ctx context.Context, orderID string) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		// The marker makes the release final: a Reserve for this order that
		// arrives later is refused (see reservation_orders in the migration).
		if _, err := tx.ExecContext(ctx, `INSERT INTO reservation_orders (order_id, status, updated_at) VALUES (?, 'released', ?)
			ON CONFLICT (order_id) DO UPDATE SET status = 'released', updated_at = excluded.updated_at`, orderID, time.Now().UTC()); err != nil {
			return fmt.Errorf("productsdb: mark release: %w", err)
		}
		// Deleting first and returning what was deleted makes a concurrent
		// second release find nothing (it waits for this one's row locks), so
		// units are never given back twice.
		rows, err := tx.QueryContext(ctx, `DELETE FROM reservations WHERE order_id = ? RETURNING product_id, quantity`, orderID)
		if err != nil {
			return fmt.Errorf("productsdb: delete reservation: %w", err)
		}
		held, err := scanLines(rows, "delete reservation")
		if err != nil {
			return err
		}
		slices.SortFunc(held, func(a, b products.Line) int { return cmp.Compare(a.ProductID, b.ProductID) })
		for _, l := range held {
			if _, err := tx.ExecContext(ctx, `UPDATE products SET stock = stock + ? WHERE id = ?`, l.Quantity, l.ProductID); err != nil {
				return fmt.Errorf("productsdb: return stock: %w", err)
			}
		}
		return nil
	})
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
