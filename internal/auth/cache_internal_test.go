package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"
)

func TestTokenCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newTokenCache(100)
	now := time.Now()
	for i := range 10000 {
		var k [sha256.Size]byte
		binary.BigEndian.PutUint64(k[:], uint64(i))
		c.put(k, cacheEntry{exp: now.Add(time.Hour)}, now)
		if n := c.len(); n > 100 {
			t.Fatalf("%d entries after %d inserts, cap 100", n, i+1)
		}
	}
	// Expired entries go first.
	c = newTokenCache(10)
	var live [sha256.Size]byte
	live[0] = 0xff
	c.put(live, cacheEntry{exp: now.Add(time.Hour)}, now)
	for i := range 9 {
		var k [sha256.Size]byte
		binary.BigEndian.PutUint64(k[:], uint64(i))
		c.put(k, cacheEntry{exp: now.Add(time.Minute)}, now)
	}
	later := now.Add(2 * time.Minute)
	var k [sha256.Size]byte
	k[1] = 1
	c.put(k, cacheEntry{exp: later.Add(time.Hour)}, later)
	if _, ok := c.get(live, later); !ok {
		t.Error("a live entry was evicted while expired ones were there")
	}
	if n := c.len(); n != 2 {
		t.Errorf("%d entries, want 2 (the expired ones swept)", n)
	}
	if _, ok := c.get(k, later.Add(2*time.Hour)); ok {
		t.Error("an expired entry was served")
	}
}
