// Package fault is microshop's error vocabulary. Domain code returns a *fault.Error
// with a Kind; transport code maps the Kind to a status code (see package problem).
// The package imports nothing from net/http so that domain packages can use it.
package fault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds of error. Internal is the zero value, so an unclassified error is never
// mistaken for the caller's fault.
const (
	Internal        Kind = iota // a bug or an unexpected failure: the caller can do nothing
	Invalid                     // the request is malformed or breaks a rule on its own
	Unauthenticated             // the caller did not prove who they are
	Forbidden                   // the caller may not do this
	NotFound                    // the thing does not exist (or the caller may not know it does)
	Conflict                    // the request clashes with the current state
	Unprocessable               // well-formed, but refers to things that do not fit (unknown user, ...)
	TooLarge                    // the request is too big
	RateLimited                 // too many requests: try again later
	Unavailable                 // a dependency cannot answer now: try again later
	Timeout                     // the deadline passed before the work was done
	BadGateway                  // a dependency answered with something unusable
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Unprocessable:   "unprocessable",
	TooLarge:        "too_large",
	RateLimited:     "rate_limited",
	Unavailable:     "unavailable",
	Timeout:         "timeout",
	BadGateway:      "bad_gateway",
}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// Error is an error with a Kind, a message that is safe to show to a client, and
// an optional cause that only logs see.
type Error struct {
	Kind Kind
	// Code is a stable, machine-readable name for this particular error
	// (for example "insufficient-stock"). Empty means the Kind's default.
	Code string
	// Msg is shown to clients: it must never contain secrets or internal details.
	Msg string
	// Err is the cause, for logs only.
	Err error
	// RetryAfter, when positive, tells the client when trying again makes sense.
	RetryAfter time.Duration
	// Fields lists per-field problems for Invalid errors.
	Fields []FieldError
}

// FieldError names one invalid part of a request.
type FieldError struct {
	Location string `json:"location"`
	Message  string `json:"message"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind with a client-safe message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the given kind with a client-safe message and a cause
// that is kept for logs.
func Wrap(err error, kind Kind, msg string) *Error {
	return &Error{Kind: kind, Msg: msg, Err: err}
}

// Invalidf returns an Invalid error about one field.
func Invalidf(location, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: Invalid, Msg: msg, Fields: []FieldError{{Location: location, Message: msg}}}
}

// WithCode sets the stable code of e and returns it.
func (e *Error) WithCode(code string) *Error {
	e.Code = code
	return e
}

// KindOf reports the Kind of err. Context deadlines are Timeout, cancellations are
// Unavailable, and anything unclassified is Internal.
func KindOf(err error) Kind {
	if err == nil {
		return Internal
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, context.Canceled):
		return Unavailable
	}
	return Internal
}

// Is reports whether err is of the given kind.
func Is(err error, kind Kind) bool { return err != nil && KindOf(err) == kind }

// CodeOf returns the stable code of err, or "" if it has none.
func CodeOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return ""
}
