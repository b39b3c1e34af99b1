package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when the engine sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

func TestIntendedTimes(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		rate     float64
		duration time.Duration
		warmup   time.Duration
		interval time.Duration
		sent     int
		measured int64
	}{
		{rate: 10, duration: time.Second, interval: 100 * time.Millisecond, sent: 10, measured: 10},
		{rate: 1000, duration: time.Second, warmup: 500 * time.Millisecond, interval: time.Millisecond, sent: 1500, measured: 1000},
		{rate: 3, duration: 2 * time.Second, interval: time.Second / 3, sent: 6, measured: 6},
		{rate: 40, duration: 100 * time.Millisecond, warmup: 50 * time.Millisecond, interval: 25 * time.Millisecond, sent: 6, measured: 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rate), func(t *testing.T) {
			var mu sync.Mutex
			var samples []Sample
			e, err := New(Config{
				Rate: tt.rate, Duration: tt.duration, Warmup: tt.warmup,
				Clock: &fakeClock{now: start},
				Ops:   []Op{{Name: "a", Weight: 1, Do: func(context.Context) Outcome { return Outcome{Status: 200} }}},
				OnSample: func(s Sample) {
					mu.Lock()
					samples = append(samples, s)
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			res := e.Run(context.Background())
			if len(samples) != tt.sent {
				t.Fatalf("%d requests sent, want %d", len(samples), tt.sent)
			}
			slices.SortFunc(samples, func(a, b Sample) int { return int(a.Index - b.Index) })
			for i, s := range samples {
				// exactly i/rate after the start, within the rounding of one nanosecond
				want := start.Add(time.Duration(float64(i) * float64(time.Second) / tt.rate))
				if !s.Intended.Equal(want) {
					t.Errorf("request %d intended at %v, want %v", i, s.Intended.Sub(start), want.Sub(start))
				}
				if i > 0 {
					if d := s.Intended.Sub(samples[i-1].Intended) - tt.interval; d < -time.Nanosecond || d > time.Nanosecond {
						t.Errorf("requests %d and %d are %v apart, want %v", i-1, i, s.Intended.Sub(samples[i-1].Intended), tt.interval)
					}
				}
			}
			if got := res.Ops["a"].Count; got != tt.measured {
				t.Errorf("%d requests measured, want %d (warm-up excluded)", got, tt.measured)
			}
		})
	}
}

// TestLatencyFromIntendedTime runs against a server slower than the arrival
// interval with one request allowed in flight: each request waits for the one
// before, and its latency must include that wait, not only its own service time.
func TestLatencyFromIntendedTime(t *testing.T) {
	const sleep = 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(sleep)
	}))
	defer srv.Close()
	tests := []struct {
		name        string
		rate        float64
		concurrency int
	}{
		{"one in flight", 100, 1},
		{"two in flight", 200, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var samples []Sample
			e, err := New(Config{
				Rate: tt.rate, Duration: 100 * time.Millisecond, Concurrency: tt.concurrency,
				Ops: []Op{{Name: "slow", Weight: 1, Do: func(ctx context.Context) Outcome {
					resp, err := srv.Client().Get(srv.URL)
					if err != nil {
						return Outcome{Err: err}
					}
					resp.Body.Close()
					return Outcome{Status: resp.StatusCode}
				}}},
				OnSample: func(s Sample) {
					mu.Lock()
					samples = append(samples, s)
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			res := e.Run(context.Background())
			slices.SortFunc(samples, func(a, b Sample) int { return int(a.Index - b.Index) })
			interval := time.Duration(float64(time.Second) / tt.rate)
			for _, s := range samples {
				// With c in flight, request i cannot finish before (i/c+1) service
				// times after the start; it was meant to go at i intervals.
				i := s.Index
				floor := time.Duration(i/int64(tt.concurrency)+1)*sleep - time.Duration(i)*interval
				if floor < sleep {
					floor = sleep
				}
				if s.Latency < floor {
					t.Errorf("request %d: latency %v, want at least %v", i, s.Latency, floor)
				}
				if s.Class != "" {
					t.Errorf("request %d: class %q", i, s.Class)
				}
			}
			if res.Ops["slow"].Late == 0 {
				t.Errorf("no request counted late under a saturated cap")
			}
			rep := res.Report()
			if lo := ms(sleep.Microseconds()); rep.Ops[0].P50 < lo {
				t.Errorf("p50 %v ms below the service time %v ms", rep.Ops[0].P50, lo)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestClassify(t *testing.T) {
	tests := []struct {
		out  Outcome
		want string
	}{
		{Outcome{Status: 200}, ""},
		{Outcome{Status: 202}, ""},
		{Outcome{Status: 304}, ""},
		{Outcome{Status: 400}, Class4xx},
		{Outcome{Status: 404}, Class4xx},
		{Outcome{Status: 429}, Class4xx},
		{Outcome{Status: 500}, Class5xx},
		{Outcome{Status: 503}, Class5xx},
		{Outcome{Err: context.DeadlineExceeded}, ClassTimeout},
		{Outcome{Err: fmt.Errorf("get: %w", context.DeadlineExceeded)}, ClassTimeout},
		{Outcome{Err: timeoutErr{}}, ClassTimeout},
		{Outcome{Err: &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}}, ClassTimeout},
		{Outcome{Err: errors.New("connection refused")}, ClassNetwork},
		{Outcome{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, ClassNetwork},
		{Outcome{}, ClassNetwork},
	}
	for _, tt := range tests {
		if got := Classify(tt.out); got != tt.want {
			t.Errorf("Classify(%+v) = %q, want %q", tt.out, got, tt.want)
		}
	}
}

func TestReportPercentiles(t *testing.T) {
	// 1..1000 ms once each, plus three errors at 1 ms and one at 2 s: 1003
	// values, so p90 is the 903rd (901 ms) and p99 the 993rd (991 ms), within
	// the histogram's 3 significant figures (0.1%).
	s := NewStats()
	for i := 1; i <= 1000; i++ {
		s.Add(time.Duration(i)*time.Millisecond, "", false)
	}
	s.Add(2*time.Second, Class5xx, false)
	s.Add(time.Millisecond, Class4xx, true)
	s.Add(time.Millisecond, ClassTimeout, false)
	res := &Result{Rate: 100, Duration: 10 * time.Second, Ops: map[string]*Stats{"x": s}}
	rep := res.Report()
	o := rep.Ops[0]
	near := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.001 }
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p50", o.P50, 500}, {"p90", o.P90, 901}, {"p99", o.P99, 991}, {"p99.9", o.P999, 1000}, {"max", o.Max, 2000},
		{"throughput", o.Throughput, 100},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if o.Count != 1003 || o.OK != 1000 || o.Late != 1 {
		t.Errorf("count %d ok %d late %d, want 1003 1000 1", o.Count, o.OK, o.Late)
	}
	wantErr := map[string]int64{Class4xx: 1, Class5xx: 1, ClassTimeout: 1}
	if !reflect.DeepEqual(o.Errors, wantErr) {
		t.Errorf("errors %v, want %v", o.Errors, wantErr)
	}
	if !near(rep.ErrorRate, 3.0/1003) {
		t.Errorf("error rate %v", rep.ErrorRate)
	}
	if !reflect.DeepEqual(rep.Total.Errors, wantErr) || rep.Total.Count != 1003 {
		t.Errorf("total %+v", rep.Total)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	res := &Result{Rate: 500, Duration: 3 * time.Second, Ops: map[string]*Stats{}, Extra: map[string]*Stats{}}
	for _, name := range []string{"browse", "order", "read"} {
		s := NewStats()
		for range 300 {
			class := ""
			if r.IntN(50) == 0 {
				class = []string{Class4xx, Class5xx, ClassTimeout, ClassNetwork}[r.IntN(4)]
			}
			s.Add(time.Duration(r.IntN(50_000))*time.Microsecond, class, r.IntN(10) == 0)
		}
		res.Ops[name] = s
	}
	c := NewStats()
	c.Add(3*time.Millisecond, "", false)
	c.Add(4*time.Millisecond, "rejected", false)
	res.Extra["checkout confirmed"] = c
	rep := res.Report()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", back, rep)
	}
	var sum int64
	for _, o := range back.Ops {
		sum += o.Count
	}
	if sum != back.Total.Count || back.Total.Count != 900 {
		t.Errorf("ops sum to %d, total %d, want 900", sum, back.Total.Count)
	}
}
