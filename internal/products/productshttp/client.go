package productshttp

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/products"
)

// Client calls the products service over HTTP. It has the same methods as
// products.Service that other services need, so either can satisfy them.
//
// Credentials are added by the upstream client's Decorate hook, which the
// wiring sets to auth.Credentials with this service's signer: every call
// forwards the token of the user the context acts for, and Reserve and
// Release, which call internal endpoints, also carry this service's own token.
type Client struct{ up *upstream.Client }

// NewClient returns a client that calls the products service through up.
func NewClient(up *upstream.Client) *Client { return &Client{up: up} }

// Products returns the products with the given ids, once each; unknown ids
// are absent. Bad ids are a fault.Invalid error (as with products.Service); an
// unreachable service is a fault.Unavailable or fault.Timeout error, and an
// answer with products that were not asked for a fault.BadGateway error.
func (c *Client) Products(ctx context.Context, ids []string) ([]products.Product, error) {
	if len(ids) == 0 || len(ids) > products.MaxBatch {
		return nil, fault.Invalidf("query.ids", "ids must list 1 to %d product ids", products.MaxBatch)
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !products.ValidID(id) { // also keeps commas out of the list
			return nil, fault.Invalidf("query.ids", "ids must be product ids (UUIDs)")
		}
		asked[id] = true
	}
	var p page.Page[products.Product]
	q := url.Values{"ids": {strings.Join(ids, ",")}}
	if err := c.up.Get(ctx, "/api/v1/products?"+q.Encode(), &p); err != nil {
		return nil, err
	}
	// Never trust a peer's answer blindly: each product asked for, at most once.
	for _, pr := range p.Items {
		if !asked[pr.ID] {
			return nil, fault.New(fault.BadGateway, "products sent a product that was not asked for, or twice")
		}
		delete(asked, pr.ID)
	}
	if p.Items == nil {
		p.Items = []products.Product{}
	}
	return p.Items, nil
}

// Reserve holds stock for every line of the order orderID, or for none; short
// stock is a Rejected reservation, not an error. The call is idempotent by
// orderID on the server, so it is retried. A malformed request is a
// fault.Invalid error, an unknown product a fault.Unprocessable error and an
// answer that does not fit the request a fault.BadGateway error.
func (c *Client) Reserve(ctx context.Context, orderID string, lines []products.Line) (products.Reservation, error) {
	if err := products.ValidReservation(orderID, lines); err != nil {
		return products.Reservation{}, err
	}
	in := struct {
		OrderID string          `json:"order_id"`
		Lines   []products.Line `json:"lines"`
	}{orderID, lines}
	var r products.Reservation
	if err := c.up.Do(auth.AsService(ctx), http.MethodPost, "/internal/v1/reservations", in, &r, true); err != nil {
		return products.Reservation{}, err
	}
	if err := checkReservation(r, orderID, lines); err != nil {
		return products.Reservation{}, err
	}
	return r, nil
}

// checkReservation reports a fault.BadGateway error unless r is a plausible
// answer to reserving lines for orderID. A Reserved answer may list other
// lines than asked for: it is the order's earlier reservation.
func checkReservation(r products.Reservation, orderID string, lines []products.Line) error {
	bad := func(what string) error {
		return fault.New(fault.BadGateway, "products sent an invalid reservation: %s", what)
	}
	if r.OrderID != orderID {
		return bad("another order")
	}
	switch r.Status {
	case products.Reserved:
		if len(r.Lines) == 0 {
			return bad("no lines")
		}
		for _, l := range r.Lines {
			if !products.ValidID(l.ProductID) || l.Quantity < 1 {
				return bad("a malformed line")
			}
		}
	case products.Rejected:
		asked := make(map[string]bool, len(lines))
		for _, l := range lines {
			asked[l.ProductID] = true
		}
		if len(r.Shortages) == 0 {
			return bad("a rejection without shortages")
		}
		for _, s := range r.Shortages {
			if !asked[s.ProductID] {
				return bad("a shortage of a product that was not asked for")
			}
		}
	default:
		return bad("unknown status")
	}
	return nil
}

// Release gives back the stock reserved for orderID; releasing an order
// without a reservation succeeds. The call is idempotent, so it is retried. A
// malformed order id is a fault.Invalid error.
func (c *Client) Release(ctx context.Context, orderID string) error {
	if !products.ValidID(orderID) {
		return fault.Invalidf("path.order_id", "order_id must be an order id (UUID)")
	}
	return c.up.Do(auth.AsService(ctx), http.MethodDelete, "/internal/v1/reservations/"+url.PathEscape(orderID), nil, nil, true)
}

// State reports the client's circuit breaker.
func (c *Client) State() map[string]any { return c.up.State() }
