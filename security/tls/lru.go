package tls

import "sync"

// lru is a bounded map that, when full, drops the entry used least
// recently. It backs the verified-certificate cache and the client's
// session cache. A scan finds the entry to drop: it runs only when a new
// entry arrives at a full cache, next to a full handshake that costs far
// more.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	entries map[K]*lruEntry[V]
	tick    uint64 // advances on every use; entries keep the last
}

type lruEntry[V any] struct {
	v    V
	used uint64
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, entries: make(map[K]*lruEntry[V])}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.tick++
	e.used = c.tick
	return e.v, true
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		var oldest K
		first, least := true, uint64(0)
		for k, e := range c.entries {
			if first || e.used < least {
				oldest, least, first = k, e.used, false
			}
		}
		delete(c.entries, oldest)
	}
	c.tick++
	c.entries[k] = &lruEntry[V]{v: v, used: c.tick}
}

func (c *lru[K, V]) delete(k K) {
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

// len is the number of entries.
func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
