package users

import (
	"context"
	"time"
)

// Hooks into the Hasher's release of memory, for password_test.go.

func NewHasherReleasing(p Params, after time.Duration, release func()) *Hasher {
	return newHasher(p, after, release)
}

func (h *Hasher) ReleaseScheduled() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.releaseTimer != nil
}

func (h *Hasher) ReleaseIfQuiet() { h.releaseIfQuiet() }

// Occupy takes a hashing slot as a running hash does; the func gives it back.
func (h *Hasher) Occupy() func() {
	h.acquire(context.Background())
	return func() { h.release(0) }
}
