// Package productshttp is the products service's HTTP transport: its routes,
// handlers and the typed client other services use to call it.
package productshttp

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/server"
)

// routes lists the public operations of the products service, the ones the
// gateway routes and documents.
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
		Summary: "Create a product", Tags: []string{"products"}, DefaultStatus: http.StatusCreated,
	}, h.create)
	server.Register(api, huma.Operation{
		OperationID: "update-product", Method: http.MethodPatch, Path: "/api/v1/products/{id}",
		Summary: "Change a product's name, description, price or stock", Tags: []string{"products"},
	}, h.update)
}

// internalRoutes lists the operations only other services call. The gateway
// never routes /internal/ paths and Describe leaves them out of the document.
func internalRoutes(api huma.API, h *handlers) {
	server.Register(api, huma.Operation{
		OperationID: "reserve-stock", Method: http.MethodPost, Path: "/internal/v1/reservations",
		Summary: "Reserve stock for all lines of an order, or none (idempotent by order id)",
		Tags:    []string{"internal"}, Hidden: true,
	}, h.reserve)
	server.Register(api, huma.Operation{
		OperationID: "release-stock", Method: http.MethodDelete, Path: "/internal/v1/reservations/{order_id}",
		Summary: "Release the stock reserved for an order (idempotent)",
		Tags:    []string{"internal"}, Hidden: true, DefaultStatus: http.StatusNoContent,
	}, h.release)
}
