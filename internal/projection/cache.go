package projection

import (
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// stateCache keeps, for an active Runner, the state each account's rows hold
// after the last committed batch, so that a batch reads from the read
// database only the accounts it has not seen. It is valid only while this
// Runner is the only writer: it is cleared whenever the Runner (re)loads its
// checkpoints and after any failed batch, and the compare-and-set on the
// checkpoint rows (position and updated_at) fails, clearing it, as soon as
// anyone else has touched them.
type stateCache[T any] struct {
	m     map[uuid.UUID]T
	limit int
}

func newStateCache[T any](limit int) *stateCache[T] {
	return &stateCache[T]{m: map[uuid.UUID]T{}, limit: limit}
}

func (c *stateCache[T]) get(id uuid.UUID) (T, bool) {
	v, ok := c.m[id]
	return v, ok
}

// putAll stores m. Past the limit it first forgets about a quarter of the
// entries, at random (map order): a miss only costs a read.
func (c *stateCache[T]) putAll(m map[uuid.UUID]T) {
	if c.limit <= 0 {
		return
	}
	if len(c.m)+len(m) > c.limit {
		drop := len(c.m)/4 + len(m)
		for id := range c.m {
			if drop == 0 {
				break
			}
			delete(c.m, id)
			drop--
		}
	}
	for id, v := range m {
		c.m[id] = v
	}
}

func (c *stateCache[T]) clear() { clear(c.m) }

// caches holds one stateCache per kind of projection.
type caches struct {
	balances *stateCache[domain.AccountState]
	history  *stateCache[streamState]
	daily    *stateCache[streamState]
}

func newCaches(limit int) *caches {
	return &caches{
		balances: newStateCache[domain.AccountState](limit),
		history:  newStateCache[streamState](limit),
		daily:    newStateCache[streamState](limit),
	}
}

func (c *caches) clear() {
	c.balances.clear()
	c.history.clear()
	c.daily.clear()
}
