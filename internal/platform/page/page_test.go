package page_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/page"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		key  string
	}{
		{"uuid", "0190f4c2-7c4e-7a53-9d1f-2c3b4a5d6e7f"},
		{"one byte", "a"},
		{"url-unsafe characters", "a/b+c=d?e&f"},
		{"unicode", "ключ-🔑"},
		{"longest key", strings.Repeat("k", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cursor := page.Encode(tt.key)
			if strings.ContainsAny(cursor, "+/=?&%") {
				t.Errorf("Encode(%q) = %q, not URL-safe", tt.key, cursor)
			}
			got, err := page.Decode(cursor)
			if err != nil {
				t.Fatalf("Decode(Encode(%q)) error: %v", tt.key, err)
			}
			if got != tt.key {
				t.Errorf("Decode(Encode(%q)) = %q", tt.key, got)
			}
		})
	}
}

func TestEmptyKeyAndCursor(t *testing.T) {
	if got := page.Encode(""); got != "" {
		t.Errorf("Encode(\"\") = %q, want \"\"", got)
	}
	got, err := page.Decode("")
	if err != nil || got != "" {
		t.Errorf("Decode(\"\") = %q, %v; want \"\", nil", got, err)
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []struct {
		name   string
		cursor string
	}{
		{"not base64", "!!!"},
		{"standard alphabet", "a+b/"},
		{"padded", page.Encode("ab") + "=="},
		{"impossible length", "a"},
		{"whitespace", " YQ"},
		{"too long", page.Encode(strings.Repeat("k", 201))},
		{"NUL byte", page.Encode("a\x00b")},
		{"invalid UTF-8", page.Encode("\xff\xfe")},
		{"query injection text", "' OR 1=1 --"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := page.Decode(tt.cursor)
			if err == nil {
				t.Fatalf("Decode(%q) = %q, nil; want an error", tt.cursor, key)
			}
			if got := fault.KindOf(err); got != fault.Invalid {
				t.Errorf("KindOf(Decode(%q)) = %v, want %v", tt.cursor, got, fault.Invalid)
			}
			want := []fault.FieldError{{Location: "query.cursor", Message: "invalid cursor"}}
			fe, _ := err.(*fault.Error)
			if fe == nil {
				t.Fatalf("Decode error is %T, want *fault.Error", err)
			}
			if diff := cmp.Diff(want, fe.Fields); diff != "" {
				t.Errorf("fields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	tests := []struct {
		n, want int
	}{
		{-5, page.DefaultLimit},
		{0, page.DefaultLimit},
		{1, 1},
		{20, 20},
		{page.MaxLimit, page.MaxLimit},
		{page.MaxLimit + 1, page.MaxLimit},
		{1 << 40, page.MaxLimit},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := page.Limit(tt.n); got != tt.want {
				t.Errorf("Limit(%d) = %d, want %d", tt.n, got, tt.want)
			}
		})
	}
}

type row struct{ ID string }

func rows(ids ...string) []row {
	out := make([]row, 0, len(ids))
	for _, id := range ids {
		out = append(out, row{id})
	}
	return out
}

func TestOf(t *testing.T) {
	tests := []struct {
		name  string
		rows  []row
		limit int
		want  page.Page[row]
	}{
		{"nil rows give an empty, non-nil page", nil, 2, page.Page[row]{Items: []row{}}},
		{"fewer rows than the limit", rows("a"), 2, page.Page[row]{Items: rows("a")}},
		{"exactly the limit: last page", rows("a", "b"), 2, page.Page[row]{Items: rows("a", "b")}},
		{"one extra row: next cursor at the last shown row", rows("a", "b", "c"), 2,
			page.Page[row]{Items: rows("a", "b"), NextCursor: page.Encode("b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := page.Of(tt.rows, tt.limit, func(r row) string { return r.ID })
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Of mismatch (-want +got):\n%s", diff)
			}
			if got.Items == nil {
				t.Errorf("Items is nil; it must encode as [] in JSON")
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "YQ", page.Encode("0190f4c2-7c4e-7a53-9d1f-2c3b4a5d6e7f"), "!!!", "a", "AA", "_-_-", "YQ==",
		page.Encode(strings.Repeat("x", 201)), page.Encode("\xff")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		key, err := page.Decode(cursor)
		if err != nil {
			if k := fault.KindOf(err); k != fault.Invalid {
				t.Fatalf("Decode(%q) error kind = %v, want invalid", cursor, k)
			}
			return
		}
		if cursor == "" {
			if key != "" {
				t.Fatalf("Decode(\"\") = %q", key)
			}
			return
		}
		if key == "" || len(key) > 200 || !utf8.ValidString(key) || strings.Contains(key, "\x00") {
			t.Fatalf("Decode(%q) = %q: not a valid key", cursor, key)
		}
		again, err := page.Decode(page.Encode(key))
		if err != nil || again != key {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", key, again, err)
		}
	})
}
