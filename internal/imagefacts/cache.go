package imagefacts

import (
	"container/list"
	"sync"
	"time"
)

// lru is a fixed-size least-recently-used map. The facts of a digest never
// change, so an entry is only ever evicted for room, never for age; the
// bound keeps memory flat however many distinct images a cluster runs.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used
	items map[K]*list.Element
	// expiry, when non-zero, drops entries older than it (tag caches).
	expiry time.Duration
	now    func() time.Time
}

type lruEntry[K comparable, V any] struct {
	key   K
	value V
	at    time.Time
}

func newLRU[K comparable, V any](max int, expiry time.Duration) *lru[K, V] {
	if max < 1 {
		max = 1
	}
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}, expiry: expiry, now: time.Now}
}

func (c *lru[K, V]) get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[K, V])
	if c.expiry > 0 && c.now().Sub(e.at) >= c.expiry {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

func (c *lru[K, V]) put(key K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[K, V])
		e.value, e.at = v, c.now()
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry[K, V]{key: key, value: v, at: c.now()})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry[K, V]).key)
	}
}

func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
