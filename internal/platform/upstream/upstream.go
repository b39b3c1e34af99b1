// Package upstream is the resilient HTTP client every service uses to call a peer.
//
// Each call runs under, from the outside in: a retry policy (idempotent calls
// only: exponential backoff with jitter, limited by a retry budget), a circuit
// breaker, a concurrency limit (bulkhead) and a per-attempt timeout, all from
// failsafe-go. The caller's context deadline bounds everything, and the remaining
// budget travels to the peer in the deadline header. Whatever goes wrong comes
// back as a *fault.Error with a client-safe message.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/microshop/microshop/internal/platform/deadline"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/requestid"
	"github.com/microshop/microshop/internal/platform/traceparent"
)

// MaxResponseBytes bounds what is read from a peer: a peer's answer is input too.
const MaxResponseBytes = 1 << 20

// Options configures a Client. Zero values take the defaults shown.
type Options struct {
	Name            string // the peer's name, used in messages and state
	BaseURL         string // for example http://127.0.0.1:8081
	Transport       http.RoundTripper
	AttemptTimeout  time.Duration // 2s: the longest one attempt may take
	MaxRetries      int           // 2: retries after the first attempt, idempotent calls only
	MaxConcurrent   uint          // 128: calls in flight at once
	BreakerDelay    time.Duration // 5s: how long the breaker stays open before probing
	BreakerFailures uint          // 5: consecutive failures that open the breaker
	Logger          *slog.Logger
	// Decorate, if set, may add headers to every outgoing request (for example
	// credentials taken from ctx).
	Decorate func(ctx context.Context, h http.Header)
}

// Client calls one peer service.
type Client struct {
	name     string
	base     *url.URL
	http     *http.Client
	log      *slog.Logger
	decorate func(context.Context, http.Header)
	breaker  circuitbreaker.CircuitBreaker[*reply]
	retrying failsafe.Executor[*reply]
	once     failsafe.Executor[*reply]
}

// reply is a fully read response; reading it inside the policies means a
// retried attempt never leaks a half-read body.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// statusError marks a 5xx answer so the breaker and the retry policy see it as a failure.
type statusError struct{ r *reply }

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.r.status) }

// DefaultTransport returns a transport tuned for many short calls to a few peers
// on a fast network: keep-alive connections, bounded dial and header times.
func DefaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ForceAttemptHTTP2:     false,
	}
}

// New returns a client for the peer at o.BaseURL.
func New(o Options) (*Client, error) {
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("upstream %s: invalid base URL %q", o.Name, o.BaseURL)
	}
	if o.Transport == nil {
		o.Transport = DefaultTransport()
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 2 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 2
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 128
	}
	if o.BreakerDelay == 0 {
		o.BreakerDelay = 5 * time.Second
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		name:     o.Name,
		base:     base,
		http:     &http.Client{Transport: o.Transport, CheckRedirect: noRedirects},
		log:      o.Logger.With("upstream", o.Name),
		decorate: o.Decorate,
	}
	c.breaker = circuitbreaker.NewBuilder[*reply]().
		HandleIf(func(_ *reply, err error) bool { return isFailure(err) }).
		WithFailureThreshold(o.BreakerFailures).
		WithDelay(o.BreakerDelay).
		WithSuccessThreshold(1).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			c.log.Warn("circuit breaker", "from", e.OldState.String(), "to", e.NewState.String())
		}).
		Build()
	retry := retrypolicy.NewBuilder[*reply]().
		HandleIf(func(_ *reply, err error) bool { return isFailure(err) }).
		AbortOnErrors(circuitbreaker.ErrOpen, bulkhead.ErrFull, context.Canceled, context.DeadlineExceeded).
		WithMaxRetries(o.MaxRetries).
		WithBackoff(25*time.Millisecond, 500*time.Millisecond).
		WithJitterFactor(0.5).
		WithBudget(budget.NewBuilder().WithMaxRate(0.2).WithMinConcurrency(3).Build()).
		ReturnLastFailure().
		Build()
	limit := bulkhead.NewBuilder[*reply](o.MaxConcurrent).WithMaxWaitTime(100 * time.Millisecond).Build()
	attempt := timeout.New[*reply](o.AttemptTimeout)
	c.retrying = failsafe.With[*reply](retry, c.breaker, limit, attempt)
	c.once = failsafe.With[*reply](c.breaker, limit, attempt)
	return c, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// isFailure reports whether an attempt's error should count against the peer:
// network errors, timeouts and 5xx answers do; the caller giving up does not.
func isFailure(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled)
}

// Get calls GET path (which may hold a query) and decodes the JSON answer into out.
// GET is idempotent, so it is retried.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, out, true)
}

// Do calls method path with in as the JSON body (nil for none) and decodes the
// answer into out (nil to discard it). Only idempotent calls are retried.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, idempotent bool) error {
	return c.DoWithHeader(ctx, method, path, nil, in, out, idempotent)
}

