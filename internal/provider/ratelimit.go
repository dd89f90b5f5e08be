package provider

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket over data points: it refills at rate per
// second up to one second's worth. A batch larger than the bucket passes when
// the bucket is full and leaves it in debt, so the long-run rate holds for
// any batch size.
type rateLimiter struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// newRateLimiter returns nil (unlimited) when rate <= 0.
func newRateLimiter(rate float64, now func() time.Time) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	return &rateLimiter{rate: rate, tokens: rate, last: now(), now: now}
}

// allow takes n tokens if they are there.
func (r *rateLimiter) allow(n int) bool {
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.now()
	r.tokens = min(r.rate, r.tokens+t.Sub(r.last).Seconds()*r.rate)
	r.last = t
	need := float64(n)
	if r.tokens >= need || (need > r.rate && r.tokens >= r.rate) {
		r.tokens -= need
		return true
	}
	return false
}
