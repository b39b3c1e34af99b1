package users

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/microshop/microshop/internal/platform/fault"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func min_(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Minute))) }

// attempt makes one login attempt on key at the given time with outcome o and
// returns the RetryAfter of the refusal, or 0 if the attempt was let through.
func attempt(t *testing.T, th *throttle, key string, at time.Time, o outcome) time.Duration {
	t.Helper()
	done, err := th.begin(throttleKeyOf(key), at)
	if err != nil {
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.RateLimited || fe.Code != "too-many-attempts" || fe.RetryAfter <= 0 {
			t.Fatalf("refusal = %#v, want rate-limited too-many-attempts with RetryAfter", err)
		}
		return fe.RetryAfter
	}
	done(o, at)
	return 0
}

func TestThrottleSchedule(t *testing.T) {
	type step struct {
		at        float64 // minutes after t0
		o         outcome
		wantRetry time.Duration // 0: let through
	}
	fail := func(at float64) step { return step{at, attemptFailed, 0} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"four failures lock nothing", []step{fail(0), fail(1), fail(2), fail(3), {3.5, attemptSucceeded, 0}}},
		{"fifth failure within the window locks for its remainder", []step{
			fail(0), fail(1), fail(2), fail(3), fail(4),
			{4, attemptSucceeded, 11 * time.Minute}, // even the right password is not checked
			{14, attemptFailed, time.Minute},
			fail(15), // the lock is over: the next failure locks again, twice as long (capped)
			{16, attemptSucceeded, 14 * time.Minute},
		}},
		{"locks double up to 15 minutes", []step{
			fail(0), fail(3), fail(6), fail(9), fail(12), // locked 3 min (the rest of the window)
			{14, attemptFailed, time.Minute},
			fail(15),                         // locked 6 min
			{20, attemptFailed, time.Minute}, // 1 min left
			fail(21),                         // locked 12 min
			{32, attemptFailed, time.Minute},
			fail(33),                                // locked 15 min (the cap)
			{47.5, attemptFailed, 30 * time.Second}, // 30 s left
			fail(48),                                // locked 15 min again
			{62, attemptFailed, time.Minute},
		}},
		{"failures spread over more than the window never lock", []step{
			fail(0), fail(4), fail(8), fail(12), fail(16), // the window restarts at 16 with one failure
			fail(17), fail(18), fail(19), {19.5, attemptSucceeded, 0},
		}},
		{"a success resets", []step{
			fail(0), fail(1), fail(2), fail(3), {4, attemptSucceeded, 0},
			fail(5), fail(6), fail(7), fail(8), {9, attemptSucceeded, 0},
		}},
		{"a quiet window after the lock resets", []step{
			fail(0), fail(1), fail(2), fail(3), fail(4), // locked until 15
			fail(30.5), fail(31), fail(32), fail(33), {33.5, attemptSucceeded, 0}, // four failures: not locked
		}},
		{"abandoned attempts count for nothing", []step{
			fail(0), fail(1), fail(2), fail(3),
			{3.1, attemptAbandoned, 0}, {3.2, attemptAbandoned, 0}, {3.3, attemptSucceeded, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThrottle(100)
			var got, want []time.Duration
			for _, s := range tt.steps {
				got = append(got, attempt(t, th, "ada@example.com", min_(s.at), s.o))
				want = append(want, s.wantRetry)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RetryAfter per step (-want +got):\n%s", diff)
			}
			// Another account is never affected.
			if r := attempt(t, th, "grace@example.com", min_(tt.steps[len(tt.steps)-1].at), attemptFailed); r != 0 {
				t.Errorf("another account is throttled: %v", r)
			}
		})
	}
}

func TestThrottleKeyIsNormalised(t *testing.T) {
	th := newThrottle(100)
	for i, email := range []string{"ada@example.com", "ADA@example.com", " Ada@Example.com", "ada@EXAMPLE.COM\n", "ada@example.com"} {
		if r := attempt(t, th, email, min_(float64(i)), attemptFailed); r != 0 {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if r := attempt(t, th, "ada@example.com", min_(5), attemptSucceeded); r != 10*time.Minute {
		t.Errorf("after five failures under spellings of one email: RetryAfter = %v, want 10m", r)
	}
}

// TestThrottleConcurrentAttempts: parallel guesses cannot exceed the failures
// an account has left.
func TestThrottleConcurrentAttempts(t *testing.T) {
	th := newThrottle(100)
	key := throttleKeyOf("ada@example.com")
	for i := range 3 {
		attempt(t, th, "ada@example.com", min_(float64(i)), attemptFailed)
	}
	// Two failures left: two attempts may run together, not a third.
	d1, err1 := th.begin(key, min_(4))
	d2, err2 := th.begin(key, min_(4))
	_, err3 := th.begin(key, min_(4))
	if err1 != nil || err2 != nil || !fault.Is(err3, fault.RateLimited) {
		t.Fatalf("begin x3 = %v, %v, %v; want ok, ok, rate limited", err1, err2, err3)
	}
	d1(attemptFailed, min_(4))
	d1(attemptFailed, min_(4)) // a second call of one attempt's done counts for nothing
	d2(attemptFailed, min_(4))
	if r := attempt(t, th, "ada@example.com", min_(5), attemptSucceeded); r != 10*time.Minute {
		t.Errorf("RetryAfter = %v, want 10m (locked by the fifth failure)", r)
	}
}

func TestThrottleIsBounded(t *testing.T) {
	th := newThrottle(3)
	for i, email := range []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"} {
		attempt(t, th, email, min_(float64(i)), attemptFailed)
		if n := th.len(); n > 3 {
			t.Fatalf("%d entries, want at most 3", n)
		}
	}
	// Entries quiet for a window are dropped first, whatever the bound.
	attempt(t, th, "f@example.com", min_(100), attemptFailed)
	if n := th.len(); n != 1 {
		t.Errorf("after a quiet window: %d entries, want 1", n)
	}
	// Successes leave nothing behind.
	for i := range 10 {
		attempt(t, th, "g@example.com", min_(101+float64(i)), attemptSucceeded)
	}
	if n := th.len(); n != 1 {
		t.Errorf("after successes: %d entries, want 1", n)
	}
}

// TestHasherWaitsWithinContext: when every hashing slot is taken, a caller
// waits only as long as its context allows.
func TestHasherWaitsWithinContext(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	for range cap(h.sem) {
		h.sem <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Verify(ctx, h.dummy, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify with every slot taken = %v, want the context's error", err)
	}
	if _, err := h.Hash(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hash with every slot taken = %v, want the context's error", err)
	}
}
