package loadgen

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Stats are the results of one kind of request: counts by outcome and a
// latency histogram in microseconds (1 µs to 1 h, 3 significant figures).
type Stats struct {
	Count  int64
	OK     int64
	Late   int64
	Errors map[string]int64
	hist   *hdrhistogram.Histogram
}

// NewStats returns empty stats.
func NewStats() *Stats {
	return &Stats{Errors: map[string]int64{}, hist: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
}

// Add records one result; class "" is a success.
func (s *Stats) Add(latency time.Duration, class string, late bool) {
	s.Count++
	if class == "" {
		s.OK++
	} else {
		s.Errors[class]++
	}
	if late {
		s.Late++
	}
	us := max(latency.Microseconds(), 1)
	if err := s.hist.RecordValue(us); err != nil {
		s.hist.RecordValue(s.hist.HighestTrackableValue())
	}
}

// Result is what a run measured (warm-up excluded).
type Result struct {
	Rate     float64
	Duration time.Duration
	Ops      map[string]*Stats
	Extra    map[string]*Stats
	order    []string
}

// Report is a Result summarised, as printed and as written in JSON.
type Report struct {
	TargetRate float64    `json:"target_rate"`
	DurationS  float64    `json:"duration_s"`
	Total      OpReport   `json:"total"`
	Ops        []OpReport `json:"ops"`
	Extra      []OpReport `json:"extra,omitempty"`
	ErrorRate  float64    `json:"error_rate"`
}

// OpReport is one line of the report. Latencies are in milliseconds.
type OpReport struct {
	Name       string           `json:"name"`
	Count      int64            `json:"count"`
	OK         int64            `json:"ok"`
	Errors     map[string]int64 `json:"errors"`
	Late       int64            `json:"late"`
	Throughput float64          `json:"throughput"` // per second
	P50        float64          `json:"p50_ms"`
	P90        float64          `json:"p90_ms"`
	P99        float64          `json:"p99_ms"`
	P999       float64          `json:"p999_ms"`
	Max        float64          `json:"max_ms"`
}

func ms(us int64) float64 { return float64(us) / 1000 }

func (s *Stats) report(name string, d time.Duration) OpReport {
	r := OpReport{Name: name, Count: s.Count, OK: s.OK, Late: s.Late, Errors: map[string]int64{}}
	for k, v := range s.Errors {
		r.Errors[k] = v
	}
	if d > 0 {
		r.Throughput = float64(s.OK) / d.Seconds()
	}
	if s.Count > 0 {
		r.P50 = ms(s.hist.ValueAtQuantile(50))
		r.P90 = ms(s.hist.ValueAtQuantile(90))
		r.P99 = ms(s.hist.ValueAtQuantile(99))
		r.P999 = ms(s.hist.ValueAtQuantile(99.9))
		r.Max = ms(s.hist.Max())
	}
	return r
}

// Report summarises the result.
func (r *Result) Report() Report {
	rep := Report{TargetRate: r.Rate, DurationS: r.Duration.Seconds()}
	total := NewStats()
	order := r.order
	if order == nil {
		for k := range r.Ops {
			order = append(order, k)
		}
		slices.Sort(order)
	}
	for _, name := range order {
		s := r.Ops[name]
		if s == nil {
			continue
		}
		rep.Ops = append(rep.Ops, s.report(name, r.Duration))
		total.Count += s.Count
		total.OK += s.OK
		total.Late += s.Late
		for k, v := range s.Errors {
			total.Errors[k] += v
		}
		total.hist.Merge(s.hist)
	}
	rep.Total = total.report("total", r.Duration)
	if total.Count > 0 {
		rep.ErrorRate = float64(total.Count-total.OK) / float64(total.Count)
	}
	var extra []string
	for k := range r.Extra {
		extra = append(extra, k)
	}
	slices.Sort(extra)
	for _, k := range extra {
		rep.Extra = append(rep.Extra, r.Extra[k].report(k, r.Duration))
	}
	return rep
}

// The extra results that following checkouts records (see
// Engine.RecordExtra).
const (
	// CheckoutStat is each order's time from its placement (the 202) to the
	// saga's decision as the client saw it; OK when the order was confirmed.
	CheckoutStat = "checkout placed→confirmed"
	// FollowStat is each request made to follow an order (a poll, or an
	// event stream).
	FollowStat = "checkout follow requests"
)

// ExtraOp returns the extra result called name, and whether there is one.
func (rep Report) ExtraOp(name string) (OpReport, bool) {
	for _, o := range rep.Extra {
		if o.Name == name {
			return o, true
		}
	}
	return OpReport{}, false
}

// Write prints the report as a table.
func (rep Report) Write(w io.Writer) {
	fmt.Fprintf(w, "target %.0f req/s for %.1fs; error rate %.3f%%\n", rep.TargetRate, rep.DurationS, 100*rep.ErrorRate)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tok\t4xx\t5xx\ttimeout\tnetwork\tother\tlate\tok/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	line := func(o OpReport) {
		other := o.Count - o.OK - o.Errors[Class4xx] - o.Errors[Class5xx] - o.Errors[ClassTimeout] - o.Errors[ClassNetwork]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", o.Name, o.Count, o.OK,
			o.Errors[Class4xx], o.Errors[Class5xx], o.Errors[ClassTimeout], o.Errors[ClassNetwork], other, o.Late,
			o.Throughput, o.P50, o.P90, o.P99, o.P999, o.Max)
	}
	for _, o := range rep.Ops {
		line(o)
	}
	line(rep.Total)
	for _, o := range rep.Extra {
		line(o)
	}
	tw.Flush()
}
