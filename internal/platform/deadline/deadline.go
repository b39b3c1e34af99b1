// Package deadline carries a request's remaining time budget across HTTP hops.
// A caller sends the time it has left in a header; the callee never works longer
// than that, so a deep call chain cannot outlive the request that started it.
package deadline

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Header carries the remaining budget in whole milliseconds.
const Header = "X-Request-Timeout-Ms"

// Set writes ctx's remaining budget into h. It does nothing if ctx has no deadline.
func Set(ctx context.Context, h http.Header) {
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		if ms < 1 {
			ms = 1
		}
		h.Set(Header, strconv.FormatInt(ms, 10))
	}
}

// Budget returns the budget an inbound request may use: the caller's remaining
// budget from the header when it is valid and smaller than max, otherwise max.
func Budget(r *http.Request, max time.Duration) time.Duration {
	v := r.Header.Get(Header)
	if v == "" {
		return max
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return max
	}
	// Compare in milliseconds first: converting a huge value to a Duration would
	// overflow into a negative or tiny budget.
	if ms > max.Milliseconds() {
		return max
	}
	if d := time.Duration(ms) * time.Millisecond; d < max {
		return d
	}
	return max
}
