package products_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/products"
)

// recorder is a Store that records created products and fails the test on
// any other call: invalid input must never reach the store.
type recorder struct {
	products.Store
	created []products.Product
}

func (r *recorder) CreateProduct(_ context.Context, p products.Product) error {
	r.created = append(r.created, p)
	return nil
}

const (
	id1 = "0190f000-0000-7000-8000-000000000001"
	id2 = "0190f000-0000-7000-8000-000000000002"
)

func eur(cents int64) products.Money { return products.Money{Amount: cents, Currency: "EUR"} }

func TestCreateValidation(t *testing.T) {
	valid := products.NewProduct{SKU: "MUG-001", Name: "Mug", Description: "A mug.\nDishwasher safe.", Price: eur(1490), Stock: 10}
	tests := []struct {
		name      string
		edit      func(p *products.NewProduct)
		wantField string // "" means valid
	}{
		{"valid", func(*products.NewProduct) {}, ""},
		{"zero price and stock", func(p *products.NewProduct) { p.Price.Amount, p.Stock = 0, 0 }, ""},
		{"max values", func(p *products.NewProduct) {
			p.SKU, p.Name, p.Description = strings.Repeat("A", 64), strings.Repeat("é", 200), strings.Repeat("ü", 2000)
			p.Price.Amount, p.Stock = 100_000_000, 1_000_000
		}, ""},
		{"empty sku", func(p *products.NewProduct) { p.SKU = "" }, "body.sku"},
		{"lower-case sku", func(p *products.NewProduct) { p.SKU = "mug-001" }, "body.sku"},
		{"sku with space", func(p *products.NewProduct) { p.SKU = "MUG 001" }, "body.sku"},
		{"sku too long", func(p *products.NewProduct) { p.SKU = strings.Repeat("A", 65) }, "body.sku"},
		{"blank name", func(p *products.NewProduct) { p.Name = " \t " }, "body.name"},
		{"name too long", func(p *products.NewProduct) { p.Name = strings.Repeat("é", 201) }, "body.name"},
		{"name with control", func(p *products.NewProduct) { p.Name = "Mug\x00" }, "body.name"},
		{"name with newline", func(p *products.NewProduct) { p.Name = "Mug\nCup" }, "body.name"},
		{"name not utf-8", func(p *products.NewProduct) { p.Name = "Mug\xff" }, "body.name"},
		{"description too long", func(p *products.NewProduct) { p.Description = strings.Repeat("x", 2001) }, "body.description"},
		{"description with control", func(p *products.NewProduct) { p.Description = "bell\a" }, "body.description"},
		{"negative price", func(p *products.NewProduct) { p.Price.Amount = -1 }, "body.price.amount"},
		{"price too high", func(p *products.NewProduct) { p.Price.Amount = 100_000_001 }, "body.price.amount"},
		{"lower-case currency", func(p *products.NewProduct) { p.Price.Currency = "eur" }, "body.price.currency"},
		{"long currency", func(p *products.NewProduct) { p.Price.Currency = "EURO" }, "body.price.currency"},
		{"empty currency", func(p *products.NewProduct) { p.Price.Currency = "" }, "body.price.currency"},
		{"negative stock", func(p *products.NewProduct) { p.Stock = -1 }, "body.stock"},
		{"stock too high", func(p *products.NewProduct) { p.Stock = 1_000_001 }, "body.stock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid
			tt.edit(&in)
			store := &recorder{}
			got, err := products.NewService(store).Create(t.Context(), in)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Create() error = %v, want nil", err)
				}
				if len(store.created) != 1 || !cmp.Equal(store.created[0], got) {
					t.Errorf("stored %+v, want exactly %+v", store.created, got)
				}
				if !products.ValidID(got.ID) || got.CreatedAt.Location().String() != "UTC" || got.CreatedAt.Nanosecond()%1000 != 0 || got.CreatedAt != got.UpdatedAt {
					t.Errorf("Create() = %+v: want a UUID and equal UTC timestamps in microseconds", got)
				}
				return
			}
			fe, ok := errors.AsType[*fault.Error](err)
			if !ok || fe.Kind != fault.Invalid || len(fe.Fields) != 1 || fe.Fields[0].Location != tt.wantField {
				t.Errorf("Create() error = %#v, want fault.Invalid about %s", err, tt.wantField)
			}
			if len(store.created) != 0 {
				t.Errorf("invalid input reached the store: %+v", store.created)
			}
		})
	}
}

