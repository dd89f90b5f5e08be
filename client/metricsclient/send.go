package metricsclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// RefusedError reports items of a best-effort batch the server refused.
type RefusedError struct {
	// RequestID of the batch.
	RequestID string
	// Refused counts the refused items.
	Refused uint32
	// Results of the refused items, with index, code, field and message.
	Results []*pb.MetricResult
	// Items of the batch, to look up a result's index.
	Items []*pb.MetricData
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "metricsclient: batch %s: %d items refused", e.RequestID, e.Refused)
	for i, r := range e.Results {
		if i == 3 {
			fmt.Fprintf(&b, "; ...")
			break
		}
		name := ""
		if int(r.Index) < len(e.Items) {
			name = e.Items[r.Index].GetName()
		}
		fmt.Fprintf(&b, "; metrics[%d] %s: %s", r.Index, name, r.Message)
	}
	return b.String()
}

// GiveUpError reports a batch that was not acknowledged: refused for good,
// or still failing after the retry policy's MaxElapsed.
type GiveUpError struct {
	// RequestID of the batch.
	RequestID string
	// Items in the batch.
	Items int
	// Attempts made.
	Attempts int
	// Err is the last error (a gRPC status error).
	Err error
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("metricsclient: batch %s (%d items) given up after %d attempts: %v", e.RequestID, e.Items, e.Attempts, e.Err)
}

func (e *GiveUpError) Unwrap() error { return e.Err }

// Retryable reports whether a call that failed with err may succeed when
// sent again: UNAVAILABLE (the server is down or restarting, a lost
// connection), RESOURCE_EXHAUSTED (the memory limiter), DEADLINE_EXCEEDED,
// ABORTED.
func Retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// RecordBatch sends items in one RecordBatchMetrics with requestID as its
// idempotency key, retrying (with the same key) under the retry policy
// while the error is Retryable and ctx lasts. A RefusedError reports the
// items a best-effort batch refused; the response is returned with it.
func (c *Client) RecordBatch(ctx context.Context, requestID string, items []*pb.MetricData, mode pb.BatchMode) (*pb.RecordBatchMetricsResponse, error) {
	return c.sendBatch(ctx, requestID, items, mode)
}

func (c *Client) sendBatch(ctx context.Context, id string, items []*pb.MetricData, mode pb.BatchMode) (*pb.RecordBatchMetricsResponse, error) {
	req := &pb.RecordBatchMetricsRequest{Metrics: items, RequestId: id, Options: &pb.BatchOptions{Mode: mode}}
	if len(c.cfg.resource) > 0 {
		req.Resource = &pb.Resource{Attributes: c.cfg.resource}
	}
	start := time.Now()
	backoff := c.cfg.retry.Initial
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
		resp, err := c.api.RecordBatchMetrics(cctx, req)
		cancel()
		if err == nil {
			c.batches.Add(1)
			if resp.Duplicate {
				c.duplicates.Add(1)
			}
			c.accepted.Add(uint64(resp.AcceptedCount))
			if resp.RejectedCount > 0 {
				c.refused.Add(uint64(resp.RejectedCount))
				return resp, &RefusedError{RequestID: id, Refused: resp.RejectedCount, Results: resp.Results, Items: items}
			}
			return resp, nil
		}
		if ctx.Err() != nil || !Retryable(err) || time.Since(start)+backoff > c.cfg.retry.MaxElapsed {
			c.refused.Add(uint64(len(items)))
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return nil, &GiveUpError{RequestID: id, Items: len(items), Attempts: attempt, Err: err}
		}
		c.retries.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.retry.Max)
	}
}
