// Package ordershttp is the orders service's HTTP transport: its routes,
// handlers and the typed client other services use to call it.
package ordershttp

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/danielgtaylor/huma/v2/sse"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/server"
)

// EventsPath is the pattern of the route that streams an order's status as
// Server-Sent Events. It is served by a plain handler, outside huma.
const EventsPath = "/api/v1/orders/{id}/events"

// routes lists every huma operation of the orders service. Each acts for the
// authenticated user: customers see and place their own orders, admins see
// everyone's.
func routes(api huma.API, h *handlers) {
	server.Register(api, huma.Operation{
		OperationID: "place-order", Method: http.MethodPost, Path: "/api/v1/orders",
		Summary: "Place an order for the calling user",
		Description: "Stores the order as pending, at the current prices, and asks products to reserve its stock. " +
			"The answer is 202 with the pending order and its Location; the order then becomes confirmed, " +
			"rejected (no stock) or, without an answer before its deadline, expired: follow it with " +
			"GET /api/v1/orders/{id}/events or poll GET /api/v1/orders/{id}. A request that repeats an earlier " +
			"one's Idempotency-Key is answered 200 with that order as it is now.",
		Tags: []string{"orders"}, DefaultStatus: http.StatusAccepted, Middlewares: guard(requireUser),
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
	server.Register(api, huma.Operation{
		OperationID: "cancel-order", Method: http.MethodPost, Path: "/api/v1/orders/{id}/cancel",
		Summary: "Cancel a pending or confirmed order",
		Description: "The owner, or an admin, cancels the order; products then gives back its stock. " +
			"An order of another user is not found; an order that is already rejected, expired or cancelled " +
			"is a 409 illegal-transition.",
		Tags: []string{"orders"}, Middlewares: guard(requireUser),
	}, h.cancel)
}

// describeEvents adds the Server-Sent Events route to api's document. It is
// served by Handler as a plain handler (see events), never through huma.
func describeEvents(api huma.API) {
	sse.Register(api, huma.Operation{
		OperationID: "watch-order", Method: http.MethodGet, Path: EventsPath,
		Summary: "Follow an order's status as Server-Sent Events",
		Description: "Send `Accept: text/event-stream`. The stream starts with a `status` event holding the order, " +
			"then sends one whenever its status changes, and ends after a final status (rejected, expired, " +
			"cancelled) or when the client leaves. A `: keep-alive` comment comes every 15 s. Each event's id is " +
			"the status: a client that reconnects with a final status as Last-Event-ID is answered 204, which " +
			"stops an EventSource. An order of another user is not found, unless the caller is an admin.",
		Tags: []string{"orders"},
	}, map[string]any{"status": orders.Order{}}, func(context.Context, *eventsInput, sse.Sender) {})
}

type eventsInput struct {
	ID string `path:"id" maxLength:"64" doc:"Order id."`
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
		refuse(w, r, err)
	}}
}

// refuse writes err, the refusal of a rule, as a problem, with the Bearer
// challenge on a 401.
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.From(err)
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", auth.Challenge)
	}
	problem.Write(w, r, p)
}
