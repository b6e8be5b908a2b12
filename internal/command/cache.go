package command

import (
	"sync"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// aggregates keeps the state of the accounts this process last loaded or
// appended to, so that a command on a known account skips the load: one round
// trip instead of two.
//
// A cached state may be behind the store (another process appended since),
// never ahead: it is only written from a load or after a committed append.
// unique(stream_id, version) stays the guard: appending version N+1 after a
// cached N either fails (the cache was behind: the service reads the stream
// and decides again) or is the true next version, its transaction id taken
// after N committed, as DESIGN §4 requires. What a stale state could get wrong
// the service never trusts: a rejection, a failed If-Match or an append whose
// fate is unknown sends it back to the store.
//
// Callers lead the stream's queue (streamQueues), so one stream's entry is never
// read and written at once.
type aggregates struct {
	perShard int
	shards   [aggregateShards]aggregateShard
}

const aggregateShards = 64

type aggregateShard struct {
	mu sync.Mutex
	m  map[uuid.UUID]domain.AccountState
}

// newAggregates keeps up to size accounts; size <= 0 keeps none (nil).
func newAggregates(size int) *aggregates {
	if size <= 0 {
		return nil
	}
	c := &aggregates{perShard: max(size/aggregateShards, 1)}
	for i := range c.shards {
		c.shards[i].m = map[uuid.UUID]domain.AccountState{}
	}
	return c
}

func (c *aggregates) shard(id uuid.UUID) *aggregateShard {
	return &c.shards[int(id[15])%aggregateShards]
}

// get returns a fresh aggregate of id's cached state.
func (c *aggregates) get(id uuid.UUID) (*domain.Account, bool) {
	if c == nil {
		return nil, false
	}
	sh := c.shard(id)
	sh.mu.Lock()
	st, ok := sh.m[id]
	sh.mu.Unlock()
	if !ok {
		return nil, false
	}
	a, err := domain.AccountFromState(st)
	if err != nil {
		c.drop(id)
		return nil, false
	}
	return a, true
}

// put keeps a's state, committed events only: call it after a load or after
// the append of a's events committed (and MarkCommitted).
func (c *aggregates) put(a *domain.Account) {
	if c == nil || !a.Exists() || len(a.Uncommitted()) > 0 {
		return
	}
	sh := c.shard(a.ID())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[a.ID()]; !ok && len(sh.m) >= c.perShard {
		for k := range sh.m { // an arbitrary entry makes room
			delete(sh.m, k)
			break
		}
	}
	sh.m[a.ID()] = a.State()
}

// drop forgets id, so that the next command reads its stream.
func (c *aggregates) drop(id uuid.UUID) {
	if c == nil {
		return
	}
	sh := c.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}
