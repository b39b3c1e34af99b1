package bench

import (
	"fmt"
	"os"
)

// Supported reports whether memory and CPU can be read on this OS.
const Supported = true

// Read sums the resident memory (RSS and PSS) and CPU time of pids.
func Read(pids []int) (Usage, error) {
	var u Usage
	for _, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			return u, fmt.Errorf("pid %d: %w", pid, err)
		}
		u.Ticks += p.Ticks
		u.RSS += p.RSS
		u.PSS += p.PSS
		u.Procs++
		u.Each = append(u.Each, p)
	}
	return u, nil
}

func readProc(pid int) (Proc, error) {
	p := Proc{PID: pid}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	if p.Ticks, err = ParseStat(string(st)); err != nil {
		return p, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	if p.RSS, err = ParseRSS(string(status)); err != nil {
		return p, err
	}
	// smaps_rollup (Linux 4.14) sums smaps over the mappings.
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return p, err
	}
	p.PSS, err = ParsePSS(string(rollup))
	return p, err
}
