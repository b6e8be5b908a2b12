package command

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/testwait"
)

func newQueued(ctx context.Context) *queuedCommand {
	return &queuedCommand{name: "deposit", ctx: ctx}
}

// waitingOn is how many commands wait in id's line.
func (q *streamQueues) waitingOn(id uuid.UUID) int {
	sh := q.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sq := sh.streams[id]; sq != nil {
		return len(sq.waiting)
	}
	return 0
}

func (q *streamQueues) queues() (n int) {
	for i := range q.shards {
		q.shards[i].mu.Lock()
		n += len(q.shards[i].streams)
		q.shards[i].mu.Unlock()
	}
	return n
}

func TestQueuesSerialiseOneStreamOnly(t *testing.T) {
	t.Parallel()
	q := newStreamQueues(0, 0)
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	leaderA := newQueued(ctx)
	if lead, err := q.join(a, leaderA); !lead || err != nil {
		t.Fatalf("first command on a: lead %v, %v", lead, err)
	}
	// Another stream is never queued behind a, whatever its bytes.
	leaderB := newQueued(ctx)
	if lead, err := q.join(b, leaderB); !lead || err != nil {
		t.Fatalf("first command on b: lead %v, %v", lead, err)
	}
	q.handOff(b, q.take(b, leaderB))

	// A second command on a waits, and gives up with its context.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := q.join(a, newQueued(short)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second command on a busy stream = %v, want its deadline", err)
	}
	if n := q.waitingOn(a); n != 0 {
		t.Fatalf("%d commands still in line after giving up", n)
	}
	q.handOff(a, q.take(a, leaderA))
	if n := q.queues(); n != 0 {
		t.Fatalf("%d queues kept after every command left", n)
	}
}

// TestQueuedCommandsFormOneGroup: the commands that wait while a leader works
// are taken together by the next leader, in order, except what may not share
// an append: a transfer step, a second use of an idempotency key, and
// anything past the group's bound.
func TestQueuedCommandsFormOneGroup(t *testing.T) {
	t.Parallel()
	q := newStreamQueues(0, 4)
	ctx := context.Background()
	id := uuid.New()
	first := newQueued(ctx)
	if lead, _ := q.join(id, first); !lead {
		t.Fatal("first command did not lead")
	}
	firstGroup := q.take(id, first) // taken at once; the others queue while it runs
	key := &Idempotency{Scope: IdempotencyScope{Principal: "p", Method: "POST", Path: "/accounts/x/deposit", Key: "k"}}
	step := func(context.Context, Append) error { return nil }
	cmds := []*queuedCommand{
		newQueued(ctx), // 0: leads the next group
		{name: "deposit", ctx: ctx, opts: Options{Idempotency: key}}, // 1
		newQueued(ctx), // 2
		{name: "deposit", ctx: ctx, opts: Options{Idempotency: key}}, // 3: same key as 1
		newQueued(ctx), // 4
		{name: "transfer_send", ctx: ctx, opts: Options{appendWith: step}}, // 5: alone
		newQueued(ctx), // 6
		newQueued(ctx), // 7
		newQueued(ctx), // 8
		newQueued(ctx), // 9
		newQueued(ctx), // 10
	}
	type joined struct {
		lead bool
		err  error
	}
	results := make([]chan joined, len(cmds))
	for i, c := range cmds {
		results[i] = make(chan joined, 1)
		go func() {
			lead, err := q.join(id, c)
			results[i] <- joined{lead, err}
		}()
		// In line in this order: each waits before the next one joins.
		testwait.Until(t, 5*time.Second, func() (bool, string) {
			n := q.waitingOn(id)
			return n == i+1, fmt.Sprintf("%d commands in line, want %d", n, i+1)
		})
	}
	q.handOff(id, firstGroup)

	// Each group: who leads, and who it takes.
	for _, want := range [][]int{{0, 1, 2}, {3, 4}, {5}, {6, 7, 8, 9}, {10}} {
		r := <-results[want[0]]
		if !r.lead || r.err != nil {
			t.Fatalf("command %d: lead %v, %v; want it to lead", want[0], r.lead, r.err)
		}
		group := q.take(id, cmds[want[0]])
		if len(group) != len(want) {
			t.Fatalf("command %d leads a group of %d, want %v", want[0], len(group), want)
		}
		for j, c := range group {
			if c != cmds[want[j]] {
				t.Fatalf("group led by %d: member %d is not command %d", want[0], j, want[j])
			}
		}
		q.handOff(id, group)
		for _, m := range want[1:] {
			if r := <-results[m]; r.lead || r.err != nil {
				t.Fatalf("command %d: lead %v, %v; want answered by its leader", m, r.lead, r.err)
			}
		}
	}
	if n := q.queues(); n != 0 {
		t.Fatalf("%d queues kept after every command left", n)
	}
}

// TestQueuesAreExclusive: at any moment at most one group runs per stream,
// and every command is led or answered exactly once.
func TestQueuesAreExclusive(t *testing.T) {
	t.Parallel()
	q := newStreamQueues(0, 8)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	var inside [3]atomic.Int32
	var answered atomic.Int64
	var wg sync.WaitGroup
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := (g + i) % len(ids)
				c := newQueued(context.Background())
				lead, err := q.join(ids[k], c)
				if err != nil {
					t.Error(err)
					return
				}
				if !lead {
					continue // answered by a leader
				}
				if n := inside[k].Add(1); n != 1 {
					t.Errorf("%d groups inside stream %d at once", n, k)
				}
				group := q.take(ids[k], c)
				answered.Add(int64(len(group)))
				inside[k].Add(-1)
				q.handOff(ids[k], group)
			}
		}()
	}
	wg.Wait()
	if n := answered.Load(); n != 30*50 {
		t.Errorf("%d commands went through a group, want %d", n, 30*50)
	}
	if n := q.queues(); n != 0 {
		t.Fatalf("%d queues kept after every command left", n)
	}
}

// TestQueueWaitIsBounded: behind a leader that never finishes, a command
// gives up at the request's deadline or at the queue's own bound, whichever
// comes first, and leaves the line as it was.
func TestQueueWaitIsBounded(t *testing.T) {
	t.Parallel()
	q := newStreamQueues(200*time.Millisecond, 0)
	id := uuid.New()
	leader := newQueued(context.Background())
	if lead, _ := q.join(id, leader); !lead {
		t.Fatal("first command did not lead")
	}

	// The request's deadline comes first.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := q.join(id, newQueued(ctx)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past the request's deadline = %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 150*time.Millisecond {
		t.Errorf("waited %s past a 20ms deadline", waited)
	}

	// No deadline at all: the queue's own bound, as a retryable conflict.
	start = time.Now()
	if _, err := q.join(id, newQueued(context.Background())); !errors.Is(err, ErrConcurrencyConflict) {
		t.Errorf("wait without a deadline = %v, want ErrConcurrencyConflict", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 2*time.Second {
		t.Errorf("waited %s, want about the 200ms bound", waited)
	}

	q.handOff(id, q.take(id, leader))
	if n := q.queues(); n != 0 {
		t.Fatalf("%d queues kept after every command left", n)
	}
	next := newQueued(context.Background())
	if lead, err := q.join(id, next); !lead || err != nil {
		t.Errorf("command after the leader left: lead %v, %v", lead, err)
	}
	q.handOff(id, q.take(id, next))
}
