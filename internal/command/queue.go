package command

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// streamQueues line up the commands of one api process by account. The first
// command to find its account's queue idle leads: it takes the commands queued
// behind it as one group, which the service decides in order on one aggregate
// and appends in one statement (group commit: one WAL flush for the group
// instead of one each), answers every member, and hands the queue to the next
// command waiting. A lone command is a group of one and goes straight through.
//
// Queuing is only a throughput aid: unique(stream_id, version) in the database
// stays the guard, and commands from other processes still race and retry.
// Each stream has its own queue, made when a command first finds it missing
// and dropped when the last one leaves, so two hot streams never share one.
type streamQueues struct {
	shards   [64]queueShard
	maxWait  time.Duration
	maxGroup int
}

type queueShard struct {
	mu      sync.Mutex
	streams map[uuid.UUID]*streamQueue
}

// streamQueue is one stream's line: whether a leader is at work, and the
// commands waiting for their turn, in arrival order.
type streamQueue struct {
	running bool
	waiting []*queuedCommand
}

// queuedCommand is one command on its way through a stream's queue.
type queuedCommand struct {
	name   string
	ctx    context.Context
	opts   Options
	decide func(a *domain.Account) error

	// res and err are written by the leader before it signals ready.
	res Result
	err error

	// ready is signalled once: when the result is in, or when the queue is
	// this command's to lead.
	ready chan struct{}
	// state is guarded by the shard's mutex.
	state queueState
}

type queueState uint8

const (
	waiting queueState = iota // in the line
	taken                     // in a leader's group: its result will come
	leading                   // the queue is its own to run
)

// solo reports whether c must be appended alone: a transfer step appends
// through its own statement, with the saga's row.
func (c *queuedCommand) solo() bool { return c.opts.appendWith != nil }

// defaultLockWait is the longest a command waits in an account's line. A
// request without a deadline, behind a leader stuck on a database that does
// not answer, would otherwise wait as long as that leader.
const defaultLockWait = 5 * time.Second

// defaultMaxGroup bounds a group: its statement, its answers and the wait of
// its first member for the last.
const defaultMaxGroup = 64

// errLockWait is returned when a command gave up its place in an account's
// line: it changed nothing and may be retried, as for a lost append race.
var errLockWait = fmt.Errorf("%w: the account's other commands took too long", ErrConcurrencyConflict)

func newStreamQueues(maxWait time.Duration, maxGroup int) *streamQueues {
	if maxWait <= 0 {
		maxWait = defaultLockWait
	}
	if maxGroup <= 0 {
		maxGroup = defaultMaxGroup
	}
	q := &streamQueues{maxWait: maxWait, maxGroup: maxGroup}
	for i := range q.shards {
		q.shards[i].streams = map[uuid.UUID]*streamQueue{}
	}
	return q
}

func (q *streamQueues) shard(id uuid.UUID) *queueShard {
	// A UUID's bytes are already uniformly spread; the last one picks the shard.
	return &q.shards[int(id[15])%len(q.shards)]
}

// join puts c in id's line and waits. lead true: the queue is c's to run
// (lead, then handOff). lead false and err nil: a leader answered c (c.res,
// c.err). An error: c gave up, at ctx's end or after maxWait (errLockWait);
// c.res must not be read then. A command that gives up after a leader took
// it may still be appended with the group: its outcome is unknown, as for any
// request whose context ends while its append is under way.
func (q *streamQueues) join(id uuid.UUID, c *queuedCommand) (lead bool, err error) {
	sh := q.shard(id)
	sh.mu.Lock()
	sq := sh.streams[id]
	if sq == nil {
		sq = &streamQueue{}
		sh.streams[id] = sq
	}
	if !sq.running {
		sq.running = true
		c.state = leading
		sh.mu.Unlock()
		return true, nil
	}
	c.state = waiting
	c.ready = make(chan struct{}, 1)
	sq.waiting = append(sq.waiting, c)
	sh.mu.Unlock()

	timer := time.NewTimer(q.maxWait)
	defer timer.Stop()
	var giveUp error
	select {
	case <-c.ready:
		return c.state == leading, nil
	case <-c.ctx.Done():
		giveUp = c.ctx.Err()
	case <-timer.C:
		giveUp = errLockWait
	}
	sh.mu.Lock()
	state := c.state
	if state == waiting {
		sq.waiting = slices.DeleteFunc(sq.waiting, func(w *queuedCommand) bool { return w == c })
	}
	sh.mu.Unlock()
	switch {
	case state == waiting:
		return false, giveUp
	case state == leading:
		// Handed the queue as it gave up: it must still run the queue (lead
		// answers c itself with its context's error) or the line would stall.
		return true, nil
	case errors.Is(giveUp, errLockWait):
		// Taken: the group is under way, bounded by its members' deadlines.
		<-c.ready
		return false, nil
	default:
		return false, giveUp
	}
}

// take returns the group first leads: first, then the commands waiting behind
// it that may share its append, in order, up to maxGroup. A command waiting
// with its context already ended is left to notice that itself.
func (q *streamQueues) take(id uuid.UUID, first *queuedCommand) []*queuedCommand {
	group := []*queuedCommand{first}
	if first.solo() {
		return group
	}
	sh := q.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sq := sh.streams[id]
	rest := sq.waiting[:0]
	for i, c := range sq.waiting {
		if len(group) == q.maxGroup || c.solo() || sharesKey(group, c) {
			// The line keeps its order: nothing behind a command that
			// cannot join jumps ahead of it.
			rest = append(rest, sq.waiting[i:]...)
			break
		}
		if c.ctx.Err() != nil {
			rest = append(rest, c)
			continue
		}
		c.state = taken
		group = append(group, c)
	}
	clear(sq.waiting[len(rest):])
	sq.waiting = rest
	return group
}

// sharesKey reports whether c carries the idempotency key of a command in
// group: a duplicate waits for the first one's answer, to replay it.
func sharesKey(group []*queuedCommand, c *queuedCommand) bool {
	if c.opts.Idempotency == nil {
		return false
	}
	for _, g := range group {
		if g.opts.Idempotency != nil && g.opts.Idempotency.Scope == c.opts.Idempotency.Scope {
			return true
		}
	}
	return false
}

// handOff answers group's members (the leader, group[0], reads its own) and
// passes the queue to the next command in line, or drops it when none waits.
func (q *streamQueues) handOff(id uuid.UUID, group []*queuedCommand) {
	for _, c := range group[1:] {
		c.ready <- struct{}{}
	}
	sh := q.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sq := sh.streams[id]
	if len(sq.waiting) == 0 {
		delete(sh.streams, id)
		return
	}
	next := sq.waiting[0]
	sq.waiting[0] = nil
	sq.waiting = sq.waiting[1:]
	next.state = leading
	next.ready <- struct{}{}
}
