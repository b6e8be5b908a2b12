// Package testwait waits in tests for a condition to hold, instead of sleeping
// a guessed duration: polling starts fast and backs off, and a deadline bounds it.
package testwait

import (
	"testing"
	"time"
)

// For polls cond, every millisecond at first and backing off to 50 ms, until
// it holds (true) or timeout passes (false).
func For(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// Until is For that fails the test when cond does not hold in time, with
// cond's last explanation of what it saw.
func Until(t testing.TB, timeout time.Duration, cond func() (ok bool, why string)) {
	t.Helper()
	var why string
	if !For(timeout, func() bool {
		var ok bool
		ok, why = cond()
		return ok
	}) {
		t.Fatalf("not within %s: %s", timeout, why)
	}
}
