package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/loadgen"
)

// TestLoad runs a short load test of every operation against the system and
// checks that the report adds up.
func TestLoad(t *testing.T) {
	s := startSystem(t, "--rate-per-client", "-1", "--rate-per-user", "-1", "--auth-per-minute", "-1")
	env := map[string]string{"MICROSHOP_ADMIN_EMAIL": adminEmail, "MICROSHOP_ADMIN_PASSWORD": s.AdminPassword}
	var out bytes.Buffer
	err := run(context.Background(), []string{"load", "--url", s.URL, "--rate", "50", "--duration", "1s", "--warmup", "0s",
		"--customers", "4", "--mix", "browse=30,view=30,login=5,order=20,read=15", "--json"},
		func(k string) string { return env[k] }, &out, io.Discard)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if rep.Total.Count != 50 {
		t.Errorf("total %d requests, want 50 (1 s at 50/s)", rep.Total.Count)
	}
	var sum int64
	for _, o := range rep.Ops {
		sum += o.Count
		var errs int64
		for _, n := range o.Errors {
			errs += n
		}
		if o.OK+errs != o.Count {
			t.Errorf("%s: ok %d + errors %d != count %d", o.Name, o.OK, errs, o.Count)
		}
		if errs != 0 {
			t.Errorf("%s: errors %v", o.Name, o.Errors)
		}
	}
	if sum != rep.Total.Count {
		t.Errorf("operations sum to %d, total is %d", sum, rep.Total.Count)
	}
	if rep.Total.OK != rep.Total.Count || rep.ErrorRate != 0 {
		t.Errorf("total %+v, error rate %v", rep.Total, rep.ErrorRate)
	}
	extra := map[string]loadgen.OpReport{}
	for _, x := range rep.Extra {
		extra[x.Name] = x
	}
	if x := extra[checkoutStat]; x.Count == 0 || x.OK != x.Count {
		t.Errorf("checkouts not all confirmed: %+v", x)
	}
	// Followed with the event stream: one request per order, none failed.
	if f, x := extra[followStat], extra[checkoutStat]; f.Count != x.Count || f.OK != f.Count {
		t.Errorf("follow requests %+v for %d checkouts, want one each, all ok", f, x.Count)
	}
}

// TestLastStatus reads the status an order's event stream reaches.
func TestLastStatus(t *testing.T) {
	for _, tc := range []struct {
		name, stream, want string
		err                bool
	}{
		{"confirmed after pending", "event: status\nid: pending\ndata: {\"status\":\"pending\"}\n\nevent: status\nid: confirmed\ndata: {\"status\":\"confirmed\"}\n\n", "confirmed", false},
		{"decided at once", "event: status\ndata: {\"status\":\"rejected\"}\n\n", "rejected", false},
		{"keep-alive then decision", "event: status\ndata: {\"status\":\"pending\"}\n\n: keep-alive\n\nevent: status\ndata: {\"status\":\"expired\"}\n\n", "expired", false},
		{"ends while pending", "event: status\ndata: {\"status\":\"pending\"}\n\n", "pending", false},
		{"other events ignored", "event: other\ndata: {\"status\":\"confirmed\"}\n\n", "pending", false},
		{"bad data", "event: status\ndata: {\n\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lastStatus(strings.NewReader(tc.stream))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("lastStatus = %q, %v; want %q, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestRateSearch drives the --find-max planner against systems whose knee is
// known: every rate up to the knee holds, every rate above fails.
func TestRateSearch(t *testing.T) {
	tests := []struct {
		name        string
		start, knee float64
		refine      int
		wantBest    float64
		wantRates   []float64
	}{
		{"no refinement: ×1.5 until a failure", 100, 400, 0, 338, []float64{100, 150, 225, 338, 506}},
		{"bisects the last bracket", 100, 400, 3, 380, []float64{100, 150, 225, 338, 506, 422, 380, 401}},
		{"knee found exactly", 1000, 1200, 2, 1125, []float64{1000, 1500, 1250, 1125}},
		{"nothing holds", 500, 100, 3, 0, []float64{500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := rateSearch{rate: tc.start, refine: tc.refine}
			var rates []float64
			for rate, ok := s.rate, true; ok; {
				rates = append(rates, math.Round(rate))
				if len(rates) > 50 {
					t.Fatal("the search does not end")
				}
				rate, ok = s.next(rate <= tc.knee)
			}
			if math.Round(s.best) != tc.wantBest {
				t.Errorf("best = %v, want %v", s.best, tc.wantBest)
			}
			if !slices.Equal(rates, tc.wantRates) {
				t.Errorf("rates = %v, want %v", rates, tc.wantRates)
			}
		})
	}
}
