package problem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/requestid"
)

// allKinds lists every fault.Kind.
var allKinds = []fault.Kind{
	fault.Internal, fault.Invalid, fault.Unauthenticated, fault.Forbidden, fault.NotFound,
	fault.Conflict, fault.Unprocessable, fault.TooLarge, fault.RateLimited, fault.Unavailable,
	fault.Timeout, fault.BadGateway,
}

var ignoreUnexported = cmpopts.IgnoreUnexported(problem.Problem{})

const secret = "pq: password authentication failed for user admin at 10.0.0.3"

func TestFromMapsEveryKind(t *testing.T) {
	tests := []struct {
		kind       fault.Kind
		wantStatus int
		wantType   string
		wantTitle  string
		wantDetail string
	}{
		{fault.Internal, 500, "/problems/internal", "Internal error", "an internal error occurred"},
		{fault.Invalid, 400, "/problems/invalid-request", "Invalid request", "the message"},
		{fault.Unauthenticated, 401, "/problems/unauthenticated", "Authentication required", "the message"},
		{fault.Forbidden, 403, "/problems/forbidden", "Forbidden", "the message"},
		{fault.NotFound, 404, "/problems/not-found", "Not found", "the message"},
		{fault.Conflict, 409, "/problems/conflict", "Conflict", "the message"},
		{fault.Unprocessable, 422, "/problems/unprocessable", "Unprocessable request", "the message"},
		{fault.TooLarge, 413, "/problems/too-large", "Request too large", "the message"},
		{fault.RateLimited, 429, "/problems/rate-limited", "Too many requests", "the message"},
		{fault.Unavailable, 503, "/problems/unavailable", "Service unavailable", "the message"},
		{fault.Timeout, 504, "/problems/timeout", "Deadline exceeded", "the message"},
		{fault.BadGateway, 502, "/problems/bad-gateway", "Bad gateway", "the message"},
	}
	if len(tests) != len(allKinds) {
		t.Fatalf("the table covers %d kinds, want all %d", len(tests), len(allKinds))
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			err := fault.New(tt.kind, "the message")
			got := problem.From(err)
			want := &problem.Problem{Type: tt.wantType, Title: tt.wantTitle, Status: tt.wantStatus, Detail: tt.wantDetail}
			if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
				t.Errorf("From(%v) mismatch (-want +got):\n%s", tt.kind, diff)
			}
			if got.Cause() != error(err) {
				t.Errorf("Cause() = %v, want the original error", got.Cause())
			}
			if got := problem.StatusOf(tt.kind); got != tt.wantStatus {
				t.Errorf("StatusOf(%v) = %d, want %d", tt.kind, got, tt.wantStatus)
			}
		})
	}
}

