package usershttp

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/users"
)

// Handler returns the users service's HTTP handler: the API, /healthz and
// /readyz, wrapped in the standard middleware (request id first) and then
// authn, which puts the caller's verified identity in the request's context
// (see routes for who may call what). authn must not be nil.
func Handler(svc *users.Service, authn *auth.Authenticator, checks []server.Check, log *slog.Logger) http.Handler {
	if authn == nil {
		panic("usershttp: Handler needs an Authenticator")
	}
	mux := http.NewServeMux()
	routes(server.NewAPI(mux, "users", log), &handlers{svc: svc})
	server.Health(mux, checks, nil)
	mux.HandleFunc("/", server.NotFound)
	return server.Middleware(log, authn.Middleware(mux))
}

// Describe registers the users operations on api, for the OpenAPI document,
// with the bearer security scheme they use.
func Describe(api huma.API) {
	c := api.OpenAPI().Components
	if c.SecuritySchemes == nil {
		c.SecuritySchemes = map[string]*huma.SecurityScheme{}
	}
	c.SecuritySchemes[bearerScheme] = &huma.SecurityScheme{
		Type: "http", Scheme: "bearer", BearerFormat: "JWT",
		Description: "An access token from POST /api/v1/auth/login or /api/v1/auth/refresh.",
	}
	routes(api, &handlers{})
}

const bearerScheme = "bearer"

type handlers struct{ svc *users.Service }

// guard checks rule against the caller before huma reads the request, so a
// caller who may not call an operation learns nothing about its input rules.
func guard(rule func(context.Context) (auth.Principal, error)) huma.Middlewares {
	return huma.Middlewares{func(ctx huma.Context, next func(huma.Context)) {
		if _, err := rule(ctx.Context()); err != nil {
			r, w := humago.Unwrap(ctx)
			p := problem.From(err)
			if p.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", auth.Challenge)
			}
			problem.Write(w, r, p)
			return
		}
		next(ctx)
	}}
}

// Tokens carry credentials: no cache may keep them (RFC 6749 §5.1).
const noStore = "no-store"

type tokensOutput struct {
	CacheControl string `header:"Cache-Control"`
	Pragma       string `header:"Pragma"`
	Body         users.Tokens
}

func tokensOut(t users.Tokens) *tokensOutput {
	return &tokensOutput{CacheControl: noStore, Pragma: "no-cache", Body: t}
}

type registerInput struct {
	Body struct {
		Email    string `json:"email" minLength:"3" maxLength:"254" doc:"Email address, unique (case-insensitive)."`
		Password string `json:"password" minLength:"12" maxLength:"128" doc:"12 to 128 characters (at most 256 bytes)."`
		Name     string `json:"name" minLength:"1" maxLength:"100" doc:"Display name."`
	}
}

func (h *handlers) register(ctx context.Context, in *registerInput) (*userOutput, error) {
	u, err := h.svc.Register(ctx, users.RegisterRequest{Email: in.Body.Email, Password: in.Body.Password, Name: in.Body.Name})
	if err != nil {
		return nil, err
	}
	return &userOutput{Location: "/api/v1/users/" + u.ID, Body: u}, nil
}

type loginInput struct {
	Body struct {
		Email    string `json:"email" minLength:"1" maxLength:"254"`
		Password string `json:"password" minLength:"1" maxLength:"128"`
	}
}

func (h *handlers) login(ctx context.Context, in *loginInput) (*tokensOutput, error) {
	t, err := h.svc.Login(ctx, in.Body.Email, in.Body.Password)
	if err != nil {
		return nil, err
	}
	return tokensOut(t), nil
}

type refreshInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"128"`
	}
}

func (h *handlers) refresh(ctx context.Context, in *refreshInput) (*tokensOutput, error) {
	t, err := h.svc.Refresh(ctx, in.Body.RefreshToken)
	if err != nil {
		return nil, err
	}
	return tokensOut(t), nil
}

func (h *handlers) logout(ctx context.Context, in *refreshInput) (*struct{}, error) {
	return &struct{}{}, h.svc.Logout(ctx, in.Body.RefreshToken)
}

type jwksOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         auth.JWKS
}

func (h *handlers) jwks(ctx context.Context, _ *struct{}) (*jwksOutput, error) {
	set, err := h.svc.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	return &jwksOutput{CacheControl: "public, max-age=60", Body: set}, nil
}

type userOutput struct {
	Location string `header:"Location"`
	Body     users.User
}

func (h *handlers) me(ctx context.Context, _ *struct{}) (*userOutput, error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	u, err := h.svc.User(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: u}, nil
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

// get answers only the user themself or an admin. Anyone else is told the
// user does not exist, exactly as for an unknown id, without a lookup.
func (h *handlers) get(ctx context.Context, in *getInput) (*userOutput, error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !p.CanSee(in.ID) {
		return nil, fault.New(fault.NotFound, "user not found")
	}
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
