package query

import (
	"context"
	"errors"
	"time"
)

// Run runs fn holding one evaluation slot (query.max_concurrent, waiting in
// query.max_queued like a query), with ctx bounded by query.timeout: reads
// that do not go through PromQL (GetMetrics' raw pages) hold to the same
// bounds as queries. It returns the time waited for the slot. An error of
// fn that is a context end becomes an *Error of KindTimeout or
// KindCanceled; other errors are returned as they are.
func (e *Engine) Run(ctx context.Context, fn func(ctx context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	waited, err := e.limiter.acquire(ctx)
	if err != nil {
		return waited, err
	}
	defer e.limiter.release()
	if err := fn(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return waited, classify(err)
		}
		return waited, err
	}
	return waited, nil
}
