package fault_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/fault"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want fault.Kind
	}{
		{"nil", nil, fault.Internal},
		{"plain error", errors.New("boom"), fault.Internal},
		{"fault error", fault.New(fault.NotFound, "no user %d", 7), fault.NotFound},
		{"wrapped fault error", fmt.Errorf("load: %w", fault.New(fault.Conflict, "taken")), fault.Conflict},
		{"doubly wrapped fault error", fmt.Errorf("a: %w", fmt.Errorf("b: %w", fault.New(fault.TooLarge, "big"))), fault.TooLarge},
		{"joined errors take the fault's kind", errors.Join(errors.New("x"), fault.New(fault.Forbidden, "no")), fault.Forbidden},
		{"deadline exceeded", context.DeadlineExceeded, fault.Timeout},
		{"wrapped deadline exceeded", fmt.Errorf("query: %w", context.DeadlineExceeded), fault.Timeout},
		{"cancelled", context.Canceled, fault.Unavailable},
		{"wrapped cancelled", fmt.Errorf("query: %w", context.Canceled), fault.Unavailable},
		{"fault kind wins over its cause", fault.Wrap(context.DeadlineExceeded, fault.BadGateway, "peer"), fault.BadGateway},
		{"Wrap keeps the kind", fault.Wrap(errors.New("io"), fault.Unavailable, "db down"), fault.Unavailable},
		{"Invalidf", fault.Invalidf("body.name", "name is blank"), fault.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestKindOfRealDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	if got := fault.KindOf(fmt.Errorf("work: %w", ctx.Err())); got != fault.Timeout {
		t.Errorf("KindOf(expired context error) = %v, want %v", got, fault.Timeout)
	}
}

func TestIs(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind fault.Kind
		want bool
	}{
		{"nil is never a kind, not even Internal", nil, fault.Internal, false},
		{"plain error is Internal", errors.New("x"), fault.Internal, true},
		{"matching kind", fault.New(fault.NotFound, "x"), fault.NotFound, true},
		{"other kind", fault.New(fault.NotFound, "x"), fault.Conflict, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.Is(tt.err, tt.kind); got != tt.want {
				t.Errorf("Is(%v, %v) = %v, want %v", tt.err, tt.kind, got, tt.want)
			}
		})
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain error", errors.New("x"), ""},
		{"fault without code", fault.New(fault.Conflict, "x"), ""},
		{"fault with code", fault.New(fault.Conflict, "x").WithCode("email-taken"), "email-taken"},
		{"wrapped fault with code", fmt.Errorf("store: %w", fault.New(fault.Conflict, "x").WithCode("sku-taken")), "sku-taken"},
		{"context error", context.DeadlineExceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.CodeOf(tt.err); got != tt.want {
				t.Errorf("CodeOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestInvalidf(t *testing.T) {
	got := fault.Invalidf("query.limit", "limit must be at most %d", 100)
	want := &fault.Error{
		Kind:   fault.Invalid,
		Msg:    "limit must be at most 100",
		Fields: []fault.FieldError{{Location: "query.limit", Message: "limit must be at most 100"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Invalidf mismatch (-want +got):\n%s", diff)
	}
}

// sameCause compares the Err field of fault.Error by identity: the cause is an
// opaque error value.
var sameCause = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" },
	cmp.Comparer(func(a, b error) bool { return a == b }))

func TestConstructors(t *testing.T) {
	cause := errors.New("disk on fire")
	tests := []struct {
		name      string
		err       *fault.Error
		want      *fault.Error
		wantError string
	}{
		{
			"New formats its message",
			fault.New(fault.NotFound, "user %s not found", "u1"),
			&fault.Error{Kind: fault.NotFound, Msg: "user u1 not found"},
			"user u1 not found",
		},
		{
			"Wrap keeps the cause for logs",
			fault.Wrap(cause, fault.Unavailable, "database unavailable"),
			&fault.Error{Kind: fault.Unavailable, Msg: "database unavailable", Err: cause},
			"database unavailable: disk on fire",
		},
		{
			"WithCode sets the code",
			fault.New(fault.Conflict, "taken").WithCode("email-taken"),
			&fault.Error{Kind: fault.Conflict, Msg: "taken", Code: "email-taken"},
			"taken",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.err, sameCause); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if got := tt.err.Error(); got != tt.wantError {
				t.Errorf("Error() = %q, want %q", got, tt.wantError)
			}
		})
	}
	if got := fault.Wrap(cause, fault.Internal, "x"); !errors.Is(got, cause) {
		t.Errorf("errors.Is(Wrap(cause), cause) = false, want true")
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		kind fault.Kind
		want string
	}{
		{fault.Internal, "internal"},
		{fault.Invalid, "invalid"},
		{fault.Unauthenticated, "unauthenticated"},
		{fault.Forbidden, "forbidden"},
		{fault.NotFound, "not_found"},
		{fault.Conflict, "conflict"},
		{fault.Unprocessable, "unprocessable"},
		{fault.TooLarge, "too_large"},
		{fault.RateLimited, "rate_limited"},
		{fault.Unavailable, "unavailable"},
		{fault.Timeout, "timeout"},
		{fault.BadGateway, "bad_gateway"},
		{fault.BadGateway + 1, "kind(12)"},
		{-1, "kind(-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("Kind(%d).String() = %q, want %q", int(tt.kind), got, tt.want)
			}
		})
	}
}
