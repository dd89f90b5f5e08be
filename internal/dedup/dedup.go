// Package dedup remembers the results of requests by idempotency key for a
// window, so that a retried request returns the first result and changes
// nothing. Concurrent requests with the same key wait for the first one.
// A Journal keeps the remembered results across restarts of the process,
// kill -9 included (journal.go).
package dedup

import (
	"container/list"
	"sync"
	"time"
)

// Cache maps request ids to the result of their first successful run.
// Failed runs are not remembered: a retry after a failure runs again.
type Cache[T any] struct {
	window   time.Duration
	max      int
	maxBytes int64
	size     func(T) int
	now      func() time.Time
	bytes    int64 // of the remembered results: keys, results, entryOverhead
	// remember is called with each new result before Do returns it.
	remember func(key string, result T)

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
	bytes   int64
}

// entryOverhead approximates the memory of one remembered result besides its
// key and result: the entry, its list element and its map slot.
const entryOverhead = 160

// New returns a cache that keeps results for window, at most max of them
// (the oldest are forgotten first).
func New[T any](window time.Duration, maxEntries int) *Cache[T] {
	return &Cache[T]{window: window, max: maxEntries, now: time.Now, entries: map[string]*entry[T]{}, order: list.New()}
}

// WithMaxBytes bounds the memory of the remembered results to about maxBytes
// (0: no bound): each counts its key, size(result) (nil: 0) and a fixed
// overhead, and the oldest are forgotten first. It returns c.
func (c *Cache[T]) WithMaxBytes(maxBytes int64, size func(T) int) *Cache[T] {
	c.maxBytes, c.size = maxBytes, size
	return c
}

// OnRemember installs fn, called with each new result of a successful run
// in the goroutine of Do, after the run and before Do returns the result
// (and before calls waiting for the same key get it): the place to journal
// it so that it outlives the process. It returns c.
func (c *Cache[T]) OnRemember(fn func(key string, result T)) *Cache[T] {
	c.remember = fn
	return c
}

// Restore remembers result for key as if a run had returned it at at (the
// replay of a journal at start); it expires at at+window. It returns false
// when that is already past or key is running now.
func (c *Cache[T]) Restore(key string, result T, at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	expires := at.Add(c.window)
	if !expires.After(c.now()) {
		return false
	}
	if old, ok := c.entries[key]; ok {
		if old.elem == nil {
			return false // running
		}
		c.removeLocked(old.elem)
	}
	e := &entry[T]{key: key, done: make(chan struct{}), result: result, expires: expires}
	close(e.done)
	c.entries[key] = e
	c.addLocked(e)
	return true
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
	if err == nil && c.remember != nil {
		c.remember(key, result)
	}

	c.mu.Lock()
	e.result, e.err = result, err
	if err != nil {
		delete(c.entries, key)
	} else {
		e.expires = c.now().Add(c.window)
		c.addLocked(e)
	}
	c.mu.Unlock()
	close(e.done)
	return result, false, err
}

// addLocked accounts a finished entry and forgets the oldest beyond the
// bounds.
func (c *Cache[T]) addLocked(e *entry[T]) {
	e.bytes = int64(len(e.key)) + entryOverhead
	if c.size != nil {
		e.bytes += int64(c.size(e.result))
	}
	e.elem = c.order.PushBack(e)
	c.bytes += e.bytes
	for c.order.Len() > 0 && ((c.max > 0 && c.order.Len() > c.max) || (c.maxBytes > 0 && c.bytes > c.maxBytes)) {
		c.removeLocked(c.order.Front())
	}
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
		if f.Value.(*entry[T]).expires.After(now) {
			return
		}
		c.removeLocked(f)
	}
}

func (c *Cache[T]) removeLocked(f *list.Element) {
	e := c.order.Remove(f).(*entry[T])
	c.bytes -= e.bytes
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
}

// Bytes returns the accounted memory of the remembered results.
func (c *Cache[T]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	return c.bytes
}
