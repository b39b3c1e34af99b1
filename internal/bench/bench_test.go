package bench

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/loadgen"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		ticks int64
		err   bool
	}{
		{"plain", "4242 (microshop) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 37 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615\n", 187, false},
		{"name with spaces and parentheses", "77 (my (odd) proc ) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1\n", 10, false},
		{"name ending in a parenthesis", "8 (a) b)) S 1 8 8 0 -1 0 0 0 0 0 1000 2000 0 0 20 0 1 0 1 1 1", 3000, false},
		{"no name", "8 S 1 8 8", 0, true},
		{"too short", "8 (x) S 1 8 8 0", 0, true},
		{"not a number", "8 (x) S 1 8 8 0 -1 0 0 0 0 0 abc 3 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(tt.text)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if got != tt.ticks {
				t.Errorf("ticks %d, want %d", got, tt.ticks)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	status := "Name:\tmicroshop (x)\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1280000 kB\nVmRSS:\t   23456 kB\nRssAnon:\t 10000 kB\nThreads:\t9\n"
	rollup := "55800c105000-7fffc54df000 ---p 00000000 00:00 0                          [rollup]\n" +
		"Rss:               19464 kB\nPss:                5714 kB\nPss_Dirty:          3004 kB\nPss_Anon:           3004 kB\n" +
		"Shared_Clean:      16332 kB\nPrivate_Dirty:      3004 kB\n"
	rss, pss := ParseRSS, ParsePSS
	tests := []struct {
		name  string
		parse func(string) (int64, error)
		text  string
		want  int64
		err   bool
	}{
		{"RSS of a process", rss, status, 23456 * 1024, false},
		{"RSS of a kernel thread", rss, "Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n", 0, true},
		{"RSS bad unit", rss, "VmRSS:\t12 MB\n", 0, true},
		{"RSS bad number", rss, "VmRSS:\tx kB\n", 0, true},
		{"PSS of a process", pss, rollup, 5714 * 1024, false},
		{"PSS: Pss_Dirty alone is not Pss", pss, "Rss: 10 kB\nPss_Dirty: 4 kB\n", 0, true},
		{"PSS of a kernel thread (empty)", pss, "", 0, true},
		{"PSS bad unit", pss, "Pss:\t12 MB\n", 0, true},
		{"PSS bad number", pss, "Pss:\tx kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.text)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %d bytes, want %d", got, tt.want)
			}
		})
	}
}

