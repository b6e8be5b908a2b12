package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCache remembers verified tokens by the SHA-256 of the token (the token
// itself is never kept), each until its exp, so that a client sending the
// same token again costs a hash and a map lookup, not a signature check.
//
// It holds at most max entries: a full cache first drops expired entries,
// then an arbitrary eighth of the rest. Only verified tokens enter it, so a
// client cannot grow it with garbage, and a flood of valid tokens costs an
// amortised constant per insert.
type tokenCache struct {
	mu  sync.RWMutex
	max int
	m   map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	p   Principal
	exp time.Time
	kid string // the key that verified it; it must still be in the set
}

func newTokenCache(maxEntries int) *tokenCache {
	return &tokenCache{max: maxEntries, m: make(map[[sha256.Size]byte]cacheEntry)}
}

func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok {
		return cacheEntry{}, false
	}
	if !now.Before(e.exp) {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
		return cacheEntry{}, false
	}
	return e, true
}

func (c *tokenCache) put(key [sha256.Size]byte, e cacheEntry, now time.Time) {
	if !now.Before(e.exp) {
		return // accepted within the leeway: not worth keeping
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.exp) {
				delete(c.m, k)
			}
		}
		// Map iteration order is unspecified, which is all the fairness an
		// overflowing cache needs.
		for k := range c.m {
			if len(c.m) <= c.max-c.max/8-1 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = e
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
