package query

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// limiter bounds the queries evaluated at once; others wait in a bounded
// queue until a slot frees or their context ends.
type limiter struct {
	slots     chan struct{}
	waiting   atomic.Int64
	maxQueued int64
}

func newLimiter(maxConcurrent, maxQueued int) *limiter {
	return &limiter{slots: make(chan struct{}, maxConcurrent), maxQueued: int64(maxQueued)}
}

// acquire takes a slot, waiting while ctx lasts. It returns the time waited.
func (l *limiter) acquire(ctx context.Context) (time.Duration, error) {
	select {
	case l.slots <- struct{}{}:
		return 0, nil
	default:
	}
	if n := l.waiting.Add(1); n > l.maxQueued {
		l.waiting.Add(-1)
		return 0, &Error{Kind: KindOverloaded, Err: fmt.Errorf(
			"query.max_concurrent: all %d query slots are busy and query.max_queued (%d) queries already wait; retry later, or raise query.max_concurrent or query.max_queued",
			cap(l.slots), l.maxQueued)}
	}
	defer l.waiting.Add(-1)
	start := time.Now()
	select {
	case l.slots <- struct{}{}:
		return time.Since(start), nil
	case <-ctx.Done():
		waited := time.Since(start)
		kind := KindTimeout
		if errors.Is(ctx.Err(), context.Canceled) {
			kind = KindCanceled
		}
		return waited, &Error{Kind: kind, Err: fmt.Errorf("waited %s for one of the %d query slots (query.max_concurrent): %w",
			waited.Round(time.Millisecond), cap(l.slots), ctx.Err())}
	}
}

func (l *limiter) release() { <-l.slots }

// running and queued report the limiter's state.
func (l *limiter) running() int { return len(l.slots) }
func (l *limiter) queued() int  { return int(l.waiting.Load()) }
