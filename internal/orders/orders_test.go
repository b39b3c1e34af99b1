package orders_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/fault"
)

const (
	user = "0190f000-0000-7000-8000-000000000001"
	p1   = "0190f000-0000-7000-8000-0000000000a1"
	p2   = "0190f000-0000-7000-8000-0000000000a2"
)

func TestPlaceRequestValidate(t *testing.T) {
	many := make([]orders.LineRequest, orders.MaxLines+1)
	for i := range many {
		many[i] = orders.LineRequest{ProductID: "0190f000-0000-7000-8000-0000000001" + string(rune('a'+i/10)) + string(rune('0'+i%10)), Quantity: 1}
	}
	one := []orders.LineRequest{{ProductID: p1, Quantity: 1}}
	tests := []struct {
		name string
		req  orders.PlaceRequest
		want []string // invalid locations; nil means valid
	}{
		{"valid", orders.PlaceRequest{UserID: user, Lines: []orders.LineRequest{{p1, 1}, {p2, 100}}, IdempotencyKey: "k-1 ~"}, nil},
		{"max lines", orders.PlaceRequest{UserID: user, Lines: many[:orders.MaxLines]}, nil},
		{"max key", orders.PlaceRequest{UserID: user, Lines: one, IdempotencyKey: strings.Repeat("k", orders.MaxKeyLen)}, nil},
		{"user not a uuid", orders.PlaceRequest{UserID: "ada", Lines: one}, []string{"body.user_id"}},
		{"user uuid without dashes", orders.PlaceRequest{UserID: strings.ReplaceAll(user, "-", ""), Lines: one}, []string{"body.user_id"}},
		{"no lines", orders.PlaceRequest{UserID: user}, []string{"body.lines"}},
		{"too many lines", orders.PlaceRequest{UserID: user, Lines: many}, []string{"body.lines"}},
		{"quantity 0", orders.PlaceRequest{UserID: user, Lines: []orders.LineRequest{{p1, 0}}}, []string{"body.lines[0].quantity"}},
		{"quantity 101", orders.PlaceRequest{UserID: user, Lines: []orders.LineRequest{{p1, 1}, {p2, 101}}}, []string{"body.lines[1].quantity"}},
		{"negative quantity", orders.PlaceRequest{UserID: user, Lines: []orders.LineRequest{{p1, -1}}}, []string{"body.lines[0].quantity"}},
		{"bad product", orders.PlaceRequest{UserID: user, Lines: []orders.LineRequest{{"../x", 1}}}, []string{"body.lines[0].product_id"}},
		{"duplicate product", orders.PlaceRequest{UserID: user, Lines: []orders.LineRequest{{p1, 1}, {p1, 2}}}, []string{"body.lines[1].product_id"}},
		{"key too long", orders.PlaceRequest{UserID: user, Lines: one, IdempotencyKey: strings.Repeat("k", orders.MaxKeyLen+1)}, []string{"header.Idempotency-Key"}},
		{"key with control character", orders.PlaceRequest{UserID: user, Lines: one, IdempotencyKey: "a\nb"}, []string{"header.Idempotency-Key"}},
		{"key not ascii", orders.PlaceRequest{UserID: user, Lines: one, IdempotencyKey: "clé"}, []string{"header.Idempotency-Key"}},
		{"everything wrong", orders.PlaceRequest{UserID: "", Lines: []orders.LineRequest{{"", 0}}, IdempotencyKey: "\x00"},
			[]string{"body.user_id", "body.lines[0].product_id", "body.lines[0].quantity", "header.Idempotency-Key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := locations(t, tt.req.Validate())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() locations (-want +got):\n%s", diff)
			}
		})
	}
}

// locations returns the invalid fields of err, which must be nil or a
// fault.Invalid error.
func locations(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	e, ok := errors.AsType[*fault.Error](err)
	if !ok || e.Kind != fault.Invalid {
		t.Fatalf("error = %v, want a fault.Invalid error", err)
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Location)
	}
	return out
}

func TestOrderTransition(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := created.Add(time.Minute)
	tests := []struct {
		from, to, reason string
		want             orders.Order // zero means the transition is refused
	}{
		{orders.StatusPending, orders.StatusConfirmed, "ignored", orders.Order{Status: orders.StatusConfirmed, UpdatedAt: now}},
		{orders.StatusPending, orders.StatusRejected, "insufficient stock", orders.Order{Status: orders.StatusRejected, Reason: "insufficient stock", UpdatedAt: now}},
		{orders.StatusPending, orders.StatusPending, "", orders.Order{}},
		{orders.StatusPending, "shipped", "", orders.Order{}},
		{orders.StatusConfirmed, orders.StatusRejected, "late", orders.Order{}},
		{orders.StatusConfirmed, orders.StatusConfirmed, "", orders.Order{}},
		{orders.StatusRejected, orders.StatusConfirmed, "", orders.Order{}},
		{orders.StatusRejected, orders.StatusPending, "", orders.Order{}},
	}
	for _, tt := range tests {
		t.Run(tt.from+" to "+tt.to, func(t *testing.T) {
			o := orders.Order{Status: tt.from, UpdatedAt: created}
			before := o
			err := o.Transition(tt.to, tt.reason, now)
			if tt.want.Status == "" {
				if !fault.Is(err, fault.Conflict) {
					t.Fatalf("Transition() error = %v, want a fault.Conflict error", err)
				}
				tt.want = before // a refused transition changes nothing
			} else if err != nil {
				t.Fatalf("Transition() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, o); diff != "" {
				t.Errorf("order after Transition() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestViewerCanSee(t *testing.T) {
	const other = "0190f000-0000-7000-8000-000000000002"
	tests := []struct {
		name   string
		viewer orders.Viewer
		owner  string
		want   bool
	}{
		{"owner", orders.Viewer{UserID: user}, user, true},
		{"another user", orders.Viewer{UserID: other}, user, false},
		{"admin", orders.Viewer{UserID: other, Admin: true}, user, true},
		{"nobody", orders.Viewer{}, user, false},
		{"nobody, order without owner", orders.Viewer{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.viewer.CanSee(tt.owner); got != tt.want {
				t.Errorf("%+v.CanSee(%q) = %v, want %v", tt.viewer, tt.owner, got, tt.want)
			}
		})
	}
}
