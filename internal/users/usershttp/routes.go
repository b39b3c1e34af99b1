// Package usershttp is the users service's HTTP transport: its routes, handlers
// and the typed client other services use to call it.
package usershttp

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/server"
)

// routes lists every operation of the users service.
func routes(api huma.API, h *handlers) {
	server.Register(api, huma.Operation{
		OperationID: "create-user", Method: http.MethodPost, Path: "/api/v1/users",
		Summary: "Create a user", Tags: []string{"users"}, DefaultStatus: http.StatusCreated,
	}, h.create)
	server.Register(api, huma.Operation{
		OperationID: "list-users", Method: http.MethodGet, Path: "/api/v1/users",
		Summary: "List users", Tags: []string{"users"},
	}, h.list)
	server.Register(api, huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/api/v1/users/{id}",
		Summary: "Get a user", Tags: []string{"users"},
	}, h.get)
}
