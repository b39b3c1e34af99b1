package usershttp

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/users"
)

// Handler returns the users service's HTTP handler: the API, /healthz and
// /readyz, wrapped in the standard middleware.
func Handler(svc *users.Service, checks []server.Check, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	routes(server.NewAPI(mux, "users", log), &handlers{svc: svc})
	server.Health(mux, checks, nil)
	mux.HandleFunc("/", server.NotFound)
	return server.Middleware(log, mux)
}

// Describe registers the users operations on api, for the OpenAPI document.
func Describe(api huma.API) { routes(api, &handlers{}) }

type handlers struct{ svc *users.Service }

type userOutput struct {
	Location string `header:"Location"`
	Body     users.User
}

type createInput struct {
	Body struct {
		Name  string `json:"name" minLength:"1" maxLength:"100" doc:"Display name."`
		Email string `json:"email" minLength:"3" maxLength:"254" doc:"Email address, unique (case-insensitive)."`
	}
}

func (h *handlers) create(ctx context.Context, in *createInput) (*userOutput, error) {
	u, err := h.svc.Create(ctx, users.NewUser{Name: in.Body.Name, Email: in.Body.Email})
	if err != nil {
		return nil, err
	}
	return &userOutput{Location: "/api/v1/users/" + u.ID, Body: u}, nil
}

type getInput struct {
	ID string `path:"id" maxLength:"64" doc:"User id."`
}

func (h *handlers) get(ctx context.Context, in *getInput) (*userOutput, error) {
	u, err := h.svc.User(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: u}, nil
}

type listInput struct {
	Cursor string `query:"cursor" maxLength:"300" doc:"Cursor from the previous page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"20"`
}

type listOutput struct {
	Body page.Page[users.User]
}

func (h *handlers) list(ctx context.Context, in *listInput) (*listOutput, error) {
	p, err := h.svc.List(ctx, in.Cursor, in.Limit)
	if err != nil {
		return nil, err
	}
	return &listOutput{Body: p}, nil
}