func TestFrom(t *testing.T) {
	fields := []fault.FieldError{{Location: "body.email", Message: "email is invalid"}}
	tests := []struct {
		name string
		err  error
		want *problem.Problem
	}{
		{
			"fault keeps its message and fields",
			fault.Invalidf("body.email", "email is invalid"),
			&problem.Problem{Type: "/problems/invalid-request", Title: "Invalid request", Status: 400, Detail: "email is invalid", Errors: fields},
		},
		{
			"wrapped fault keeps its message, not the wrapping text",
			fmt.Errorf("store %s: %w", secret, fault.New(fault.NotFound, "user u1 not found")),
			&problem.Problem{Type: "/problems/not-found", Title: "Not found", Status: 404, Detail: "user u1 not found"},
		},
		{
			"code becomes the type",
			fault.New(fault.Conflict, "email taken").WithCode("email-taken"),
			&problem.Problem{Type: "/problems/email-taken", Title: "Conflict", Status: 409, Detail: "email taken"},
		},
		{
			"the cause of a fault never shows",
			fault.Wrap(errors.New(secret), fault.Unavailable, "database unavailable"),
			&problem.Problem{Type: "/problems/unavailable", Title: "Service unavailable", Status: 503, Detail: "database unavailable"},
		},
		{
			"plain error never leaks its text",
			errors.New(secret),
			&problem.Problem{Type: "/problems/internal", Title: "Internal error", Status: 500, Detail: "an internal error occurred"},
		},
		{
			"Internal fault never leaks its message or fields",
			&fault.Error{Kind: fault.Internal, Msg: secret, Fields: []fault.FieldError{{Location: "x", Message: secret}}},
			&problem.Problem{Type: "/problems/internal", Title: "Internal error", Status: 500, Detail: "an internal error occurred"},
		},
		{
			"unknown kind is answered like Internal, without its message",
			&fault.Error{Kind: fault.Kind(99), Msg: secret},
			&problem.Problem{Type: "/problems/internal", Title: "Internal error", Status: 500, Detail: "an internal error occurred"},
		},
		{
			"deadline is a timeout",
			fmt.Errorf("query %s: %w", secret, context.DeadlineExceeded),
			&problem.Problem{Type: "/problems/timeout", Title: "Deadline exceeded", Status: 504, Detail: "the request did not complete before its deadline"},
		},
		{
			"cancellation is unavailable",
			fmt.Errorf("query %s: %w", secret, context.Canceled),
			&problem.Problem{Type: "/problems/unavailable", Title: "Service unavailable", Status: 503, Detail: "the request was cancelled"},
		},
		{
			"a problem is kept as it is",
			fmt.Errorf("wrapped: %w", problem.New(http.StatusTeapot, "teapot", "short and stout")),
			&problem.Problem{Type: "/problems/teapot", Title: "I'm a teapot", Status: 418, Detail: "short and stout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problem.From(tt.err)
			if diff := cmp.Diff(tt.want, got, ignoreUnexported); diff != "" {
				t.Errorf("From mismatch (-want +got):\n%s", diff)
			}
			body, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(body), secret) {
				t.Errorf("the problem body leaks internal text: %s", body)
			}
		})
	}
}

func TestFromKeepsRetryAfter(t *testing.T) {
	p := problem.From(&fault.Error{Kind: fault.RateLimited, Msg: "slow down", RetryAfter: 3 * time.Second})
	if got, want := p.RetryAfter(), 3*time.Second; got != want {
		t.Errorf("RetryAfter() = %v, want %v", got, want)
	}
}

func TestKindOfStatusRoundTrip(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.String(), func(t *testing.T) {
			status := problem.StatusOf(k)
			if got := problem.KindOfStatus(status); got != k {
				t.Errorf("KindOfStatus(StatusOf(%v) = %d) = %v, want %v", k, status, got, k)
			}
		})
	}
}

