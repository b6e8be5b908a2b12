package command

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// streamLocks queue the commands of one api process on the same stream, so that
// concurrent deposits to a hot account wait their turn instead of all reading
// version N, all inserting N+1 and all but one failing and retrying. It is only
// a throughput aid: unique(stream_id, version) in the database stays the guard,
// and commands from other processes still race and retry.
//
// Each stream has its own queue, made when a command first waits on it and
// dropped when the last one leaves: two hot streams never share a queue. (With
// hashed stripes they sometimes did, and in a closed loop most clients then
// piled up behind the doubled queue.) Waiters are served in arrival order.
type streamLocks struct {
	shards  [64]lockShard
	maxWait time.Duration
}

type lockShard struct {
	mu      sync.Mutex
	streams map[uuid.UUID]*streamQueue
}

// streamQueue is one stream's lock: a token channel (a full channel means
// held; blocked senders queue in order) and the number of commands holding
// or waiting for it.
type streamQueue struct {
	token chan struct{}
	users int
}

// defaultLockWait is the longest a command queues behind others on one
// account. A request without a deadline, behind a holder stuck on a
// database that does not answer, would otherwise wait as long as that holder.
const defaultLockWait = 5 * time.Second

// errLockWait is returned when a command gave up its place in an account's
// queue: it changed nothing and may be retried, as for a lost append race.
var errLockWait = fmt.Errorf("%w: the account's other commands took too long", ErrConcurrencyConflict)

func newStreamLocks(maxWait time.Duration) *streamLocks {
	if maxWait <= 0 {
		maxWait = defaultLockWait
	}
	l := &streamLocks{maxWait: maxWait}
	for i := range l.shards {
		l.shards[i].streams = map[uuid.UUID]*streamQueue{}
	}
	return l
}

// lock waits for id's turn, at most maxWait (errLockWait) and not beyond ctx
// (its error).
func (l *streamLocks) lock(ctx context.Context, id uuid.UUID) (unlock func(), err error) {
	// A UUID's bytes are already uniformly spread; the last one picks the shard.
	sh := &l.shards[int(id[15])%len(l.shards)]
	sh.mu.Lock()
	q := sh.streams[id]
	if q == nil {
		q = &streamQueue{token: make(chan struct{}, 1)}
		sh.streams[id] = q
	}
	q.users++
	sh.mu.Unlock()

	leave := func() {
		sh.mu.Lock()
		if q.users--; q.users == 0 {
			delete(sh.streams, id)
		}
		sh.mu.Unlock()
	}
	select {
	case q.token <- struct{}{}:
		return func() {
			<-q.token
			leave()
		}, nil
	default:
	}
	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	select {
	case q.token <- struct{}{}:
		return func() {
			<-q.token
			leave()
		}, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	case <-timer.C:
		leave()
		return nil, errLockWait
	}
}
