// Package page implements keyset (cursor) pagination shared by the list endpoints.
// A cursor is the opaque, URL-safe encoding of the last key a page returned; the
// next page starts strictly after it, so pages stay stable while rows are added.
package page

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/microshop/microshop/internal/platform/fault"
)

// Limits on page sizes.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Page is one page of a list.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty" doc:"Pass as cursor to get the next page; absent on the last page."`
}

// Encode returns the cursor for key.
func Encode(key string) string {
	if key == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}

// Decode returns the key in cursor ("" for the first page). A cursor that was
// not made by Encode is an Invalid error. Keys are text: a cursor that decodes to
// invalid UTF-8 or to a NUL byte is refused here, since PostgreSQL would reject
// it as a query argument and the client would get a 500 instead of a 400.
func Decode(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) == 0 || len(b) > 200 || !utf8.Valid(b) || strings.IndexByte(string(b), 0) >= 0 {
		return "", fault.Invalidf("query.cursor", "invalid cursor")
	}
	return string(b), nil
}

// Limit returns n bounded to [1, MaxLimit], with 0 meaning DefaultLimit.
func Limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// Of builds a page from up to limit+1 rows fetched by the store: the extra row,
// if present, only tells that there is a next page.
func Of[T any](rows []T, limit int, key func(T) string) Page[T] {
	if rows == nil {
		rows = []T{}
	}
	if len(rows) <= limit {
		return Page[T]{Items: rows}
	}
	rows = rows[:limit]
	return Page[T]{Items: rows, NextCursor: Encode(key(rows[len(rows)-1]))}
}
