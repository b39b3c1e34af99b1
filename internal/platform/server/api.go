// Package server holds what every microshop HTTP service shares: the huma API
// set-up, the middleware chain, health endpoints and a graceful Serve.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/requestid"
)

// MaxBodyBytes is the default limit on a request body.
const MaxBodyBytes = 64 << 10

// NewAPI returns a huma API on mux that writes every error as an RFC 9457 problem
// and logs the cause of server-side errors with log. It serves no docs: the
// gateway publishes the public OpenAPI document.
func NewAPI(mux *http.ServeMux, title string, log *slog.Logger) huma.API {
	cfg := Config(title)
	cfg.Transformers = append(cfg.Transformers, problemTransformer(log))
	return humago.New(mux, cfg)
}

// Config returns the huma configuration shared by every service and by the
// gateway's OpenAPI document.
func Config(title string) huma.Config {
	cfg := huma.DefaultConfig(title, "1.0.0")
	cfg.CreateHooks = nil // no $schema links in bodies
	cfg.OpenAPIPath = ""
	cfg.DocsPath = ""
	cfg.SchemasPath = ""
	cfg.RejectUnknownQueryParameters = true
	return cfg
}

// Register adds an operation whose handler errors are turned into problems: a
// *fault.Error shows its message, any other error becomes a generic 500 whose
// text never reaches the client.
func Register[I, O any](api huma.API, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	if op.MaxBodyBytes == 0 {
		op.MaxBodyBytes = MaxBodyBytes
	}
	huma.Register(api, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, in)
		if err != nil {
			return nil, problem.From(err)
		}
		return out, nil
	})
}

// problemTransformer turns huma's own errors (validation, body too large, ...)
// into microshop problems, drops echoed input values (they may hold secrets),
// adds the request id and Retry-After, and logs server-side causes.
func problemTransformer(log *slog.Logger) huma.Transformer {
	return func(ctx huma.Context, status string, v any) (any, error) {
		var p *problem.Problem
		switch e := v.(type) {
		case *problem.Problem:
			p = e
		case *huma.ErrorModel:
			p = fromHuma(e)
		default:
			return v, nil
		}
		rctx := ctx.Context()
		p.RequestID = requestid.From(rctx)
		if p.Instance == "" {
			p.Instance = ctx.URL().Path
		}
		if ra := p.RetryAfter(); ra > 0 {
			ctx.SetHeader("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
		}
		if p.Status == http.StatusUnauthorized {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="microshop"`)
		}
		if p.Status >= 500 {
			log.ErrorContext(rctx, "request failed", "status", p.Status, "type", p.Type, "err", p.Cause())
		}
		return p, nil
	}
}

func fromHuma(e *huma.ErrorModel) *problem.Problem {
	var fields []fault.FieldError
	for _, d := range e.Errors {
		if d == nil {
			continue
		}
		fields = append(fields, fault.FieldError{Location: d.Location, Message: d.Message})
	}
	code := "invalid-request"
	switch e.Status {
	case http.StatusUnprocessableEntity:
		code = "validation-failed"
	case http.StatusRequestEntityTooLarge:
		code = "too-large"
	case http.StatusUnsupportedMediaType:
		code = "unsupported-media-type"
	case http.StatusNotFound:
		code = "not-found"
	case http.StatusMethodNotAllowed:
		code = "method-not-allowed"
	case http.StatusNotAcceptable:
		code = "not-acceptable"
	default:
		if e.Status >= 500 {
			code = "internal"
		}
	}
	detail := e.Detail
	if e.Status >= 500 {
		detail = "an internal error occurred"
		fields = nil
	}
	p := problem.New(e.Status, code, detail)
	p.Errors = fields
	return p
}
