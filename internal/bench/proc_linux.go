package bench

import (
	"fmt"
	"os"
)

// Supported reports whether memory and CPU can be read on this OS.
const Supported = true

// Read sums the resident memory and CPU time of pids.
func Read(pids []int) (Usage, error) {
	var u Usage
	for _, pid := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return u, err
		}
		ticks, err := ParseStat(string(st))
		if err != nil {
			return u, fmt.Errorf("pid %d: %w", pid, err)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return u, err
		}
		rss, err := ParseRSS(string(status))
		if err != nil {
			return u, fmt.Errorf("pid %d: %w", pid, err)
		}
		u.Ticks += ticks
		u.RSS += rss
		u.Procs++
	}
	return u, nil
}
