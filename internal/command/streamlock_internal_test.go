package command

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestStreamLocksSerialiseOneStreamOnly(t *testing.T) {
	t.Parallel()
	l := newStreamLocks()
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
	l := newStreamLocks()
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
