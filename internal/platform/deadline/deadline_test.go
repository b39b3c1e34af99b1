package deadline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/deadline"
)

func request(t *testing.T, header ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, v := range header {
		r.Header.Add(deadline.Header, v)
	}
	return r
}

func TestBudget(t *testing.T) {
	const max = 10 * time.Second
	tests := []struct {
		name   string
		header []string
		want   time.Duration
	}{
		{"missing", nil, max},
		{"empty", []string{""}, max},
		{"garbage", []string{"soon"}, max},
		{"fraction", []string{"1.5"}, max},
		{"hex", []string{"0x10"}, max},
		{"with unit", []string{"500ms"}, max},
		{"leading space", []string{" 500"}, max},
		{"zero", []string{"0"}, max},
		{"negative", []string{"-5"}, max},
		{"larger than max", []string{"60000"}, max},
		{"equal to max", []string{"10000"}, max},
		{"overflows a Duration", []string{"9223372036854775807"}, max},
		{"overflows a Duration to a negative one", []string{"9223372036855"}, max},
		{"overflows int64", []string{"99999999999999999999"}, max},
		{"smaller than max", []string{"250"}, 250 * time.Millisecond},
		{"one millisecond", []string{"1"}, time.Millisecond},
		{"just under max", []string{"9999"}, 9999 * time.Millisecond},
		{"explicit plus sign", []string{"+250"}, 250 * time.Millisecond},
		{"first of several values wins", []string{"100", "5"}, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deadline.Budget(request(t, tt.header...), max); got != tt.want {
				t.Errorf("Budget(%q, %v) = %v, want %v", tt.header, max, got, tt.want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // 0: no deadline
		wantMin int64
		wantMax int64
	}{
		{"no deadline sets nothing", 0, 0, 0},
		{"remaining budget in milliseconds", 5 * time.Second, 4000, 5000},
		{"passed deadline still sends 1ms", -time.Second, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			h := http.Header{}
			deadline.Set(ctx, h)
			v := h.Get(deadline.Header)
			if tt.timeout == 0 {
				if v != "" {
					t.Errorf("header = %q, want none", v)
				}
				return
			}
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < tt.wantMin || ms > tt.wantMax {
				t.Errorf("header = %q, want a number in [%d, %d]", v, tt.wantMin, tt.wantMax)
			}
		})
	}
}

func TestSetThenBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r := request(t)
	deadline.Set(ctx, r.Header)
	got := deadline.Budget(r, 10*time.Second)
	if got <= 2*time.Second || got > 3*time.Second {
		t.Errorf("Budget after Set(3s) = %v, want in (2s, 3s]", got)
	}
}

func FuzzBudget(f *testing.F) {
	for _, s := range []string{"", "0", "1", "-1", "250", "10000", "60000", "9223372036854775807",
		"9223372036855", "-9223372036854775808", "1e3", "0x10", " 5", "+5", "99999999999999999999"} {
		f.Add(s, int64(10*time.Second))
	}
	f.Add("5", int64(0))
	f.Add("5", int64(1500*time.Microsecond))
	f.Fuzz(func(t *testing.T, v string, maxNanos int64) {
		max := time.Duration(maxNanos)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(deadline.Header, v)
		got := deadline.Budget(r, max)
		if got == max {
			return
		}
		if got <= 0 || got > max {
			t.Fatalf("Budget(%q, %v) = %v: want max or a positive budget below it", v, max, got)
		}
		if got%time.Millisecond != 0 {
			t.Fatalf("Budget(%q, %v) = %v: not whole milliseconds", v, max, got)
		}
	})
}
