package users_test

import (
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/users"
)

func TestValidEmail(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"ada@example.com", "ada@example.com", false},
		{"  Ada@Example.COM ", "ada@example.com", false},
		{"a.b+tag@sub.example.org", "a.b+tag@sub.example.org", false},
		{"", "", true},
		{"ada", "", true},
		{"ada@localhost", "", true},
		{"Ada <ada@example.com>", "", true},
		{"ada@example.com\n", "ada@example.com", false},
		{"ada@exa\nmple.com", "", true},
		{strings.Repeat("a", 250) + "@example.com", "", true},
	}
	for _, tt := range tests {
		got, err := users.ValidEmail(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ValidEmail(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && fault.KindOf(err) != fault.Invalid {
			t.Errorf("ValidEmail(%q) error kind = %v, want invalid", tt.in, fault.KindOf(err))
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"Ada", "Ada", false},
		{"  Grace Hopper  ", "Grace Hopper", false},
		{"Zoë Ünlü 李", "Zoë Ünlü 李", false},
		{strings.Repeat("é", 100), strings.Repeat("é", 100), false},
		{strings.Repeat("é", 101), "", true},
		{"", "", true},
		{"   ", "", true},
		{"bell\a", "", true},
		{"new\nline", "", true},
		{"\xff\xfe", "", true},
	}
	for _, tt := range tests {
		got, err := users.ValidName(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ValidName(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0190f000-0000-7000-8000-000000000000", true},
		{"0190F000-0000-7000-8000-000000000000", true},
		{"{0190f000-0000-7000-8000-000000000000}", false},
		{"urn:uuid:0190f000-0000-7000-8000-000000000000", false},
		{"0190f0000000700080000000000000000", false},
		{"", false},
		{"1", false},
	}
	for _, tt := range tests {
		if got := users.ValidID(tt.in); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
