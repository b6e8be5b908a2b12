package testwait_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/evbank/bank/internal/testwait"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	if !testwait.For(5*time.Second, func() bool { return calls.Add(1) == 3 }) {
		t.Fatal("For gave up on a condition that held at the third call")
	}
	if calls.Load() != 3 {
		t.Fatalf("cond called %d times, want 3", calls.Load())
	}
}

func TestForGivesUpAtTheDeadline(t *testing.T) {
	t.Parallel()
	if testwait.For(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("For reported a condition that never held")
	}
}
