package users

import (
	"container/list"
	"crypto/sha256"
	"strings"
	"sync"
	"time"

	"github.com/microshop/microshop/internal/platform/fault"
)

// Login throttling, per account (the email as typed, trimmed and lower-cased,
// whether or not an account has it, so that the throttle tells nothing about
// which emails exist).
//
// After MaxLoginFailures failures within LoginWindow, the account is locked
// until the end of that window; each further failure after a lock ends locks it
// again for twice as long as the previous lock, up to MaxLockout. While locked,
// attempts are refused with a fault.RateLimited error (code "too-many-attempts")
// whose RetryAfter is the time left, without checking the password. A
// successful login resets the account; so does a quiet LoginWindow after its
// last failure and lock. Attempts on one account are also not allowed to run
// concurrently beyond its remaining failures, so a burst of parallel guesses
// cannot slip past the limit.
//
// The state is kept in memory, per process, for at most maxThrottled accounts
// (the least recently failed ones are forgotten first). It limits guessing
// against one account; the gateway limits each client across accounts.
const (
	MaxLoginFailures = 5
	LoginWindow      = 15 * time.Minute
	MaxLockout       = 15 * time.Minute
	minLockout       = time.Second
	maxThrottled     = 100_000
)

type outcome int

const (
	attemptFailed outcome = iota
	attemptSucceeded
	attemptAbandoned // the attempt could not be judged (database or deadline): it counts for nothing
)

type throttleKey [sha256.Size]byte

// throttle is the per-account failure state. Keys are hashes of the emails, so
// an entry's size does not depend on what a client sends.
type throttle struct {
	mu      sync.Mutex
	max     int
	entries map[throttleKey]*list.Element // of *account
	lru     *list.List                    // front: most recently used
}

type account struct {
	key      throttleKey
	failures int
	inflight int
	first    time.Time     // first failure of the current window
	last     time.Time     // last failure
	until    time.Time     // locked until
	lock     time.Duration // length of the last lock
}

func newThrottle(max int) *throttle {
	return &throttle{max: max, entries: map[throttleKey]*list.Element{}, lru: list.New()}
}

func throttleKeyOf(email string) throttleKey {
	return sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
}

func tooManyAttempts(retry time.Duration) error {
	return &fault.Error{Kind: fault.RateLimited, Code: "too-many-attempts",
		Msg: "too many failed login attempts; try again later", RetryAfter: retry}
}

// expired reports whether a has been quiet for a whole window.
func (a *account) expired(now time.Time) bool {
	end := a.last
	if a.until.After(end) {
		end = a.until
	}
	return a.inflight == 0 && !now.Before(end.Add(LoginWindow))
}

// begin registers an attempt on key at now. It returns a fault.RateLimited error
// when the account is locked, and otherwise a function to call with the
// attempt's outcome.
func (t *throttle) begin(key throttleKey, now time.Time) (func(outcome, time.Time), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.get(key, now)
	if now.Before(a.until) {
		return nil, tooManyAttempts(a.until.Sub(now))
	}
	if a.inflight >= max(1, MaxLoginFailures-a.failures) {
		return nil, tooManyAttempts(minLockout)
	}
	a.inflight++
	var once sync.Once
	return func(o outcome, at time.Time) { once.Do(func() { t.end(key, o, at) }) }, nil
}

func (t *throttle) end(key throttleKey, o outcome, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.get(key, now) // a fresh entry if it was evicted meanwhile
	if a.inflight > 0 {
		a.inflight--
	}
	switch o {
	case attemptSucceeded:
		*a = account{key: key, inflight: a.inflight}
		if a.inflight == 0 {
			t.remove(key)
		}
	case attemptFailed:
		a.fail(now)
	}
}

func (a *account) fail(now time.Time) {
	if a.failures < MaxLoginFailures && (a.failures == 0 || !now.Before(a.first.Add(LoginWindow))) {
		a.failures, a.first = 0, now // a new window
	}
	a.failures++
	a.last = now
	switch {
	case a.failures == MaxLoginFailures:
		a.lock = max(a.first.Add(LoginWindow).Sub(now), minLockout)
	case a.failures > MaxLoginFailures:
		a.lock = min(max(2*a.lock, minLockout), MaxLockout)
	default:
		return
	}
	a.until = now.Add(a.lock)
}

// get returns the entry of key, creating it (and evicting old entries) if
// needed, and marks it most recently used.
func (t *throttle) get(key throttleKey, now time.Time) *account {
	if el, ok := t.entries[key]; ok {
		a := el.Value.(*account)
		if !a.expired(now) {
			t.lru.MoveToFront(el)
			return a
		}
		t.remove(key)
	}
	// Drop quiet entries from the back; if still full, the least recently used.
	for t.lru.Len() > 0 {
		back := t.lru.Back().Value.(*account)
		if !back.expired(now) && t.lru.Len() < t.max {
			break
		}
		t.remove(back.key)
	}
	a := &account{key: key}
	t.entries[key] = t.lru.PushFront(a)
	return a
}

func (t *throttle) remove(key throttleKey) {
	if el, ok := t.entries[key]; ok {
		t.lru.Remove(el)
		delete(t.entries, key)
	}
}

func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
