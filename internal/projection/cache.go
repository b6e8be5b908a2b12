package projection

import (
	"github.com/google/uuid"
)

// Cache is the per-account state a projection keeps between batches
// (Projection.NewCache). It is valid only while its Runner is the only
// writer: it is cleared whenever the Runner (re)loads its checkpoints and
// after any failed batch, and the compare-and-set on the checkpoint rows
// (position and updated_at) fails, clearing it, as soon as anyone else has
// touched them.
type Cache interface {
	Clear()
}

// stateCache is a Cache of one kind of state.
type stateCache[T any] struct {
	m     map[uuid.UUID]T
	limit int
}

func newStateCache[T any](limit int) *stateCache[T] {
	return &stateCache[T]{m: map[uuid.UUID]T{}, limit: limit}
}

// cacheOf returns c as the projection's own kind of cache; a Cache made by
// another projection, or none, gives an empty one that keeps nothing.
func cacheOf[T any](c Cache) *stateCache[T] {
	if sc, ok := c.(*stateCache[T]); ok {
		return sc
	}
	return newStateCache[T](0)
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

// Clear forgets every state.
func (c *stateCache[T]) Clear() { clear(c.m) }

// split returns the states of ids that cache holds, and the ids it does not.
func split[T any](cache *stateCache[T], ids []uuid.UUID) (map[uuid.UUID]T, []uuid.UUID) {
	have := make(map[uuid.UUID]T, len(ids))
	var missing []uuid.UUID
	for _, id := range ids {
		if v, ok := cache.get(id); ok {
			have[id] = v
		} else {
			missing = append(missing, id)
		}
	}
	return have, missing
}
