// Package problem writes and reads RFC 9457 "application/problem+json" bodies.
// It owns the one table that maps a fault.Kind to an HTTP status.
package problem

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/requestid"
)

// ContentType is the media type of a problem body.
const ContentType = "application/problem+json"

// TypePrefix starts every problem type URI. The URI is a stable identifier; the
// gateway serves a short description of each type at that path.
const TypePrefix = "/problems/"

// Problem is an RFC 9457 problem details object. It implements huma.StatusError
// so that handlers can return it directly.
type Problem struct {
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Status    int                `json:"status"`
	Detail    string             `json:"detail,omitempty"`
	Instance  string             `json:"instance,omitempty"`
	RequestID string             `json:"request_id,omitempty"`
	Errors    []fault.FieldError `json:"errors,omitempty"`

	retryAfter time.Duration
	cause      error
}

func (p *Problem) Error() string { return p.Detail }

// GetStatus returns the HTTP status of the problem.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes huma write problems as application/problem+json.
func (p *Problem) ContentType(string) string { return ContentType }

// Cause returns the error behind the problem, for logs only.
func (p *Problem) Cause() error { return p.cause }

// RetryAfter returns how long the client should wait before retrying, or 0.
func (p *Problem) RetryAfter() time.Duration { return p.retryAfter }

type kindInfo struct {
	status int
	code   string
	title  string
}

// kinds maps each fault.Kind to its HTTP status, default code and title. It is the
// only place where that mapping lives.
var kinds = map[fault.Kind]kindInfo{
	fault.Internal:        {http.StatusInternalServerError, "internal", "Internal error"},
	fault.Invalid:         {http.StatusBadRequest, "invalid-request", "Invalid request"},
	fault.Unauthenticated: {http.StatusUnauthorized, "unauthenticated", "Authentication required"},
	fault.Forbidden:       {http.StatusForbidden, "forbidden", "Forbidden"},
	fault.NotFound:        {http.StatusNotFound, "not-found", "Not found"},
	fault.Conflict:        {http.StatusConflict, "conflict", "Conflict"},
	fault.Unprocessable:   {http.StatusUnprocessableEntity, "unprocessable", "Unprocessable request"},
	fault.TooLarge:        {http.StatusRequestEntityTooLarge, "too-large", "Request too large"},
	fault.RateLimited:     {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	fault.Unavailable:     {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	fault.Timeout:         {http.StatusGatewayTimeout, "timeout", "Deadline exceeded"},
	fault.BadGateway:      {http.StatusBadGateway, "bad-gateway", "Bad gateway"},
}

// StatusOf returns the HTTP status for a kind.
func StatusOf(k fault.Kind) int { return kinds[k].status }

// KindOfStatus is the reverse mapping, used by clients reading a peer's answer.
func KindOfStatus(status int) fault.Kind {
	switch status {
	case http.StatusBadRequest:
		return fault.Invalid
	case http.StatusUnauthorized:
		return fault.Unauthenticated
	case http.StatusForbidden:
		return fault.Forbidden
	case http.StatusNotFound:
		return fault.NotFound
	case http.StatusConflict:
		return fault.Conflict
	case http.StatusUnprocessableEntity:
		return fault.Unprocessable
	case http.StatusRequestEntityTooLarge:
		return fault.TooLarge
	case http.StatusTooManyRequests:
		return fault.RateLimited
	case http.StatusServiceUnavailable:
		return fault.Unavailable
	case http.StatusGatewayTimeout:
		return fault.Timeout
	case http.StatusBadGateway:
		return fault.BadGateway
	}
	if status >= 400 && status < 500 {
		return fault.Invalid
	}
	return fault.Internal
}

// From turns any error into a Problem. Messages of *fault.Error values are shown;
// anything else becomes a generic internal error whose text never reaches the client.
func From(err error) *Problem {
	if p, ok := errors.AsType[*Problem](err); ok {
		return p
	}
	e, ok := errors.AsType[*fault.Error](err)
	if !ok {
		kind := fault.KindOf(err) // context errors have a kind without being *fault.Error
		msg := "an internal error occurred"
		switch kind {
		case fault.Timeout:
			msg = "the request did not complete before its deadline"
		case fault.Unavailable:
			msg = "the request was cancelled"
		}
		e = &fault.Error{Kind: kind, Msg: msg, Err: err}
	}
	info, known := kinds[e.Kind]
	if !known {
		info = kinds[fault.Internal]
	}
	code := e.Code
	if code == "" {
		code = info.code
	}
	msg, fields := e.Msg, e.Fields
	if !known || e.Kind == fault.Internal {
		// Never show internal details, nor those of a kind this table does not
		// know (it is answered as a 500 like Internal).
		msg, fields = "an internal error occurred", nil
	}
	return &Problem{
		Type:       TypePrefix + code,
		Title:      info.title,
		Status:     info.status,
		Detail:     msg,
		Errors:     fields,
		retryAfter: e.RetryAfter,
		cause:      err,
	}
}

// New returns a problem with the given status, code and detail.
func New(status int, code, detail string) *Problem {
	title := http.StatusText(status)
	if info, ok := kinds[KindOfStatus(status)]; ok && info.status == status {
		title = info.title
	}
	return &Problem{Type: TypePrefix + code, Title: title, Status: status, Detail: detail}
}

// Write writes p to w, with Retry-After when the problem has one. The instance
// and request id default to those of r.
func Write(w http.ResponseWriter, r *http.Request, p *Problem) {
	if r != nil {
		if p.Instance == "" {
			p.Instance = r.URL.Path
		}
		if p.RequestID == "" {
			p.RequestID = requestid.From(r.Context())
		}
	}
	if p.retryAfter > 0 {
		secs := int((p.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// ToFault turns a problem read from a peer into a *fault.Error with the same kind,
// code and client-safe message, so it can travel on through this service.
func (p *Problem) ToFault() *fault.Error {
	code := ""
	if len(p.Type) > len(TypePrefix) && p.Type[:len(TypePrefix)] == TypePrefix {
		code = p.Type[len(TypePrefix):]
	}
	kind := KindOfStatus(p.Status)
	if code == kinds[kind].code {
		code = ""
	}
	return &fault.Error{Kind: kind, Code: code, Msg: p.Detail, Fields: p.Errors, RetryAfter: p.retryAfter}
}

// SetRetryAfter records a Retry-After read from a response.
func (p *Problem) SetRetryAfter(d time.Duration) { p.retryAfter = d }