func TestCPUSecondsPer1000(t *testing.T) {
	tests := []struct {
		before, after int64
		hz            int
		requests      int64
		want          float64
	}{
		{1000, 1500, 100, 5000, 1}, // 5 s over 5,000 requests
		{0, 250, 100, 10000, 0.25}, // 2.5 s over 10,000
		{100, 100, 100, 1000, 0},   // nothing spent
		{0, 1000, 1000, 500, 2},    // another tick rate
		{0, 100, 100, 0, 0},        // no requests
	}
	for _, tt := range tests {
		if got := CPUSecondsPer1000(tt.before, tt.after, tt.hz, tt.requests); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("CPUSecondsPer1000(%d, %d, %d, %d) = %v, want %v", tt.before, tt.after, tt.hz, tt.requests, got, tt.want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	meta := Meta{Date: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), Cores: 2, Platform: "linux/amd64",
		Command: "microshop bench --rate 500", Rate: 500, Duration: 10 * time.Second, Warmup: 2 * time.Second, Mix: "read=100"}
	rep := loadgen.Report{Total: loadgen.OpReport{Count: 5000, OK: 4995, Throughput: 499.5, P50: 2.5, P99: 7.25, P999: 9}, ErrorRate: 0.001}
	modes := []Mode{
		{Name: "services", Ready: 1500 * time.Millisecond, IdleOK: true, Load: rep, CPUTicks: 1000, CPUOK: true, GenTicks: 250, GenOK: true,
			Idle: Usage{RSS: 150 << 20, PSS: 60 << 20, Procs: 2, Each: []Proc{
				{Name: "run", PID: 10, RSS: 50 << 20, PSS: 20 << 20}, {Name: "users", PID: 11, RSS: 100 << 20, PSS: 40 << 20}}}},
		{Name: "monolith", Ready: 250 * time.Millisecond, Load: rep},
	}
	var b strings.Builder
	if err := WriteMarkdown(&b, meta, modes); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"2026-11-24 02:00 UTC, 2 cores",
		"```sh\nmicroshop bench --rate 500\n```",
		"| | services | monolith |\n| --- | ---: | ---: |\n",
		"| ready time (start → ready line) | 1.50 s | 0.25 s |\n",
		"| processes | 2 | n/a |\n",
		"| idle RSS, all processes (sum of VmRSS, shared pages once per process) | 150.0 MiB | n/a |\n",
		"| idle PSS, all processes (sum of Pss, shared pages split) | 60.0 MiB | n/a |\n",
		"Idle memory per process, services:\n\n| process | pid | RSS | PSS |\n| --- | ---: | ---: | ---: |\n" +
			"| run | 10 | 50.0 MiB | 20.0 MiB |\n| users | 11 | 100.0 MiB | 40.0 MiB |\n| all | | 150.0 MiB | 60.0 MiB |\n",
		"| requests (measured) | 5000 | 5000 |\n",
		"| errors | 5 (0.100 %) | 5 (0.100 %) |\n",
		"| p99 | 7.25 ms | 7.25 ms |\n",
		"| CPU s per 1,000 requests | 2.000 | n/a |\n", // 10 s of CPU over 5,000 requests
		"| load generator CPU s per 1,000 requests | 0.500 | n/a |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "per process, monolith") {
		t.Errorf("per-process table for a mode without idle figures:\n%s", out)
	}
	if strings.Contains(out, "highest rate held") {
		t.Errorf("find-max row without --find-max:\n%s", out)
	}
	if strings.Contains(out, "confirmed") || strings.Contains(out, "follow") {
		t.Errorf("checkout rows for a mix without orders:\n%s", out)
	}
	meta.FindMax, meta.P99Bound = true, 25*time.Millisecond
	modes[0].MaxRate, modes[1].MaxRate = 400, 1000
	b.Reset()
	WriteMarkdown(&b, meta, modes)
	if want := "| highest rate held (p99 < 25ms, errors < 0.1 %) | 400 req/s | 1000 req/s |\n"; !strings.Contains(b.String(), want) {
		t.Errorf("missing %q in\n%s", want, b.String())
	}
}

// With orders in the mix, the table also shows the checkouts that the load
// followed through the saga.
func TestWriteMarkdownCheckout(t *testing.T) {
	meta := Meta{Date: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), Cores: 2, Platform: "linux/amd64",
		Command: "microshop bench --mix order=100 --rate 100", Rate: 100, Duration: 10 * time.Second, Mix: "order=100"}
	placed := loadgen.OpReport{Name: "order", Count: 1000, OK: 1000, Throughput: 100, P50: 3.5, P99: 9.25}
	report := func(confirmed, decided, follows, failedFollows int64, p50, p99 float64) loadgen.Report {
		return loadgen.Report{Total: placed, Ops: []loadgen.OpReport{placed}, Extra: []loadgen.OpReport{
			{Name: loadgen.FollowStat, Count: follows, OK: follows - failedFollows, Throughput: float64(follows-failedFollows) / 10},
			{Name: loadgen.CheckoutStat, Count: decided, OK: confirmed, Throughput: float64(confirmed) / 10, P50: p50, P99: p99},
		}}
	}
	modes := []Mode{
		{Name: "services", Load: report(995, 1000, 1002, 2, 4.5, 120)},
		{Name: "monolith", Load: report(1000, 1000, 1000, 0, 3.25, 8.5)},
		{Name: "older", Load: loadgen.Report{Total: placed}}, // a report without the extra results
	}
	out := markdown(t, meta, modes)
	for _, want := range []string{
		"Each order is followed (its event stream",
		"| requests (measured) | 1000 | 1000 | 1000 |\n",
		"| p99 | 9.25 ms | 9.25 ms | 9.25 ms |\n",
		"| confirmed orders/s | 99.5 | 100.0 | n/a |\n",
		"| orders followed to a decision (not confirmed) | 1000 (5) | 1000 (0) | n/a |\n",
		"| placed → confirmed p50 | 4.50 ms | 3.25 ms | n/a |\n",
		"| placed → confirmed p99 | 120.00 ms | 8.50 ms | n/a |\n",
		"| follow requests (failed) | 1002 (2) | 1000 (0) | n/a |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func markdown(t *testing.T, meta Meta, modes []Mode) string {
	t.Helper()
	var b strings.Builder
	if err := WriteMarkdown(&b, meta, modes); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
