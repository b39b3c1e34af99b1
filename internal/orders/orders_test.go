package orders_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/events"
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

// TestOrderTransition checks every pair of statuses (and a status that does
// not exist): only the life cycle's changes are allowed, and a refused one
// changes nothing.
func TestOrderTransition(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := created.Add(time.Minute)
	legal := map[[2]string]bool{
		{orders.StatusPending, orders.StatusConfirmed}:   true,
		{orders.StatusPending, orders.StatusRejected}:    true,
		{orders.StatusPending, orders.StatusExpired}:     true,
		{orders.StatusPending, orders.StatusCancelled}:   true,
		{orders.StatusConfirmed, orders.StatusCancelled}: true,
	}
	statuses := append(slices.Clone(orders.Statuses), "shipped")
	for _, from := range statuses {
		for _, to := range statuses {
			t.Run(from+" to "+to, func(t *testing.T) {
				o := orders.Order{Status: from, Reason: "before", UpdatedAt: created}
				before := o
				err := o.Transition(to, "why", now)
				if got := orders.CanTransition(from, to); got != legal[[2]string{from, to}] {
					t.Errorf("CanTransition() = %v, want %v", got, !got)
				}
				if !legal[[2]string{from, to}] {
					if fault.KindOf(err) != fault.Conflict || fault.CodeOf(err) != orders.CodeIllegalTransition {
						t.Fatalf("Transition() error = %v, want a conflict %s", err, orders.CodeIllegalTransition)
					}
					if diff := cmp.Diff(before, o); diff != "" {
						t.Errorf("a refused transition changed the order (-before +after):\n%s", diff)
					}
					return
				}
				if err != nil {
					t.Fatalf("Transition() error = %v", err)
				}
				want := orders.Order{Status: to, UpdatedAt: now}
				if orders.Final(to) {
					want.Reason = "why"
				}
				if diff := cmp.Diff(want, o); diff != "" {
					t.Errorf("order after Transition() (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestFinal(t *testing.T) {
	want := map[string]bool{orders.StatusRejected: true, orders.StatusExpired: true, orders.StatusCancelled: true}
	for _, s := range append(slices.Clone(orders.Statuses), "shipped") {
		if got := orders.Final(s); got != want[s] {
			t.Errorf("Final(%q) = %v, want %v", s, got, want[s])
		}
		if orders.Final(s) && slices.ContainsFunc(orders.Statuses, func(to string) bool { return orders.CanTransition(s, to) }) {
			t.Errorf("final status %s has a way out", s)
		}
	}
}

// TestOrderApply checks every status against every trigger: the status it
// leads to, the event that announces it, and that anything else is refused
// without a change.
func TestOrderApply(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := created.Add(time.Minute)
	earlier := created.Add(time.Second)
	type outcome struct {
		status, reason, event string
		released              *time.Time
	}
	refused := outcome{}
	tests := map[string]map[orders.Trigger]outcome{
		orders.StatusPending: {
			orders.TriggerReserved: {orders.StatusConfirmed, "", events.OrderConfirmed, nil},
			orders.TriggerRejected: {orders.StatusRejected, "why", events.OrderRejected, nil},
			orders.TriggerCancel:   {orders.StatusCancelled, "why", events.OrderCancelled, nil},
			orders.TriggerExpire:   {orders.StatusExpired, "why", events.OrderExpired, nil},
			orders.TriggerReleased: {orders.StatusPending, "", "", &now},
		},
		orders.StatusConfirmed: {
			orders.TriggerReserved: refused,
			orders.TriggerRejected: refused,
			orders.TriggerCancel:   {orders.StatusCancelled, "why", events.OrderCancelled, nil},
			orders.TriggerExpire:   refused,
			orders.TriggerReleased: {orders.StatusConfirmed, "", "", &now},
		},
	}
	for _, final := range []string{orders.StatusRejected, orders.StatusExpired, orders.StatusCancelled} {
		tests[final] = map[orders.Trigger]outcome{
			orders.TriggerReserved: refused,
			orders.TriggerRejected: refused,
			orders.TriggerCancel:   refused,
			orders.TriggerExpire:   refused,
			orders.TriggerReleased: {final, "", "", &now},
		}
	}
	for _, from := range orders.Statuses {
		for _, tr := range orders.Triggers {
			want, ok := tests[from][tr]
			if !ok {
				t.Fatalf("no expectation for %s on %s", tr, from)
			}
			t.Run(string(tr)+" on "+from, func(t *testing.T) {
				o := orders.Order{Status: from, UpdatedAt: created}
				before := o
				event, err := o.Apply(tr, "why", now)
				if want == refused {
					if fault.CodeOf(err) != orders.CodeIllegalTransition || event != "" {
						t.Fatalf("Apply() = %q, %v; want a conflict %s", event, err, orders.CodeIllegalTransition)
					}
					if diff := cmp.Diff(before, o); diff != "" {
						t.Errorf("a refused trigger changed the order (-before +after):\n%s", diff)
					}
					return
				}
				if err != nil || event != want.event {
					t.Fatalf("Apply() = %q, %v; want %q", event, err, want.event)
				}
				wantOrder := orders.Order{Status: want.status, Reason: want.reason, ReleasedAt: want.released, UpdatedAt: now}
				if diff := cmp.Diff(wantOrder, o); diff != "" {
					t.Errorf("order after Apply() (-want +got):\n%s", diff)
				}
			})
		}
	}
	t.Run("released twice keeps the first time", func(t *testing.T) {
		o := orders.Order{Status: orders.StatusCancelled, ReleasedAt: &earlier, UpdatedAt: earlier}
		if event, err := o.Apply(orders.TriggerReleased, "", now); event != "" || err != nil {
			t.Fatalf("Apply() = %q, %v", event, err)
		}
		if !o.ReleasedAt.Equal(earlier) || !o.UpdatedAt.Equal(earlier) {
			t.Errorf("released at %v, updated at %v; want both %v", o.ReleasedAt, o.UpdatedAt, earlier)
		}
	})
	t.Run("unknown trigger", func(t *testing.T) {
		o := orders.Order{Status: orders.StatusPending}
		if _, err := o.Apply("shipped", "", now); err == nil || o.Status != orders.StatusPending {
			t.Errorf("Apply(shipped) = %v, status %s; want an error and no change", err, o.Status)
		}
	})
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
