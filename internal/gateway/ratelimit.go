package gateway

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/problem"
)

// Limits are the gateway's rate limits, as requests per second with a burst.
// Zero values take the defaults; a negative rate turns that limit off.
type Limits struct {
	PerClient  float64 // every request, per client address (default 100/s, burst 200)
	PerUser    float64 // authenticated requests, per user (default 50/s, burst 100)
	AuthPerMin float64 // register/login/refresh, per client address (default 20/min, burst 10)
}

func (l Limits) withDefaults() Limits {
	if l.PerClient == 0 {
		l.PerClient = 100
	}
	if l.PerUser == 0 {
		l.PerUser = 50
	}
	if l.AuthPerMin == 0 {
		l.AuthPerMin = 20
	}
	return l
}

// limiter keeps one token bucket per key, forgetting keys idle for 10 minutes.
type limiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(perSecond float64, burst int) *limiter {
	if perSecond < 0 {
		return nil
	}
	return &limiter{rate: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}}
}

// allow reports whether key may make a request now, and if not, how long to wait.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	wait := time.Duration(math.Ceil(float64(time.Second) / float64(l.rate)))
	return false, max(wait, time.Second)
}

func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, what string) {
	problem.Write(w, r, problem.From(&fault.Error{Kind: fault.RateLimited, Msg: "too many requests " + what, RetryAfter: wait}))
}

// clientKey identifies the client by its address. Behind a load balancer the
// address is the balancer's; limits then apply to it as a whole, which is
// safe, if coarse (X-Forwarded-For is not trusted: any client can forge it).
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// rateLimits applies the per-client, per-user and authentication limits.
func rateLimits(l Limits) (perClient, perUser func(http.Handler) http.Handler) {
	l = l.withDefaults()
	clients := newLimiter(l.PerClient, int(2*l.PerClient))
	users := newLimiter(l.PerUser, int(2*l.PerUser))
	logins := newLimiter(l.AuthPerMin/60, 10)
	perClient = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := clientKey(r)
			if ok, wait := clients.allow(key); !ok {
				tooMany(w, r, wait, "from this client")
				return
			}
			if r.Method == http.MethodPost && isCredentialRoute(r.URL.Path) {
				if ok, wait := logins.allow(key); !ok {
					tooMany(w, r, wait, "to the authentication endpoints from this client")
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	perUser = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := auth.From(r.Context()); p.Authenticated() {
				if ok, wait := users.allow(p.UserID); !ok {
					tooMany(w, r, wait, "for this user")
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	return perClient, perUser
}

func isCredentialRoute(p string) bool {
	switch p {
	case "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh":
		return true
	}
	return false
}
