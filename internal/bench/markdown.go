package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/microshop/microshop/internal/loadgen"
)

// Mode is what was measured of one way of running the system.
type Mode struct {
	Name  string        // "services" or "monolith"
	Ready time.Duration // process start → ready line
	// Idle is the resident memory (RSS and PSS) of all the system's processes
	// after an idle pause; IdleOK is false when it could not be read.
	Idle   Usage
	IdleOK bool
	Load   loadgen.Report // the measured window
	// CPUTicks is the growth of utime+stime over the measured window;
	// CPUOK is false when it could not be read.
	CPUTicks int64
	CPUOK    bool
	// GenTicks is the load generator's own utime+stime over the same window.
	GenTicks int64
	GenOK    bool
	MaxRate  float64 // highest rate held with --find-max, 0 when not run
}

// CPUPer1000 is the CPU seconds the system spent per 1,000 measured requests.
func (m Mode) CPUPer1000() float64 {
	return CPUSecondsPer1000(0, m.CPUTicks, ClockTicks, m.Load.Total.Count)
}

// Meta describes a bench run.
type Meta struct {
	Date     time.Time
	Cores    int
	Platform string // GOOS/GOARCH
	Command  string
	Rate     float64
	Duration time.Duration
	Warmup   time.Duration
	Idle     time.Duration // pause before idle memory is read
	Mix      string
	FindMax  bool
	P99Bound time.Duration
}

const na = "n/a"

