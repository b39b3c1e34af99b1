package ordershttp

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/platform/server"
)

// Handler returns the orders service's HTTP handler: the API (the
// Server-Sent Events route included), /healthz and /readyz (with info's extra
// state, such as the peers' circuit breakers), wrapped in the standard
// middleware and then authn, which checks the credentials a request carries.
// Every operation acts for an authenticated user.
func Handler(svc *orders.Service, authn *auth.Authenticator, checks []server.Check, info func(ctx context.Context) map[string]any, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	h := &handlers{svc: svc, log: log}
	routes(server.NewAPI(mux, "orders", log), h)
	mux.HandleFunc("GET "+EventsPath, h.events)
	server.Health(mux, checks, info)
	mux.HandleFunc("/", server.NotFound)
	return server.Middleware(log, authn.Middleware(mux))
}

// Describe registers the orders operations on api, for the OpenAPI document.
func Describe(api huma.API) {
	routes(api, &handlers{})
	describeEvents(api)
}

type handlers struct {
	svc *orders.Service
	log *slog.Logger
}

// viewer is who p is to the orders domain.
func viewer(p auth.Principal) orders.Viewer {
	return orders.Viewer{UserID: p.UserID, Admin: p.IsAdmin()}
}

// placeBody has no user: an order is always placed for the user whose token
// comes with the request.
type placeBody struct {
	Lines []lineBody `json:"lines" minItems:"1" maxItems:"20" doc:"One line per product."`
}

type lineBody struct {
	ProductID string `json:"product_id" maxLength:"64"`
	Quantity  int    `json:"quantity" minimum:"1" maximum:"100"`
}

type placeInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"128" doc:"Makes retries safe: a repeated request with the same key returns the first one's order, as it is now."`
	Body           placeBody
}

type placeOutput struct {
	Status   int
	Location string `header:"Location"`
	Body     orders.Order
}

func (h *handlers) place(ctx context.Context, in *placeInput) (*placeOutput, error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	req := orders.PlaceRequest{UserID: p.UserID, IdempotencyKey: in.IdempotencyKey,
		Lines: make([]orders.LineRequest, len(in.Body.Lines))}
	for i, l := range in.Body.Lines {
		req.Lines[i] = orders.LineRequest{ProductID: l.ProductID, Quantity: l.Quantity}
	}
	o, replayed, err := h.svc.Place(ctx, req)
	if err != nil {
		return nil, err
	}
	status := http.StatusAccepted
	if replayed {
		status = http.StatusOK
	}
	return &placeOutput{Status: status, Location: "/api/v1/orders/" + o.ID, Body: o}, nil
}

type getInput struct {
	ID string `path:"id" maxLength:"64" doc:"Order id."`
}

type getOutput struct {
	Body orders.EnrichedOrder
}

func (h *handlers) get(ctx context.Context, in *getInput) (*getOutput, error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	o, err := h.svc.Enriched(ctx, in.ID, viewer(p))
	if err != nil {
		return nil, err
	}
	return &getOutput{Body: o}, nil
}

type cancelInput struct {
	ID string `path:"id" maxLength:"64" doc:"Order id."`
}

type cancelOutput struct {
	Body orders.Order
}

func (h *handlers) cancel(ctx context.Context, in *cancelInput) (*cancelOutput, error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	o, err := h.svc.Cancel(ctx, in.ID, viewer(p))
	if err != nil {
		return nil, err
	}
	return &cancelOutput{Body: o}, nil
}

type listInput struct {
	UserID string `query:"user_id" maxLength:"64" doc:"Whose orders to list: by default the caller's own. Only admins may name another user."`
	Cursor string `query:"cursor" maxLength:"300" doc:"Cursor from the previous page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"20"`
}

type listOutput struct {
	Body page.Page[orders.Order]
}

func (h *handlers) list(ctx context.Context, in *listInput) (*listOutput, error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	userID := in.UserID
	switch {
	case userID == "":
		userID = p.UserID
	case !orders.ValidID(userID):
		return nil, fault.Invalidf("query.user_id", "user_id must be a UUID")
	case !p.CanSee(userID):
		// As for an order of someone else: whether the user exists is not told.
		return nil, fault.New(fault.NotFound, "user not found")
	}
	out, err := h.svc.ListByUser(ctx, userID, in.Cursor, in.Limit)
	if err != nil {
		return nil, err
	}
	return &listOutput{Body: out}, nil
}
