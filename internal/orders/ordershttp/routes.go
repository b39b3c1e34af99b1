// Package ordershttp is the orders service's HTTP transport: its routes,
// handlers and the typed client other services use to call it.
package ordershttp

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/server"
)

// routes lists every operation of the orders service. Each acts for the
// authenticated user: customers see and place their own orders, admins see
// everyone's.
func routes(api huma.API, h *handlers) {
	server.Register(api, huma.Operation{
		OperationID: "place-order", Method: http.MethodPost, Path: "/api/v1/orders",
		Summary: "Place an order for the calling user",
		Description: "Reserves the stock of every line or of none. The answer is 201 with the new order " +
			"(confirmed, or rejected for lack of stock), or 200 with the earlier order when the " +
			"Idempotency-Key repeats an earlier request.",
		Tags: []string{"orders"}, DefaultStatus: http.StatusCreated, Middlewares: guard(requireUser),
	}, h.place)
	server.Register(api, huma.Operation{
		OperationID: "list-orders", Method: http.MethodGet, Path: "/api/v1/orders",
		Summary: "List the calling user's orders (or, for admins, any user's), newest first", Tags: []string{"orders"},
		Middlewares: guard(requireUser),
	}, h.list)
	server.Register(api, huma.Operation{
		OperationID: "get-order", Method: http.MethodGet, Path: "/api/v1/orders/{id}",
		Summary: "Get an order with its user and products",
		Description: "Parts that cannot be fetched now are null and named in degraded; the answer is still 200. " +
			"An order of another user is not found, unless the caller is an admin.",
		Tags: []string{"orders"}, Middlewares: guard(requireUser),
	}, h.get)
}

func requireUser(ctx context.Context) error {
	_, err := auth.RequireUser(ctx)
	return err
}

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
