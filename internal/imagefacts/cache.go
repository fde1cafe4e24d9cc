package imagefacts

import (
	"container/list"
	"sync"
	"time"
)

// lru is a fixed-size least-recently-used map. The facts of a digest never
// change, so an entry is only ever evicted for room, never for age; the
// bound keeps memory flat however many distinct images a cluster runs.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used
	items map[string]*list.Element
	// expiry, when non-zero, drops entries older than it (tag caches).
	expiry time.Duration
	now    func() time.Time
}

type lruEntry[V any] struct {
	key   string
	value V
	at    time.Time
}

func newLRU[V any](max int, expiry time.Duration) *lru[V] {
	if max < 1 {
		max = 1
	}
	return &lru[V]{max: max, order: list.New(), items: map[string]*list.Element{}, expiry: expiry, now: time.Now}
}

func (c *lru[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if c.expiry > 0 && c.now().Sub(e.at) >= c.expiry {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

func (c *lru[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[V])
		e.value, e.at = v, c.now()
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry[V]{key: key, value: v, at: c.now()})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry[V]).key)
	}
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
