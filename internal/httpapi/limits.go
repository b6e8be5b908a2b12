package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is RATE_LIMIT: a token bucket per principal. The zero value is no
// limit.
type RateLimit struct {
	// PerSecond is the sustained rate each principal may send; 0 is off.
	PerSecond float64
	// Burst is how many requests a principal may send at once (at least 1).
	Burst int
}

// maxLimiters bounds the per-principal limiters kept at once. Principals come
// from verified tokens only, but an identity provider can mint many; past
// this, idle limiters go first (see limiters.get).
const maxLimiters = 50000

// rateLimit answers 429 rate_limited to a principal over its rate, and tells
// every caller where it stands (RateLimit-Limit, -Remaining, -Reset: seconds
// until the bucket is full again). It runs after authenticate: the key is the
// token's subject, so one client's flood never slows another.
func rateLimit(l RateLimit) func(http.Handler) http.Handler {
	if l.PerSecond <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	ls := newLimiters(l, maxLimiters, time.Now)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := ls.now()
			lim := ls.get(principal(r).Subject, now)
			ok := lim.AllowN(now, 1)
			tokens := lim.TokensAt(now)
			h := w.Header()
			h.Set("RateLimit-Limit", strconv.Itoa(l.Burst))
			h.Set("RateLimit-Remaining", strconv.Itoa(max(0, int(math.Floor(tokens)))))
			h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds((float64(l.Burst)-tokens)/l.PerSecond)))
			if !ok {
				p := newProblem(http.StatusTooManyRequests, "rate_limited", "this principal is over its request rate; retry after Retry-After seconds")
				p.retryAfter = strconv.Itoa(max(1, ceilSeconds((1-tokens)/l.PerSecond)))
				writeProblem(w, r, p)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func ceilSeconds(s float64) int {
	if s <= 0 {
		return 0
	}
	return int(math.Ceil(s))
}

// limiters holds one token bucket per principal, at most maxN of them.
type limiters struct {
	mu   sync.Mutex
	l    RateLimit
	maxN int
	now  func() time.Time
	m    map[string]*limiterEntry
}

type limiterEntry struct {
	lim  *rate.Limiter
	last time.Time // last request
}

func newLimiters(l RateLimit, maxN int, now func() time.Time) *limiters {
	return &limiters{l: l, maxN: maxN, now: now, m: make(map[string]*limiterEntry)}
}

// refill is how long an idle bucket takes to fill up: a limiter idle that long
// is the same as a new one, so dropping it forgets nothing.
func (ls *limiters) refill() time.Duration {
	return time.Duration(float64(ls.l.Burst) / ls.l.PerSecond * float64(time.Second))
}

func (ls *limiters) get(subject string, now time.Time) *rate.Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if e, ok := ls.m[subject]; ok {
		e.last = now
		return e.lim
	}
	if len(ls.m) >= ls.maxN {
		idle := ls.refill()
		for k, e := range ls.m {
			if now.Sub(e.last) >= idle {
				delete(ls.m, k)
			}
		}
		// Still full of busy principals: drop an arbitrary eighth, whose
		// next request starts with a full bucket. Bounded memory matters
		// more than a few extra requests.
		for k := range ls.m {
			if len(ls.m) < ls.maxN-ls.maxN/8 {
				break
			}
			delete(ls.m, k)
		}
	}
	e := &limiterEntry{lim: rate.NewLimiter(rate.Limit(ls.l.PerSecond), ls.l.Burst), last: now}
	ls.m[subject] = e
	return e.lim
}

func (ls *limiters) len() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.m)
}
