// Package ordershttp is the orders service's HTTP transport: its routes,
// handlers and the typed client other services use to call it.
package ordershttp

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/server"
)

// routes lists every operation of the orders service.
func routes(api huma.API, h *handlers) {
	server.Register(api, huma.Operation{
		OperationID: "place-order", Method: http.MethodPost, Path: "/api/v1/orders",
		Summary: "Place an order",
		Description: "Reserves the stock of every line or of none. The answer is 201 with the new order " +
			"(confirmed, or rejected for lack of stock), or 200 with the earlier order when the " +
			"Idempotency-Key repeats an earlier request.",
		Tags: []string{"orders"}, DefaultStatus: http.StatusCreated,
	}, h.place)
	server.Register(api, huma.Operation{
		OperationID: "list-orders", Method: http.MethodGet, Path: "/api/v1/orders",
		Summary: "List a user's orders, newest first", Tags: []string{"orders"},
	}, h.list)
	server.Register(api, huma.Operation{
		OperationID: "get-order", Method: http.MethodGet, Path: "/api/v1/orders/{id}",
		Summary:     "Get an order with its user and products",
		Description: "Parts that cannot be fetched now are null and named in degraded; the answer is still 200.",
		Tags:        []string{"orders"},
	}, h.get)
}
