//go:build !linux

package bench

import "errors"

// Supported reports whether memory and CPU can be read on this OS.
const Supported = false

// Read is not available without /proc.
func Read(pids []int) (Usage, error) {
	return Usage{}, errors.New("process memory and CPU are read from /proc, on Linux only")
}
