// Package streamclient consumes MetricsService.StreamMetrics: it opens a
// stream, reconnects with backoff when it breaks, resumes a replayed
// subscription after the last batch it processed, and, for exactly-once
// streams, drops batches it already processed.
//
// Importing the package registers the gRPC compressors a stream may use:
// gzip, snappy and zstd (those of the collector's configgrpc) and lz4.
//
// # What is guaranteed where
//
//   - Best effort: the server drops a subscriber's oldest batches when its
//     buffer is full and counts them (Stats, heartbeats); a reconnect starts
//     a new subscription (sequences from 1); nothing is replayed.
//   - At least once: the server keeps every batch in the subscription's
//     replay log (bounded by bytes and age, on disk when configured). The
//     client resumes after the last batch its Handler accepted, so nothing
//     is missed while the log holds the resume point; when it does not, Run
//     returns a *DataLossError naming the lost range (or OnDataLoss decides).
//     A batch is delivered again when the process stops between Handler and
//     Checkpoint, or restarts from an older checkpoint.
//   - Exactly once: at least once, plus this client never hands a sequence
//     to Handler twice within one Client, across any number of reconnects
//     (batches are immutable, so a sequence identifies its content). Across
//     process restarts it is exactly once only if the application stores the
//     effect of Handler and the checkpoint atomically (e.g. in one
//     transaction, or Handler is idempotent by sequence), and starts the next
//     Client from that checkpoint (StreamOptions.resume_after_sequence).
//     Data the server lost (a crash before a batch reached the disk log, a
//     DataLossError) is not recovered by any client.
package streamclient // import "github.com/metricsmodule/metricsmodule/client/streamclient"

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	_ "go.opentelemetry.io/collector/config/configgrpc" // registers the snappy and zstd compressors
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor
	"google.golang.org/grpc/status"

	_ "github.com/metricsmodule/metricsmodule/internal/lz4codec" // registers the lz4 compressor
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Config configures a Client.
type Config struct {
	// Filter selects the metrics.
	Filter *pb.MetricFilter
	// Options of the stream: qos, compression, batching, heartbeat,
	// subscription_id, and resume_after_sequence to start from a checkpoint
	// the application saved.
	Options *pb.StreamOptions
	// Handler processes one batch; required. An error stops Run with it,
	// and the batch is not checkpointed.
	Handler func(ctx context.Context, b *pb.MetricBatch) error
	// Checkpoint records that the batch seq of the subscription was
	// processed; it runs after Handler, before the next batch. An error
	// stops Run with it. Optional.
	Checkpoint func(ctx context.Context, subscriptionID string, seq uint64) error
	// OnHeartbeat sees every heartbeat. Optional.
	OnHeartbeat func(hb *pb.Heartbeat)
	// OnDataLoss decides what happens when the server no longer has what
	// the stream needs: nil (or a nil return) to go on after the gap, an
	// error to stop Run with it. Unset: Run returns the *DataLossError.
	OnDataLoss func(err *DataLossError) error
	// MinBackoff and MaxBackoff bound the wait between reconnects
	// (defaults 100ms and 10s).
	MinBackoff, MaxBackoff time.Duration
	// CallOptions are added to the StreamMetrics call.
	CallOptions []grpc.CallOption
}

// Stats count what a Client did.
type Stats struct {
	// Batches handed to Handler.
	Batches uint64
	// Duplicates dropped (exactly once).
	Duplicates uint64
	// Reconnects after a broken stream.
	Reconnects uint64
	// DroppedBatches and DroppedDatapoints the server reported (best effort).
	DroppedBatches, DroppedDatapoints uint64
}

// DataLossError says that batches of the subscription are gone.
type DataLossError struct {
	// SubscriptionID names the subscription.
	SubscriptionID string
	// From is the first lost sequence.
	From uint64
	// To is the last lost sequence (0 when the whole subscription is gone).
	To uint64
	// Unknown is set when the server no longer knows the subscription.
	Unknown bool
	// Status is the server's answer.
	Status *status.Status
}

func (e *DataLossError) Error() string { return e.Status.Message() }

// GRPCStatus returns the server's status.
func (e *DataLossError) GRPCStatus() *status.Status { return e.Status }

// Client consumes one subscription.
type Client struct {
	api    pb.MetricsServiceClient
	cfg    Config
	replay bool
	dedup  bool

	mu      sync.Mutex
	subID   string
	last    uint64
	hasLast bool
	stats   Stats
}

// New returns a client over conn.
func New(conn grpc.ClientConnInterface, cfg Config) (*Client, error) {
	if cfg.Handler == nil {
		return nil, errors.New("streamclient: Handler is required")
	}
	if cfg.Options == nil {
		cfg.Options = &pb.StreamOptions{}
	}
	cfg.Options = cfg.Options.CloneVT()
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	c := &Client{api: pb.NewMetricsServiceClient(conn), cfg: cfg, subID: cfg.Options.SubscriptionId}
	switch cfg.Options.Qos {
	case pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE:
		c.replay = true
	case pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE:
		c.replay, c.dedup = true, true
	}
	if r := cfg.Options.ResumeAfterSequence; r != nil {
		c.last, c.hasLast = *r, true
	}
	return c, nil
}