// WriteMarkdown writes the comparison as a Markdown section: the command, the
// machine, and one column per mode.
func WriteMarkdown(w io.Writer, meta Meta, modes []Mode) error {
	var b strings.Builder
	fmt.Fprintf(&b, "microshop bench, %s, %d cores (runtime.NumCPU), %s; load generator in the same process as the bench, on the same cores.\n\n",
		meta.Date.UTC().Format("2006-01-02 15:04 MST"), meta.Cores, meta.Platform)
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", meta.Command)
	fmt.Fprintf(&b, "Mix `%s` at %g req/s for %v after a %v warm-up; idle memory after a %v pause; CPU is utime+stime of every process of the system over the measured %v (clock tick assumed %d Hz).\n\n",
		meta.Mix, meta.Rate, meta.Duration, meta.Warmup, meta.Idle, meta.Duration, ClockTicks)
	b.WriteString("The load generator's own CPU over the window is shown apart: it runs on the same cores and takes " +
		"them from the system.\n\n")
	b.WriteString("Idle memory is given two ways. RSS is the sum of each process's VmRSS: a page that several processes share, " +
		"such as the code of the one executable they all run, counts once for each of them. PSS is the sum of each process's " +
		"Pss (from smaps_rollup), which splits a shared page between the processes that map it, so it adds up to the memory " +
		"the processes hold together. The system runs from a copy of the executable, so that it shares no code pages with the bench.\n\n")
	if checkouts(modes) {
		b.WriteString("Each order is followed (its event stream, GET /api/v1/orders/{id}/events) until the saga decides it: " +
			"placed → confirmed runs from the 202 to the decision the client sees, confirmed orders/s counts confirmations " +
			"over the measured window, and the follow requests are not counted among the requests above.\n\n")
	}
	b.WriteString("| |")
	for _, m := range modes {
		fmt.Fprintf(&b, " %s |", m.Name)
	}
	b.WriteString("\n| --- |")
	for range modes {
		b.WriteString(" ---: |")
	}
	b.WriteString("\n")
	row := func(label string, cell func(Mode) string) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, m := range modes {
			fmt.Fprintf(&b, " %s |", cell(m))
		}
		b.WriteString("\n")
	}
	row("ready time (start → ready line)", func(m Mode) string { return fmt.Sprintf("%.2f s", m.Ready.Seconds()) })
	row("processes", func(m Mode) string {
		if !m.IdleOK {
			return na
		}
		return fmt.Sprint(m.Idle.Procs)
	})
	row("idle RSS, all processes (sum of VmRSS, shared pages once per process)", func(m Mode) string {
		if !m.IdleOK {
			return na
		}
		return mib(m.Idle.RSS)
	})
	row("idle PSS, all processes (sum of Pss, shared pages split)", func(m Mode) string {
		if !m.IdleOK {
			return na
		}
		return mib(m.Idle.PSS)
	})
	row("requests (measured)", func(m Mode) string { return fmt.Sprint(m.Load.Total.Count) })
	row("errors", func(m Mode) string {
		return fmt.Sprintf("%d (%.3f %%)", m.Load.Total.Count-m.Load.Total.OK, 100*m.Load.ErrorRate)
	})
	row("late (over the connection cap)", func(m Mode) string { return fmt.Sprint(m.Load.Total.Late) })
	row("ok/s", func(m Mode) string { return fmt.Sprintf("%.1f", m.Load.Total.Throughput) })
	row("p50", func(m Mode) string { return fmt.Sprintf("%.2f ms", m.Load.Total.P50) })
	row("p99", func(m Mode) string { return fmt.Sprintf("%.2f ms", m.Load.Total.P99) })
	row("p99.9", func(m Mode) string { return fmt.Sprintf("%.2f ms", m.Load.Total.P999) })
	row("CPU s per 1,000 requests", func(m Mode) string {
		if !m.CPUOK || m.Load.Total.Count == 0 {
			return na
		}
		return fmt.Sprintf("%.3f", m.CPUPer1000())
	})
	row("load generator CPU s per 1,000 requests", func(m Mode) string {
		if !m.GenOK || m.Load.Total.Count == 0 {
			return na
		}
		return fmt.Sprintf("%.3f", CPUSecondsPer1000(0, m.GenTicks, ClockTicks, m.Load.Total.Count))
	})
	if checkouts(modes) {
		checkout := func(name string, cell func(loadgen.OpReport) string) func(Mode) string {
			return func(m Mode) string {
				x, ok := m.Load.ExtraOp(name)
				if !ok {
					return na
				}
				return cell(x)
			}
		}
		row("confirmed orders/s", checkout(loadgen.CheckoutStat, func(x loadgen.OpReport) string { return fmt.Sprintf("%.1f", x.Throughput) }))
		row("orders followed to a decision (not confirmed)", checkout(loadgen.CheckoutStat, func(x loadgen.OpReport) string {
			return fmt.Sprintf("%d (%d)", x.Count, x.Count-x.OK)
		}))
		row("placed → confirmed p50", checkout(loadgen.CheckoutStat, func(x loadgen.OpReport) string { return fmt.Sprintf("%.2f ms", x.P50) }))
		row("placed → confirmed p99", checkout(loadgen.CheckoutStat, func(x loadgen.OpReport) string { return fmt.Sprintf("%.2f ms", x.P99) }))
		row("follow requests (failed)", checkout(loadgen.FollowStat, func(x loadgen.OpReport) string {
			return fmt.Sprintf("%d (%d)", x.Count, x.Count-x.OK)
		}))
	}
	if meta.FindMax {
		row(fmt.Sprintf("highest rate held (p99 < %v, errors < 0.1 %%)", meta.P99Bound), func(m Mode) string {
			return fmt.Sprintf("%.0f req/s", m.MaxRate)
		})
	}
	for _, m := range modes {
		if !m.IdleOK || len(m.Idle.Each) < 2 {
			continue
		}
		fmt.Fprintf(&b, "\nIdle memory per process, %s:\n\n| process | pid | RSS | PSS |\n| --- | ---: | ---: | ---: |\n", m.Name)
		for _, p := range m.Idle.Each {
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", p.Name, p.PID, mib(p.RSS), mib(p.PSS))
		}
		fmt.Fprintf(&b, "| all | | %s | %s |\n", mib(m.Idle.RSS), mib(m.Idle.PSS))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// checkouts reports whether any mode followed orders through the saga.
func checkouts(modes []Mode) bool {
	for _, m := range modes {
		if _, ok := m.Load.ExtraOp(loadgen.CheckoutStat); ok {
			return true
		}
	}
	return false
}

func mib(bytes int64) string { return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20)) }
