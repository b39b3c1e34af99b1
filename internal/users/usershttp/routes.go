// Package usershttp is the users service's HTTP transport: its routes, handlers
// and the typed client other services use to call it.
package usershttp

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/server"
)

// routes lists every operation of the users service and who may call it:
// anyone may register, log in, refresh, log out and read the JWKS; a user may
// read themself (an admin anyone: others get 404 as for an unknown id); only
// admins list and create users.
func routes(api huma.API, h *handlers) {
	bearer := []map[string][]string{{bearerScheme: {}}}
	op := func(id, method, path, summary string, status int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary,
			Tags: []string{"users"}, DefaultStatus: status}
	}
	authOp := func(id, path, summary string, status int) huma.Operation {
		o := op(id, http.MethodPost, path, summary, status)
		o.Tags = []string{"auth"}
		return o
	}
	secured := func(o huma.Operation, mw huma.Middlewares) huma.Operation {
		o.Security, o.Middlewares = bearer, mw
		return o
	}
	server.Register(api, authOp("register", "/api/v1/auth/register", "Create a customer account", http.StatusCreated), h.register)
	server.Register(api, authOp("login", "/api/v1/auth/login", "Log in: get an access and a refresh token", 0), h.login)
	server.Register(api, authOp("refresh", "/api/v1/auth/refresh", "Exchange a refresh token (single-use) for new tokens", 0), h.refresh)
	server.Register(api, authOp("logout", "/api/v1/auth/logout", "Revoke a refresh token and every token of its login", http.StatusNoContent), h.logout)
	server.Register(api, op("get-jwks", http.MethodGet, "/.well-known/jwks.json", "Public keys that verify access tokens", 0), h.jwks)
	server.Register(api, secured(op("get-me", http.MethodGet, "/api/v1/users/me", "Get the calling user", 0), guard(auth.RequireUser)), h.me)
	server.Register(api, secured(op("get-user", http.MethodGet, "/api/v1/users/{id}", "Get a user (themself, or anyone for an admin)", 0), guard(auth.RequireUser)), h.get)
	server.Register(api, secured(op("list-users", http.MethodGet, "/api/v1/users", "List users (admins only)", 0), guard(auth.RequireAdmin)), h.list)
	server.Register(api, secured(op("create-user", http.MethodPost, "/api/v1/users", "Create a customer without a password (admins only)", http.StatusCreated), guard(auth.RequireAdmin)), h.create)
}