// DoWithHeader is Do with extra request headers, such as an Idempotency-Key
// that makes a POST safe to retry. They are set before Decorate runs.
func (c *Client) DoWithHeader(ctx context.Context, method, path string, header http.Header, in, out any, idempotent bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fault.Wrap(err, fault.Internal, "encode request")
		}
	}
	exec := c.once
	if idempotent {
		exec = c.retrying
	}
	u, err := c.url(path)
	if err != nil {
		return err
	}
	r, err := exec.WithContext(ctx).GetWithExecution(func(e failsafe.Execution[*reply]) (*reply, error) {
		return c.attempt(e.Context(), method, u, header, body)
	})
	if err != nil {
		return c.fail(ctx, err)
	}
	if r.status >= 400 {
		return c.problem(r)
	}
	if out == nil || r.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		return fault.Wrap(err, fault.BadGateway, c.name+" sent an invalid response")
	}
	return nil
}

// url resolves path (which may hold a query) against the peer's base URL.
func (c *Client) url(path string) (*url.URL, error) {
	rel, err := url.Parse(path)
	if err != nil {
		return nil, fault.Wrap(err, fault.Internal, "invalid path")
	}
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + rel.Path
	u.RawQuery = rel.RawQuery
	return &u, nil
}

func (c *Client) attempt(ctx context.Context, method string, u *url.URL, header http.Header, body []byte) (*reply, error) {
	// Built here rather than with http.NewRequest, which would format and
	// parse the URL again on every attempt.
	req := (&http.Request{Method: method, URL: u, Host: u.Host, Header: make(http.Header, len(header)+6),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if id := requestid.From(ctx); id != "" {
		req.Header.Set(requestid.Header, id)
	}
	deadline.Set(ctx, req.Header)
	if tp := traceparent.From(ctx); tp != "" {
		req.Header.Set(traceparent.Header, tp)
	}
	if c.decorate != nil {
		c.decorate(ctx, req.Header)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponseBytes {
		return nil, fault.New(fault.BadGateway, "%s sent an oversized response", c.name)
	}
	r := &reply{status: resp.StatusCode, header: resp.Header, body: b}
	if r.status >= 500 {
		return r, &statusError{r}
	}
	return r, nil
}

// fail turns a policy or transport error into a client-safe fault.
func (c *Client) fail(ctx context.Context, err error) error {
	if se, ok := errors.AsType[*statusError](err); ok {
		return c.problem(se.r)
	}
	if fe, ok := errors.AsType[*fault.Error](err); ok {
		return fe
	}
	c.log.WarnContext(ctx, "call failed", "err", err)
	switch {
	case errors.Is(err, circuitbreaker.ErrOpen):
		return &fault.Error{Kind: fault.Unavailable, Code: "upstream-unavailable", Err: err,
			Msg: c.name + " is unavailable (circuit open)", RetryAfter: max(c.breaker.RemainingDelay(), time.Second)}
	case errors.Is(err, bulkhead.ErrFull), errors.Is(err, budget.ErrExceeded):
		return &fault.Error{Kind: fault.Unavailable, Code: "upstream-overloaded", Err: err,
			Msg: "too many requests to " + c.name, RetryAfter: time.Second}
	case errors.Is(err, timeout.ErrExceeded), errors.Is(err, context.DeadlineExceeded):
		return &fault.Error{Kind: fault.Timeout, Code: "upstream-timeout", Err: err,
			Msg: c.name + " did not answer in time"}
	case errors.Is(err, context.Canceled):
		return &fault.Error{Kind: fault.Unavailable, Code: "cancelled", Err: err, Msg: "the request was cancelled"}
	}
	return &fault.Error{Kind: fault.Unavailable, Code: "upstream-unavailable", Err: err,
		Msg: c.name + " is unavailable", RetryAfter: time.Second}
}

// problem reads a peer's error answer. A peer's 4xx travels on with its kind and
// message; a peer's 5xx becomes this service's 502/503/504 without its text.
func (c *Client) problem(r *reply) error {
	var p problem.Problem
	if err := json.Unmarshal(r.body, &p); err != nil || p.Status != r.status {
		p = problem.Problem{Status: r.status}
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err == nil && ra > 0 && ra < 3600 {
		p.SetRetryAfter(time.Duration(ra) * time.Second)
	}
	f := p.ToFault()
	switch {
	case r.status == http.StatusServiceUnavailable:
		return &fault.Error{Kind: fault.Unavailable, Code: "upstream-unavailable", Msg: c.name + " is unavailable", RetryAfter: max(f.RetryAfter, time.Second)}
	case r.status == http.StatusGatewayTimeout:
		return &fault.Error{Kind: fault.Timeout, Code: "upstream-timeout", Msg: c.name + " did not answer in time"}
	case r.status >= 500:
		return &fault.Error{Kind: fault.BadGateway, Code: "upstream-failed", Msg: c.name + " failed to answer"}
	}
	if f.Msg == "" {
		f.Msg = c.name + " rejected the request"
	}
	return f
}

// State reports the breaker state for readiness reports and the operations page.
func (c *Client) State() map[string]any {
	m := c.breaker.Metrics()
	return map[string]any{
		"breaker":   c.breaker.State().String(),
		"failures":  m.Failures(),
		"successes": m.Successes(),
	}
}

// Name returns the peer's name.
func (c *Client) Name() string { return c.name }
