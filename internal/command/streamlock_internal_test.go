package command

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestStreamLocksSerialiseOneStreamOnly(t *testing.T) {
	t.Parallel()
	l := newStreamLocks(0)
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	unlockA, err := l.lock(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	// Another stream is never queued behind a, whatever its bytes.
	unlockB, err := l.lock(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	unlockB()

	// A second command on a waits, and gives up with its context.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(short, a); err == nil {
		t.Fatal("second lock of a held stream succeeded")
	}
	unlockA()
	unlockA2, err := l.lock(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	unlockA2()
	for i := range l.shards {
		if n := len(l.shards[i].streams); n != 0 {
			t.Fatalf("shard %d keeps %d queues after every command left", i, n)
		}
	}
}

func TestStreamLocksExclusive(t *testing.T) {
	t.Parallel()
	l := newStreamLocks(0)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	inside := make([]int, len(ids))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := (g + i) % len(ids)
				unlock, err := l.lock(context.Background(), ids[k])
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inside[k]++
				if inside[k] != 1 {
					t.Errorf("%d commands inside stream %d at once", inside[k], k)
				}
				mu.Unlock()
				mu.Lock()
				inside[k]--
				mu.Unlock()
				unlock()
			}
		}()
	}
	wg.Wait()
}

// TestStreamLockWaitIsBounded: behind a holder that never lets go, a command
// gives up at the request's deadline or at the lock's own bound, whichever
// comes first, and leaves no queue behind.
func TestStreamLockWaitIsBounded(t *testing.T) {
	t.Parallel()
	l := newStreamLocks(200 * time.Millisecond)
	id := uuid.New()
	unlock, err := l.lock(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}

	// The request's deadline comes first.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := l.lock(ctx, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lock past the request's deadline = %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 150*time.Millisecond {
		t.Errorf("waited %s past a 20ms deadline", waited)
	}

	// No deadline at all: the lock's own bound, as a retryable conflict.
	start = time.Now()
	_, err = l.lock(context.Background(), id)
	if !errors.Is(err, ErrConcurrencyConflict) {
		t.Errorf("lock without a deadline = %v, want ErrConcurrencyConflict", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 2*time.Second {
		t.Errorf("waited %s, want about the 200ms bound", waited)
	}

	unlock()
	for i := range l.shards {
		if n := len(l.shards[i].streams); n != 0 {
			t.Fatalf("shard %d keeps %d queues after every command left", i, n)
		}
	}
	if unlock, err := l.lock(context.Background(), id); err != nil {
		t.Errorf("lock after the holder left: %v", err)
	} else {
		unlock()
	}
}