func TestKindOfStatusOthers(t *testing.T) {
	tests := []struct {
		status int
		want   fault.Kind
	}{
		{http.StatusMethodNotAllowed, fault.Invalid},
		{http.StatusTeapot, fault.Invalid},
		{http.StatusUnsupportedMediaType, fault.Invalid},
		{http.StatusInternalServerError, fault.Internal},
		{http.StatusNotImplemented, fault.Internal},
		{http.StatusOK, fault.Internal},
		{0, fault.Internal},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			if got := problem.KindOfStatus(tt.status); got != tt.want {
				t.Errorf("KindOfStatus(%d) = %v, want %v", tt.status, got, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		want   *problem.Problem
	}{
		{"known status takes the kind's title", 404, "not-found",
			&problem.Problem{Type: "/problems/not-found", Title: "Not found", Status: 404, Detail: "d"}},
		{"500 is Internal", 500, "internal",
			&problem.Problem{Type: "/problems/internal", Title: "Internal error", Status: 500, Detail: "d"}},
		{"other status takes the HTTP text", 405, "method-not-allowed",
			&problem.Problem{Type: "/problems/method-not-allowed", Title: "Method Not Allowed", Status: 405, Detail: "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problem.New(tt.status, tt.code, "d")
			if diff := cmp.Diff(tt.want, got, ignoreUnexported); diff != "" {
				t.Errorf("New mismatch (-want +got):\n%s", diff)
			}
			if got.Error() != "d" || got.GetStatus() != tt.status || got.ContentType("application/json") != problem.ContentType {
				t.Errorf("Error/GetStatus/ContentType = %q/%d/%q", got.Error(), got.GetStatus(), got.ContentType(""))
			}
		})
	}
}

func TestToFault(t *testing.T) {
	fields := []fault.FieldError{{Location: "body.sku", Message: "bad"}}
	tests := []struct {
		name string
		p    *problem.Problem
		want *fault.Error
	}{
		{"default code is dropped",
			&problem.Problem{Type: "/problems/not-found", Status: 404, Detail: "user u1 not found"},
			&fault.Error{Kind: fault.NotFound, Msg: "user u1 not found"}},
		{"own code is kept",
			&problem.Problem{Type: "/problems/email-taken", Status: 409, Detail: "taken"},
			&fault.Error{Kind: fault.Conflict, Code: "email-taken", Msg: "taken"}},
		{"fields are kept",
			&problem.Problem{Type: "/problems/invalid-request", Status: 400, Detail: "bad", Errors: fields},
			&fault.Error{Kind: fault.Invalid, Msg: "bad", Fields: fields}},
		{"foreign type has no code",
			&problem.Problem{Type: "about:blank", Status: 429, Detail: "slow"},
			&fault.Error{Kind: fault.RateLimited, Msg: "slow"}},
		{"bare prefix has no code",
			&problem.Problem{Type: "/problems/", Status: 400},
			&fault.Error{Kind: fault.Invalid}},
		{"unusual 4xx is Invalid with its code",
			&problem.Problem{Type: "/problems/method-not-allowed", Status: 405, Detail: "no"},
			&fault.Error{Kind: fault.Invalid, Code: "method-not-allowed", Msg: "no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.p.ToFault()); diff != "" {
				t.Errorf("ToFault mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToFaultRoundTrip(t *testing.T) {
	for _, k := range allKinds {
		if k == fault.Internal {
			continue // its message is replaced on purpose
		}
		for _, code := range []string{"", "some-code"} {
			t.Run(k.String()+"/"+code, func(t *testing.T) {
				in := &fault.Error{Kind: k, Code: code, Msg: "msg", RetryAfter: 2 * time.Second}
				got := problem.From(in).ToFault()
				if diff := cmp.Diff(in, got); diff != "" {
					t.Errorf("From(e).ToFault() mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name           string
		retryAfter     time.Duration
		wantRetryAfter string
	}{
		{"no retry", 0, ""},
		{"negative is ignored", -time.Second, ""},
		{"a nanosecond rounds up to a second", time.Nanosecond, "1"},
		{"exact seconds", 2 * time.Second, "2"},
		{"fractions round up", 1500 * time.Millisecond, "2"},
		{"just over", 3*time.Second + time.Millisecond, "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problem.New(http.StatusServiceUnavailable, "unavailable", "try later")
			p.SetRetryAfter(tt.retryAfter)
			rec := httptest.NewRecorder()
			problem.Write(rec, httptest.NewRequest(http.MethodGet, "/api/v1/users/7?x=1", nil), p)

			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", rec.Code)
			}
			h := rec.Header()
			if got := h.Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", got)
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if got := h.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
			}
			want := map[string]any{
				"type": "/problems/unavailable", "title": "Service unavailable", "status": float64(503),
				"detail": "try later", "instance": "/api/v1/users/7",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteTakesRequestIDFromContext(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r = r.WithContext(requestid.With(r.Context(), "rid-ctx"))
	rec := httptest.NewRecorder()
	problem.Write(rec, r, problem.New(http.StatusNotFound, "not-found", "gone"))
	var got problem.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.RequestID != "rid-ctx" || got.Instance != "/x" {
		t.Errorf("request_id, instance = %q, %q; want rid-ctx, /x", got.RequestID, got.Instance)
	}
}

func TestWriteKeepsInstanceAndRequestID(t *testing.T) {
	p := problem.New(http.StatusNotFound, "not-found", "gone")
	p.Instance, p.RequestID = "/elsewhere", "rid-1"
	rec := httptest.NewRecorder()
	problem.Write(rec, nil, p)
	var got problem.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := problem.Problem{Type: "/problems/not-found", Title: "Not found", Status: 404, Detail: "gone", Instance: "/elsewhere", RequestID: "rid-1"}
	if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
}