// SubscriptionID returns the subscription's id (assigned by the server
// when Options named none, known after the first heartbeat).
func (c *Client) SubscriptionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subID
}

// LastSequence returns the sequence of the last batch Handler processed, or
// a later one that a heartbeat reported (a server in cluster mode moves the
// position past sequences without data for the filter); resume after it.
func (c *Client) LastSequence() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Run streams until ctx ends (returning ctx.Err()), Handler or Checkpoint
// fail, or the server refuses the stream for good (a status error, or a
// *DataLossError). A stream that breaks (UNAVAILABLE, a lost connection, the
// server shutting down, RESOURCE_EXHAUSTED) is reopened with backoff.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.cfg.MinBackoff
	for {
		progressed, err := c.runOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var loss *DataLossError
		if errors.As(err, &loss) {
			if c.cfg.OnDataLoss == nil {
				return err
			}
			if herr := c.cfg.OnDataLoss(loss); herr != nil {
				return herr
			}
			c.skip(loss)
			continue
		}
		if !retryable(err) {
			return err
		}
		if progressed {
			backoff = c.cfg.MinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
		c.mu.Lock()
		c.stats.Reconnects++
		c.mu.Unlock()
	}
}

// skip goes on after a data loss: after the gap, or with a new subscription
// when the server no longer knows this one.
func (c *Client) skip(loss *DataLossError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if loss.Unknown {
		c.last, c.hasLast = 0, false
		return
	}
	c.last, c.hasLast = loss.To, true
}

// handlerError marks an error of Handler or Checkpoint: Run returns it.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var he handlerError
	if errors.As(err, &he) {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Internal, codes.Unknown, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// runOnce runs one stream; progressed reports whether it received anything.
func (c *Client) runOnce(ctx context.Context) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := c.cfg.Options.CloneVT()
	c.mu.Lock()
	opts.SubscriptionId = c.subID
	opts.ResumeAfterSequence = nil
	if c.replay && c.hasLast {
		last := c.last
		opts.ResumeAfterSequence = &last
	}
	c.mu.Unlock()
	callOpts := append([]grpc.CallOption{grpc.ForceCodecV2(codec{})}, c.cfg.CallOptions...)
	s, err := c.api.StreamMetrics(ctx, &pb.StreamMetricsRequest{Filter: c.cfg.Filter, Options: opts}, callOpts...)
	if err != nil {
		return false, c.mapError(err)
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return progressed, c.mapError(err)
		}
		progressed = true
		switch p := resp.Payload.(type) {
		case *pb.StreamMetricsResponse_Heartbeat:
			c.heartbeat(p.Heartbeat)
		case *pb.StreamMetricsResponse_Batch:
			if err := c.batch(ctx, p.Batch); err != nil {
				return progressed, err
			}
		}
	}
}

func (c *Client) heartbeat(hb *pb.Heartbeat) {
	c.mu.Lock()
	if hb.SubscriptionId != "" {
		c.subID = hb.SubscriptionId
	}
	c.stats.DroppedBatches += hb.DroppedBatches
	c.stats.DroppedDatapoints += hb.DroppedDatapoints
	if c.replay && hb.LastSequence > c.last {
		// every batch up to it was handled or had nothing for the filter
		// (a server in cluster mode moves past such sequences): a resume
		// after it misses nothing, also on another node
		c.last, c.hasLast = hb.LastSequence, true
	}
	c.mu.Unlock()
	if c.cfg.OnHeartbeat != nil {
		c.cfg.OnHeartbeat(hb)
	}
}

func (c *Client) batch(ctx context.Context, b *pb.MetricBatch) error {
	c.mu.Lock()
	if c.dedup && c.hasLast && b.Sequence <= c.last {
		c.stats.Duplicates++
		c.mu.Unlock()
		return nil
	}
	subID := c.subID
	c.mu.Unlock()
	if err := c.cfg.Handler(ctx, b); err != nil {
		return handlerError{fmt.Errorf("handler, batch %d: %w", b.Sequence, err)}
	}
	c.mu.Lock()
	c.last, c.hasLast = b.Sequence, true
	c.stats.Batches++
	c.mu.Unlock()
	if c.cfg.Checkpoint != nil {
		if err := c.cfg.Checkpoint(ctx, subID, b.Sequence); err != nil {
			return handlerError{fmt.Errorf("checkpoint, batch %d: %w", b.Sequence, err)}
		}
	}
	return nil
}

// mapError turns a DATA_LOSS status into a *DataLossError.
func (c *Client) mapError(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.DataLoss {
		return err
	}
	loss := &DataLossError{Status: st, SubscriptionID: c.SubscriptionID()}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok {
			continue
		}
		loss.Unknown = info.Reason == "SUBSCRIPTION_UNKNOWN"
		if id := info.Metadata["subscription_id"]; id != "" {
			loss.SubscriptionID = id
		}
		loss.From, _ = strconv.ParseUint(info.Metadata["first_missing"], 10, 64)
		loss.To, _ = strconv.ParseUint(info.Metadata["last_missing"], 10, 64)
	}
	return loss
}
