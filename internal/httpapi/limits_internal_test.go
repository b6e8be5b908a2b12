package httpapi

import (
	"strconv"
	"testing"
	"time"
)

// TestLimitersAreBounded: however many principals call, the limiters kept stay
// under the bound, idle ones (whose bucket is full again) going first.
func TestLimitersAreBounded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ls := newLimiters(RateLimit{PerSecond: 10, Burst: 20}, 100, func() time.Time { return now })
	busy := ls.get("busy", now)
	busy.AllowN(now, 20) // empty: forgetting it would hand out a new burst
	for i := range 10000 {
		ls.get("p"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Millisecond))
		if n := ls.len(); n > 100 {
			t.Fatalf("%d limiters after %d principals, bound 100", n, i+1)
		}
	}
	// Idle for 2 s (its refill time): dropped before the busy ones.
	later := now.Add(time.Hour)
	ls2 := newLimiters(RateLimit{PerSecond: 10, Burst: 20}, 3, func() time.Time { return later })
	ls2.get("idle", now)
	ls2.get("a", later)
	ls2.get("b", later)
	ls2.get("c", later)
	if _, ok := ls2.m["idle"]; ok {
		t.Error("a limiter idle past its refill time survived a full map")
	}
	if _, ok := ls2.m["a"]; !ok {
		t.Error("a busy limiter was dropped while an idle one could go")
	}
}
