package users

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/microshop/microshop/internal/platform/fault"
)

// Limits on passwords. Lengths count characters (code points); the byte limit
// bounds what a password of multi-byte characters may cost to hash.
const (
	MinPasswordLen   = 12
	MaxPasswordLen   = 128
	MaxPasswordBytes = 256
)

// ValidPassword checks the length of a new password. Its error never contains
// the password.
func ValidPassword(password string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLen || n > MaxPasswordLen || len(password) > MaxPasswordBytes || !utf8.ValidString(password) {
		return fault.Invalidf("body.password", "password must be %d to %d characters (at most %d bytes)",
			MinPasswordLen, MaxPasswordLen, MaxPasswordBytes)
	}
	return nil
}

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams are OWASP's recommended argon2id parameters (m=19 MiB, t=2, p=1)
// with a 16-byte salt and a 32-byte key.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on the parameters a stored hash may name, so that a corrupted or
// tampered row cannot make one verification allocate gigabytes or run for
// minutes.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
)

func (p Params) check() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("threads %d out of [1, %d]", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("memory %d KiB out of [%d, %d]", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d out of [1, %d]", p.Time, maxTime)
	case p.SaltLen < minSalt || p.SaltLen > maxSalt:
		return fmt.Errorf("salt length %d out of [%d, %d]", p.SaltLen, minSalt, maxSalt)
	case p.KeyLen < minKey || p.KeyLen > maxKey:
		return fmt.Errorf("key length %d out of [%d, %d]", p.KeyLen, minKey, maxKey)
	}
	return nil
}

// ErrMalformedHash is returned by Verify for an encoded hash it cannot read.
var ErrMalformedHash = errors.New("users: malformed password hash")

var b64 = base64.RawStdEncoding.Strict() // PHC strings use standard base64 without padding

// Hasher hashes and verifies passwords with argon2id, encoded as PHC strings
// ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>") so that the parameters can
// change later: a hash is always verified with the parameters it names. At most
// GOMAXPROCS hashes run at once, so that a burst of logins cannot exhaust
// memory (each takes Params.Memory); the others wait, within their context.
//
// When no hash has run for a second, the Hasher returns the memory the hashes
// used to the operating system (see releaseLater).
type Hasher struct {
	params        Params
	sem           chan struct{}
	dummy         string // a hash of a random password, verified when there is no real one
	verifications atomic.Int64

	mu           sync.Mutex
	releaseTimer *time.Timer
	releaseAfter time.Duration // quiet time before the release
	releaseFunc  func()        // debug.FreeOSMemory, but for tests
}

// releaseMin is the least memory a hash must have used for the Hasher to
// return it to the operating system afterwards.
const releaseMin = 1024 // KiB

// NewHasher returns a Hasher with parameters p. It panics if p is out of the
// bounds a stored hash may have.
func NewHasher(p Params) *Hasher {
	if err := p.check(); err != nil {
		panic("users: invalid argon2id parameters: " + err.Error())
	}
	return newHasher(p, time.Second, debug.FreeOSMemory)
}

// newHasher is NewHasher with the release of the hashes' memory (releaseLater)
// done by release after a quiet time of after.
func newHasher(p Params, after time.Duration, release func()) *Hasher {
	h := &Hasher{params: p, sem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		releaseAfter: after, releaseFunc: release}
	h.dummy = h.encode(rand.Text())
	h.releaseLater(p.Memory)
	return h
}

// Verifications returns how many verifications h has done (tests count them).
func (h *Hasher) Verifications() int64 { return h.verifications.Load() }

// Hash returns the encoded hash of password with a fresh random salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release(h.params.Memory)
	return h.encode(password), nil
}

func (h *Hasher) encode(password string) string {
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	key := argon2.IDKey([]byte(password), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches the encoded hash, comparing in
// constant time. A hash it cannot read is an ErrMalformedHash error.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	p, salt, key, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release(p.Memory)
	h.verifications.Add(1)
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// verifyDummy does the work of one verification that cannot succeed, so that a
// login for an account without a password takes as long as any other.
func (h *Hasher) verifyDummy(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, h.dummy, password)
	return err
}

// NeedsRehash reports whether encoded was made with other parameters than the
// current ones (or cannot be read), so that it should be replaced at the next
// successful login.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, _, err := decodeHash(encoded)
	return err != nil || p != h.params
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release ends a hash that used memory KiB.
func (h *Hasher) release(memory uint32) {
	<-h.sem
	h.releaseLater(memory)
}

// releaseLater returns the hashes' memory to the operating system once no hash
// has run for releaseAfter. Each hash allocates its Params.Memory (19 MiB by
// default) and drops it; in a process that then goes idle, nothing allocates
// enough to start a garbage collection, so the Go runtime would keep that
// memory resident until its periodic collection two minutes later, and the
// users service would hold two or three dead hashes' worth of it at idle. A
// burst of logins reuses the memory and is not slowed: the release waits for a
// quiet second, and then costs one collection of the heap.
func (h *Hasher) releaseLater(memory uint32) {
	if memory < releaseMin {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.releaseTimer == nil {
		h.releaseTimer = time.AfterFunc(h.releaseAfter, h.releaseIfQuiet)
		return
	}
	h.releaseTimer.Reset(h.releaseAfter)
}

// releaseIfQuiet releases the memory unless a hash is running: that one's
// release schedules another.
func (h *Hasher) releaseIfQuiet() {
	if len(h.sem) == 0 {
		h.releaseFunc()
	}
}

// decodeHash reads "$argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>",
// refusing anything else: other algorithms or versions, non-canonical numbers,
// padded or non-standard base64, and parameters out of bounds.
func decodeHash(s string) (Params, []byte, []byte, error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	if len(s) > 512 {
		return bad("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("not an argon2id PHC string")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("parameters")
	}
	var nums [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || strconv.FormatUint(n, 10) != v {
			return bad("parameter " + name)
		}
		nums[i] = n
	}
	if nums[2] > 255 {
		return bad("parameter p=")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return bad("salt encoding")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return bad("key encoding")
	}
	p := Params{Memory: uint32(nums[0]), Time: uint32(nums[1]), Threads: uint8(nums[2]),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.check(); err != nil {
		return bad(err.Error())
	}
	return p, salt, key, nil
}
