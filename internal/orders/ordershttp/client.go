package ordershttp

import (
	"context"
	"net/http"
	"net/url"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/upstream"
)

// Client calls the orders service over HTTP.
type Client struct{ up *upstream.Client }

// NewClient returns a client that calls the orders service through up.
func NewClient(up *upstream.Client) *Client { return &Client{up: up} }

// Order returns the order with id, with its user and products, if the user ctx
// acts for may see it. Unknown ids, and orders of others, are a
// fault.NotFound error; an unreachable service is a fault.Unavailable or
// fault.Timeout error.
func (c *Client) Order(ctx context.Context, id string) (orders.EnrichedOrder, error) {
	if !orders.ValidID(id) {
		return orders.EnrichedOrder{}, orders.OrderNotFound()
	}
	var o orders.EnrichedOrder
	if err := c.up.Get(ctx, "/api/v1/orders/"+url.PathEscape(id), &o); err != nil {
		return orders.EnrichedOrder{}, err
	}
	if o.ID != id { // never trust a peer's answer blindly
		return orders.EnrichedOrder{}, fault.New(fault.BadGateway, "orders sent a different order than asked for")
	}
	return o, nil
}

// Place places an order of lines for the user ctx acts for, whose token the
// upstream client's Decorate hook (auth.Credentials) sends, and returns it,
// pending until products has answered; a repeated request with the same
// idempotency key (when not empty) returns the first one's order as it is
// now. Errors are
// those of orders.Service.Place, a fault.Unauthenticated error without a
// valid user token, or a fault.Unavailable or fault.Timeout error when the
// service cannot answer. Only a request with an idempotency key is retried:
// without one a retry could place a second order.
func (c *Client) Place(ctx context.Context, lines []orders.LineRequest, idempotencyKey string) (orders.Order, error) {
	body := struct {
		Lines []orders.LineRequest `json:"lines"`
	}{lines}
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	var o orders.Order
	if err := c.up.DoWithHeader(ctx, http.MethodPost, "/api/v1/orders", h, body, &o, h != nil); err != nil {
		return orders.Order{}, err
	}
	if user := auth.From(ctx).UserID; (user != "" && o.UserID != user) || len(o.Lines) != len(lines) {
		return orders.Order{}, fault.New(fault.BadGateway, "orders sent an order that does not match the request")
	}
	return o, nil
}

// Cancel cancels the order id for the user ctx acts for (its owner, or an
// admin) and returns it. Unknown ids, and orders of others, are a
// fault.NotFound error; an order that can no longer be cancelled is a
// fault.Conflict error with code orders.CodeIllegalTransition. It is not
// retried.
func (c *Client) Cancel(ctx context.Context, id string) (orders.Order, error) {
	if !orders.ValidID(id) {
		return orders.Order{}, orders.OrderNotFound()
	}
	var o orders.Order
	if err := c.up.DoWithHeader(ctx, http.MethodPost, "/api/v1/orders/"+url.PathEscape(id)+"/cancel", nil, nil, &o, false); err != nil {
		return orders.Order{}, err
	}
	if o.ID != id {
		return orders.Order{}, fault.New(fault.BadGateway, "orders sent a different order than asked for")
	}
	return o, nil
}

// State reports the client's circuit breaker.
func (c *Client) State() map[string]any { return c.up.State() }
