// Package bench measures a running microshop from the outside: the resident
// memory and CPU time of its processes (from Linux's /proc), and renders the
// comparison of services mode against the monolith as a Markdown table.
//
// Memory is read two ways. RSS (VmRSS) counts every page a process has in
// memory, including the pages it shares with others: services mode runs six
// processes of one executable, so a sum of RSS counts the binary's code once
// per process. PSS (proportional set size, from smaps_rollup) splits each
// shared page between the processes that map it, so the PSS of a set of
// processes adds up to what the set actually holds.
package bench

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ClockTicks is the unit of utime and stime in /proc/<pid>/stat. It is
// sysconf(_SC_CLK_TCK), which is 100 on every Linux platform Go supports;
// reading it would need cgo, so it is assumed.
const ClockTicks = 100

// ParseStat returns utime+stime, in clock ticks, from the text of
// /proc/<pid>/stat. The process name (field 2) is in parentheses and may
// itself contain spaces and parentheses, so the fields are counted from the
// last ')'.
func ParseStat(text string) (int64, error) {
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the process name")
	}
	// After the name: state (field 3), ppid, ..., utime (14), stime (15).
	f := strings.Fields(text[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return utime + stime, nil
}

// ParseRSS returns VmRSS in bytes from the text of /proc/<pid>/status. A
// kernel thread or a zombie has none.
func ParseRSS(text string) (int64, error) {
	n, err := kBField(text, "VmRSS")
	if err != nil {
		return 0, fmt.Errorf("status: %w", err)
	}
	return n, nil
}

// ParsePSS returns Pss in bytes from the text of /proc/<pid>/smaps_rollup.
func ParsePSS(text string) (int64, error) {
	n, err := kBField(text, "Pss")
	if err != nil {
		return 0, fmt.Errorf("smaps_rollup: %w", err)
	}
	return n, nil
}

// kBField returns the value of the "key: <n> kB" line of text, in bytes.
func kBField(text, key string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s %q: want \"<n> kB\"", key, strings.TrimSpace(v))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", key, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s line", key)
}

// CPUSecondsPer1000 is the CPU time the system spent per 1,000 requests:
// the growth of utime+stime (ticks) over the measured window, in seconds,
// divided by requests/1000. It is 0 when there were no requests.
func CPUSecondsPer1000(ticksBefore, ticksAfter int64, hz int, requests int64) float64 {
	if requests <= 0 || hz <= 0 {
		return 0
	}
	return float64(ticksAfter-ticksBefore) / float64(hz) / (float64(requests) / 1000)
}

// Usage is the sum over a set of processes.
type Usage struct {
	RSS   int64 // bytes, the sum of VmRSS: shared pages count once per process
	PSS   int64 // bytes, the sum of Pss: shared pages split between their processes
	Ticks int64 // utime+stime in clock ticks
	Procs int   // processes read
	Each  []Proc
}

// Proc is what was read of one process.
type Proc struct {
	Name     string // set by the caller: Read knows only the pid
	PID      int
	RSS, PSS int64 // bytes
	Ticks    int64
}
