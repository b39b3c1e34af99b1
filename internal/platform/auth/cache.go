package auth

import (
	"crypto/ed25519"
	"sync"
)

// verifiedCacheSize bounds each of the cache's two generations: at most twice
// this many tokens (a few hundred bytes each) are remembered.
const verifiedCacheSize = 4096

// verifiedToken is what verifying a token established: its claims and the key
// that checked its signature.
type verifiedToken struct {
	claims *Claims
	kid    string
	key    ed25519.PublicKey
}

// verifiedCache remembers tokens whose signature verified, keyed by the
// token's exact bytes. Only successes are stored, so a forged token is never
// remembered, and a hit means these very bytes were verified before: the
// signature check is the only step it skips (the claims' times and the
// signing key are checked again on every use, see Verifier.verify).
//
// It keeps two generations of at most max entries: when the current one is
// full it becomes the old one and the previous old one is dropped, so memory
// is bounded without tracking recency per entry, and a token in use moves
// back into the current generation when it is looked up.
type verifiedCache struct {
	max int

	mu       sync.Mutex
	cur, old map[string]verifiedToken
}

func (c *verifiedCache) get(raw string) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[raw]; ok {
		return e, true
	}
	e, ok := c.old[raw]
	if ok {
		delete(c.old, raw)
		c.putLocked(raw, e)
	}
	return e, ok
}

func (c *verifiedCache) put(raw string, e verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(raw, e)
}

func (c *verifiedCache) putLocked(raw string, e verifiedToken) {
	if c.cur == nil || len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[string]verifiedToken, min(c.max, 256))
	}
	c.cur[raw] = e
}

func (c *verifiedCache) remove(raw string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, raw)
	delete(c.old, raw)
}

// len reports how many tokens are remembered (for tests).
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
