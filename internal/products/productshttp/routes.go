// Package productshttp is the products service's HTTP transport: its routes,
// handlers and the typed client other services use to call it.
package productshttp

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/server"
)

// routes lists the public operations of the products service, the ones the
// gateway routes and documents. Anyone may read the catalog; only admins
// change it.
func routes(api huma.API, h *handlers) {
	server.Register(api, huma.Operation{
		OperationID: "list-products", Method: http.MethodGet, Path: "/api/v1/products",
		Summary: "List or search products, or get a batch by id", Tags: []string{"products"},
	}, h.list)
	server.Register(api, huma.Operation{
		OperationID: "get-product", Method: http.MethodGet, Path: "/api/v1/products/{id}",
		Summary: "Get a product", Tags: []string{"products"},
	}, h.get)
	server.Register(api, huma.Operation{
		OperationID: "create-product", Method: http.MethodPost, Path: "/api/v1/products",
		Summary: "Create a product (admins only)", Tags: []string{"products"}, DefaultStatus: http.StatusCreated,
		Middlewares: guard(requireAdmin),
	}, h.create)
	server.Register(api, huma.Operation{
		OperationID: "update-product", Method: http.MethodPatch, Path: "/api/v1/products/{id}",
		Summary: "Change a product's name, description, price or stock (admins only)", Tags: []string{"products"},
		Middlewares: guard(requireAdmin),
	}, h.update)
}

// internalRoutes lists the operations only other services call: they require
// the service token of orders, whatever user token comes with it. The gateway
// never routes /internal/ paths and Describe leaves them out of the document.
func internalRoutes(api huma.API, h *handlers) {
	server.Register(api, huma.Operation{
		OperationID: "reserve-stock", Method: http.MethodPost, Path: "/internal/v1/reservations",
		Summary: "Reserve stock for all lines of an order, or none (idempotent by order id)",
		Tags:    []string{"internal"}, Hidden: true, Middlewares: guard(requireOrders),
	}, h.reserve)
	server.Register(api, huma.Operation{
		OperationID: "release-stock", Method: http.MethodDelete, Path: "/internal/v1/reservations/{order_id}",
		Summary: "Release the stock reserved for an order (idempotent)",
		Tags:    []string{"internal"}, Hidden: true, DefaultStatus: http.StatusNoContent,
		Middlewares: guard(requireOrders),
	}, h.release)
}

func requireAdmin(ctx context.Context) error {
	_, err := auth.RequireAdmin(ctx)
	return err
}

func requireOrders(ctx context.Context) error { return auth.RequireService(ctx, "orders") }

// guard checks rule against the principal the Authenticator put in the
// request's context before huma reads the request: a caller who may not call
// the operation is refused (401 or 403) without its body being read or its
// input rules being told.
func guard(rule func(context.Context) error) huma.Middlewares {
	return huma.Middlewares{func(ctx huma.Context, next func(huma.Context)) {
		err := rule(ctx.Context())
		if err == nil {
			next(ctx)
			return
		}
		r, w := humago.Unwrap(ctx)
		p := problem.From(err)
		if p.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", auth.Challenge)
		}
		problem.Write(w, r, p)
	}}
}
