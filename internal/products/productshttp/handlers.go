package productshttp

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/products"
)

// Handler returns the products service's HTTP handler: the public and
// internal API, /healthz and /readyz, wrapped in the standard middleware and
// then authn, which checks the credentials a request carries (see routes and
// internalRoutes for who may call what).
func Handler(svc *products.Service, authn *auth.Authenticator, checks []server.Check, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	api := server.NewAPI(mux, "products", log)
	h := &handlers{svc: svc}
	routes(api, h)
	internalRoutes(api, h)
	server.Health(mux, checks, nil)
	mux.HandleFunc("/", server.NotFound)
	return server.Middleware(log, authn.Middleware(mux))
}

// Describe registers the public products operations on api, for the OpenAPI
// document. The internal reservation operations are not among them.
func Describe(api huma.API) { routes(api, &handlers{}) }

type handlers struct{ svc *products.Service }

type productOutput struct {
	Location string `header:"Location"`
	Body     products.Product
}

// priceBody is products.Money with the bounds a client may set; Money itself
// has no maximum because order totals use it too.
type priceBody struct {
	Amount   int64  `json:"amount" minimum:"0" maximum:"100000000" doc:"Amount in minor units (for EUR, cents)."`
	Currency string `json:"currency" pattern:"^[A-Z]{3}$" doc:"ISO 4217 currency code."`
}

func (p priceBody) money() products.Money {
	return products.Money{Amount: p.Amount, Currency: p.Currency}
}

type createProductBody struct {
	SKU         string    `json:"sku" minLength:"1" maxLength:"64" pattern:"^[A-Z0-9-]+$" doc:"Stock keeping unit, unique."`
	Name        string    `json:"name" minLength:"1" maxLength:"200"`
	Description string    `json:"description,omitempty" maxLength:"2000"`
	Price       priceBody `json:"price"`
	Stock       int       `json:"stock" minimum:"0" maximum:"1000000" doc:"Units available now."`
}

type createInput struct {
	Body createProductBody
}

func (h *handlers) create(ctx context.Context, in *createInput) (*productOutput, error) {
	b := in.Body
	p, err := h.svc.Create(ctx, products.NewProduct{
		SKU: b.SKU, Name: b.Name, Description: b.Description, Price: b.Price.money(), Stock: b.Stock,
	})
	if err != nil {
		return nil, err
	}
	return &productOutput{Location: "/api/v1/products/" + p.ID, Body: p}, nil
}

type getInput struct {
	ID string `path:"id" maxLength:"64" doc:"Product id."`
}

func (h *handlers) get(ctx context.Context, in *getInput) (*productOutput, error) {
	p, err := h.svc.Product(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &productOutput{Body: p}, nil
}

type updateProductBody struct {
	Name        *string    `json:"name,omitempty" minLength:"1" maxLength:"200"`
	Description *string    `json:"description,omitempty" maxLength:"2000"`
	Price       *priceBody `json:"price,omitempty"`
	Stock       *int       `json:"stock,omitempty" minimum:"0" maximum:"1000000" doc:"Sets the units available now."`
}

type updateInput struct {
	ID   string `path:"id" maxLength:"64" doc:"Product id."`
	Body updateProductBody
}

func (h *handlers) update(ctx context.Context, in *updateInput) (*productOutput, error) {
	b := in.Body
	patch := products.Patch{Name: b.Name, Description: b.Description, Stock: b.Stock}
	if b.Price != nil {
		m := b.Price.money()
		patch.Price = &m
	}
	p, err := h.svc.Update(ctx, in.ID, patch)
	if err != nil {
		return nil, err
	}
	return &productOutput{Body: p}, nil
}

type listInput struct {
	Cursor string   `query:"cursor" maxLength:"300" doc:"Cursor from the previous page."`
	Limit  int      `query:"limit" minimum:"1" maximum:"100" default:"20"`
	Q      string   `query:"q" maxLength:"100" doc:"Only products whose name contains this text, ignoring case."`
	IDs    []string `query:"ids" maxItems:"100" doc:"Comma-separated product ids: returns those products (unknown ids are left out) on one page, instead of a listing. Not combinable with cursor or q."`
}

type listOutput struct {
	Body page.Page[products.Product]
}

func (h *handlers) list(ctx context.Context, in *listInput) (*listOutput, error) {
	if len(in.IDs) > 0 {
		if in.Cursor != "" || in.Q != "" {
			return nil, fault.Invalidf("query.ids", "ids cannot be combined with cursor or q")
		}
		ps, err := h.svc.Products(ctx, in.IDs)
		if err != nil {
			return nil, err
		}
		return &listOutput{Body: page.Page[products.Product]{Items: ps}}, nil
	}
	p, err := h.svc.List(ctx, products.ListQuery{Cursor: in.Cursor, Limit: in.Limit, Query: in.Q})
	if err != nil {
		return nil, err
	}
	return &listOutput{Body: p}, nil
}

type reserveLine struct {
	ProductID string `json:"product_id" format:"uuid" maxLength:"36"`
	Quantity  int    `json:"quantity" minimum:"1" maximum:"1000"`
}

type reserveBody struct {
	OrderID string        `json:"order_id" format:"uuid" maxLength:"36" doc:"The order the stock is held for; repeating a call with it returns the same reservation."`
	Lines   []reserveLine `json:"lines" minItems:"1" maxItems:"50"`
}

type reserveInput struct {
	Body reserveBody
}

type reservationOutput struct {
	Body products.Reservation
}

func (h *handlers) reserve(ctx context.Context, in *reserveInput) (*reservationOutput, error) {
	lines := make([]products.Line, len(in.Body.Lines))
	for i, l := range in.Body.Lines {
		lines[i] = products.Line{ProductID: l.ProductID, Quantity: l.Quantity}
	}
	r, err := h.svc.Reserve(ctx, in.Body.OrderID, lines)
	if err != nil {
		return nil, err
	}
	return &reservationOutput{Body: r}, nil
}

type releaseInput struct {
	OrderID string `path:"order_id" maxLength:"64" doc:"Order id."`
}

func (h *handlers) release(ctx context.Context, in *releaseInput) (*struct{}, error) {
	return nil, h.svc.Release(ctx, in.OrderID)
}