func TestValidReservation(t *testing.T) {
	line := func(id string, q int) products.Line { return products.Line{ProductID: id, Quantity: q} }
	many := make([]products.Line, 51)
	for i := range many {
		many[i] = line(id1, 1)
	}
	tests := []struct {
		name  string
		order string
		lines []products.Line
		want  string // location of the error, "" for none
	}{
		{"valid", id1, []products.Line{line(id1, 1), line(id2, 1000)}, ""},
		{"malformed order", "order-1", []products.Line{line(id1, 1)}, "body.order_id"},
		{"order without dashes", strings.ReplaceAll(id1, "-", ""), []products.Line{line(id1, 1)}, "body.order_id"},
		{"no lines", id1, nil, "body.lines"},
		{"too many lines", id1, many, "body.lines"},
		{"malformed product", id1, []products.Line{line("mug", 1)}, "body.lines[0].product_id"},
		{"duplicate product", id1, []products.Line{line(id1, 1), line(id2, 1), line(id1, 2)}, "body.lines[2].product_id"},
		{"zero quantity", id1, []products.Line{line(id1, 0)}, "body.lines[0].quantity"},
		{"negative quantity", id1, []products.Line{line(id1, -5)}, "body.lines[0].quantity"},
		{"quantity too large", id1, []products.Line{line(id2, 1), line(id1, 1001)}, "body.lines[1].quantity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := products.ValidReservation(tt.order, tt.lines)
			got := ""
			if e, ok := errors.AsType[*fault.Error](err); ok && e.Kind == fault.Invalid && len(e.Fields) == 1 {
				got = e.Fields[0].Location
			} else if err != nil {
				got = "unexpected error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("ValidReservation() error at %q, want %q (err %v)", got, tt.want, err)
			}
			// Reserve validates the same way before touching the store (which
			// here has no methods and would panic).
			if tt.want != "" {
				if _, err := products.NewService(&recorder{}).Reserve(t.Context(), tt.order, tt.lines); !fault.Is(err, fault.Invalid) {
					t.Errorf("Reserve() error = %v, want invalid", err)
				}
			}
		})
	}
}

func TestRequestsThatNeverReachTheStore(t *testing.T) {
	svc := products.NewService(&recorder{})
	ctx := t.Context()
	name, stock := "Mug", -1
	tests := []struct {
		name string
		call func() error
		want fault.Kind
	}{
		{"get malformed id", func() error { _, err := svc.Product(ctx, "../x"); return err }, fault.NotFound},
		{"update malformed id", func() error { _, err := svc.Update(ctx, "x", products.Patch{Name: &name}); return err }, fault.NotFound},
		{"empty patch", func() error { _, err := svc.Update(ctx, id1, products.Patch{}); return err }, fault.Invalid},
		{"bad patch", func() error { _, err := svc.Update(ctx, id1, products.Patch{Stock: &stock}); return err }, fault.Invalid},
		{"bad cursor", func() error { _, err := svc.List(ctx, products.ListQuery{Cursor: "%%"}); return err }, fault.Invalid},
		{"long query", func() error {
			_, err := svc.List(ctx, products.ListQuery{Query: strings.Repeat("é", 101)})
			return err
		}, fault.Invalid},
		{"no ids", func() error { _, err := svc.Products(ctx, nil); return err }, fault.Invalid},
		{"too many ids", func() error { _, err := svc.Products(ctx, make([]string, 101)); return err }, fault.Invalid},
		{"malformed id in batch", func() error { _, err := svc.Products(ctx, []string{id1, "x"}); return err }, fault.Invalid},
		{"release malformed id", func() error { return svc.Release(ctx, "x") }, fault.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); fault.KindOf(err) != tt.want {
				t.Errorf("error = %v (kind %v), want kind %v", err, fault.KindOf(err), tt.want)
			}
		})
	}
}
