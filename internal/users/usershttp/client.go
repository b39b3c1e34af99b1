package usershttp

import (
	"context"
	"net/url"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/upstream"
	"github.com/microshop/microshop/internal/users"
)

// Client calls the users service over HTTP. It has the same methods as
// users.Service that other services need, so either can satisfy them.
type Client struct{ up *upstream.Client }

// NewClient returns a client that calls the users service through up.
func NewClient(up *upstream.Client) *Client { return &Client{up: up} }

// User returns the user with id. Unknown ids are a fault.NotFound error; an
// unreachable service is a fault.Unavailable or fault.Timeout error.
func (c *Client) User(ctx context.Context, id string) (users.User, error) {
	if !users.ValidID(id) {
		return users.User{}, fault.New(fault.NotFound, "user not found")
	}
	var u users.User
	if err := c.up.Get(ctx, "/api/v1/users/"+url.PathEscape(id), &u); err != nil {
		return users.User{}, err
	}
	if u.ID != id { // never trust a peer's answer blindly
		return users.User{}, fault.New(fault.BadGateway, "users sent a different user than asked for")
	}
	return u, nil
}

// State reports the client's circuit breaker.
func (c *Client) State() map[string]any { return c.up.State() }
