// Package dedup remembers the results of requests by idempotency key for a
// window, so that a retried request returns the first result and changes
// nothing. Concurrent requests with the same key wait for the first one.
package dedup

import (
	"container/list"
	"sync"
	"time"
)

// Cache maps request ids to the result of their first successful run.
// Failed runs are not remembered: a retry after a failure runs again.
type Cache[T any] struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*entry[T]
	order   *list.List // of *entry, oldest first
}

type entry[T any] struct {
	key     string
	done    chan struct{}
	result  T
	err     error
	expires time.Time
	elem    *list.Element
}

// New returns a cache that keeps results for window, at most max of them
// (the oldest are forgotten first).
func New[T any](window time.Duration, maxEntries int) *Cache[T] {
	return &Cache[T]{window: window, max: maxEntries, now: time.Now, entries: map[string]*entry[T]{}, order: list.New()}
}

// SetClock replaces the clock (tests).
func (c *Cache[T]) SetClock(now func() time.Time) { c.now = now }

// Do runs fn unless key has a remembered result, which it returns with
// duplicate set. A call with a key that is running waits for it.
func (c *Cache[T]) Do(key string, fn func() (T, error)) (result T, duplicate bool, err error) {
	for {
		c.mu.Lock()
		c.expireLocked()
		e, ok := c.entries[key]
		if !ok {
			e = &entry[T]{key: key, done: make(chan struct{})}
			c.entries[key] = e
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		<-e.done
		if e.err == nil {
			return e.result, true, nil
		}
		// the first run failed and was forgotten: try to run it ourselves
	}
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()

	result, err = fn()

	c.mu.Lock()
	e.result, e.err = result, err
	if err != nil {
		delete(c.entries, key)
	} else {
		e.expires = c.now().Add(c.window)
		e.elem = c.order.PushBack(e)
		for c.max > 0 && c.order.Len() > c.max {
			old := c.order.Remove(c.order.Front()).(*entry[T])
			delete(c.entries, old.key)
		}
	}
	c.mu.Unlock()
	close(e.done)
	return result, false, err
}

// Len returns the number of remembered results.
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	return c.order.Len()
}

func (c *Cache[T]) expireLocked() {
	now := c.now()
	for f := c.order.Front(); f != nil; f = c.order.Front() {
		e := f.Value.(*entry[T])
		if e.expires.After(now) {
			return
		}
		c.order.Remove(f)
		delete(c.entries, e.key)
	}
}
