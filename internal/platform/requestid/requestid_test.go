package requestid_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/platform/requestid"
)

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"generated id", requestid.New(), true},
		{"uuid", "0190f4c2-7c4e-7a53-9d1f-2c3b4a5d6e7f", true},
		{"all allowed characters", "azAZ09-_.", true},
		{"one character", "a", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"empty", "", false},
		{"129 characters", strings.Repeat("a", 129), false},
		{"newline log injection", "abc\nlevel=ERROR msg=forged", false},
		{"carriage return", "abc\rdef", false},
		{"space", "abc def", false},
		{"tab", "abc\tdef", false},
		{"quote", `abc"def`, false},
		{"equals sign", "a=b", false},
		{"NUL", "abc\x00", false},
		{"escape sequence", "\x1b[31mred", false},
		{"html", "<script>", false},
		{"slash", "a/b", false},
		{"non-ASCII letter", "café", false},
		{"unicode line separator", "a\u2028b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := requestid.Valid(tt.id); got != tt.want {
				t.Errorf("Valid(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	format := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := requestid.New()
		if !format.MatchString(id) {
			t.Fatalf("New() = %q, want 32 lower-case hex characters", id)
		}
		if !requestid.Valid(id) {
			t.Fatalf("New() = %q is not Valid", id)
		}
		if seen[id] {
			t.Fatalf("New() returned %q twice", id)
		}
		seen[id] = true
	}
}

func TestContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no id", context.Background(), ""},
		{"with id", requestid.With(context.Background(), "rid-1"), "rid-1"},
		{"inner id wins", requestid.With(requestid.With(context.Background(), "outer"), "inner"), "inner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := requestid.From(tt.ctx); got != tt.want {
				t.Errorf("From() = %q, want %q", got, tt.want)
			}
		})
	}
}
