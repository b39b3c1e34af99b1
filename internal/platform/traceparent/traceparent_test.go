package traceparent_test

import (
	"context"
	"testing"

	"github.com/microshop/microshop/internal/platform/traceparent"
)

func TestValid(t *testing.T) {
	tests := []struct {
		tp   string
		want bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},
		{"", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n", false},
	}
	for _, tt := range tests {
		if got := traceparent.Valid(tt.tp); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.tp, got, tt.want)
		}
	}
}

func TestContinue(t *testing.T) {
	parent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	child := traceparent.Continue(parent)
	if !traceparent.Valid(child) || child[:36] != parent[:36] || child[36:52] == parent[36:52] || child[52:] != parent[52:] {
		t.Errorf("Continue(%q) = %q, want the same trace and flags with a new span", parent, child)
	}
	for _, bad := range []string{"", "garbage"} {
		if fresh := traceparent.Continue(bad); !traceparent.Valid(fresh) {
			t.Errorf("Continue(%q) = %q, want a new valid traceparent", bad, fresh)
		}
	}
	ctx := traceparent.With(context.Background(), child)
	if got := traceparent.TraceID(ctx); got != parent[3:35] {
		t.Errorf("TraceID = %q, want %q", got, parent[3:35])
	}
}
