package streamclient

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// script answers the n-th StreamMetrics call.
type script func(n int, req *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error

type fakeServer struct {
	pb.UnimplementedMetricsServiceServer
	script script
	mu     sync.Mutex
	calls  []*pb.StreamMetricsRequest
}

func (f *fakeServer) StreamMetrics(req *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, req)
	f.mu.Unlock()
	return f.script(n, req, srv)
}

func (f *fakeServer) requests() []*pb.StreamMetricsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pb.StreamMetricsRequest(nil), f.calls...)
}

func serve(t *testing.T, s script) (*fakeServer, *grpc.ClientConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeServer{script: s}
	srv := grpc.NewServer()
	pb.RegisterMetricsServiceServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-done
	})
	return f, conn
}

func heartbeat(id string) *pb.StreamMetricsResponse {
	return &pb.StreamMetricsResponse{Payload: &pb.StreamMetricsResponse_Heartbeat{Heartbeat: &pb.Heartbeat{SubscriptionId: id}}}
}

func batch(seq uint64) *pb.StreamMetricsResponse {
	return &pb.StreamMetricsResponse{Payload: &pb.StreamMetricsResponse_Batch{Batch: &pb.MetricBatch{
		Sequence: seq, Metrics: []*pb.MetricData{{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: float64(seq)}},
	}}}
}

func sendAll(srv grpc.ServerStreamingServer[pb.StreamMetricsResponse], msgs ...*pb.StreamMetricsResponse) error {
	for _, m := range msgs {
		if err := srv.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// replayScript sends 1..3, breaks, then resends 2, 3 and sends 4, breaks,
// then waits.
func replayScript(n int, _ *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
	switch n {
	case 0:
		if err := sendAll(srv, heartbeat("s1"), batch(1), batch(2), batch(3)); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "connection lost")
	case 1:
		if err := sendAll(srv, heartbeat("s1"), batch(2), batch(3), batch(4)); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "connection lost")
	default:
		<-srv.Context().Done()
		return nil
	}
}

type recorder struct {
	mu   sync.Mutex
	seqs []uint64
	cps  []uint64
}

func (r *recorder) handler(_ context.Context, b *pb.MetricBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, b.Sequence)
	return nil
}

func (r *recorder) checkpoint(_ context.Context, _ string, seq uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cps = append(r.cps, seq)
	return nil
}

func (r *recorder) handled() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs...)
}

func runClient(t *testing.T, c *Client) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	return func() error {
		stop()
		return <-errc
	}
}

func TestExactlyOnceDropsDuplicatesAcrossReconnects(t *testing.T) {
	f, conn := serve(t, replayScript)
	rec := &recorder{}
	c, err := New(conn, Config{
		Options:    &pb.StreamOptions{Qos: pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE},
		Handler:    rec.handler,
		Checkpoint: rec.checkpoint,
		MinBackoff: time.Millisecond,
	})
	require.NoError(t, err)
	stop := runClient(t, c)
	require.Eventually(t, func() bool { return len(f.requests()) == 3 }, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)

	assert.Equal(t, []uint64{1, 2, 3, 4}, rec.handled(), "each sequence once")
	assert.Equal(t, []uint64{1, 2, 3, 4}, rec.cps)
	st := c.Stats()
	assert.Equal(t, uint64(2), st.Duplicates)
	assert.Equal(t, uint64(2), st.Reconnects)
	assert.Equal(t, uint64(4), st.Batches)

	reqs := f.requests()
	assert.Nil(t, reqs[0].Options.ResumeAfterSequence)
	assert.Empty(t, reqs[0].Options.SubscriptionId)
	assert.Equal(t, "s1", reqs[1].Options.SubscriptionId, "reconnects name the server-assigned subscription")
	assert.Equal(t, uint64(3), reqs[1].Options.GetResumeAfterSequence())
	assert.Equal(t, uint64(4), reqs[2].Options.GetResumeAfterSequence())
	assert.Equal(t, "s1", c.SubscriptionID())
	assert.Equal(t, uint64(4), c.LastSequence())
}

func TestAtLeastOnceDeliversWhatTheServerResends(t *testing.T) {
	_, conn := serve(t, replayScript)
	rec := &recorder{}
	c, err := New(conn, Config{
		Options:    &pb.StreamOptions{Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE},
		Handler:    rec.handler,
		MinBackoff: time.Millisecond,
	})
	require.NoError(t, err)
	stop := runClient(t, c)
	require.Eventually(t, func() bool { return len(rec.handled()) == 6 }, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, []uint64{1, 2, 3, 2, 3, 4}, rec.handled())
}

func TestStartsFromACheckpoint(t *testing.T) {
	f, conn := serve(t, func(n int, _ *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
		if n == 0 {
			return sendAll(srv, heartbeat("saved"), batch(5), batch(6))
		}
		<-srv.Context().Done()
		return nil
	})
	rec := &recorder{}
	c, err := New(conn, Config{
		Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE, SubscriptionId: "saved", ResumeAfterSequence: ptr(uint64(5)),
		},
		Handler:    rec.handler,
		MinBackoff: time.Millisecond,
	})
	require.NoError(t, err)
	stop := runClient(t, c)
	require.Eventually(t, func() bool { return len(rec.handled()) == 1 }, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, []uint64{6}, rec.handled())
	assert.Equal(t, uint64(5), f.requests()[0].Options.GetResumeAfterSequence())
}

func ptr[T any](v T) *T { return &v }

func dataLoss(first, last string) error {
	st := status.New(codes.DataLoss, `subscription "s": batches 2..9 are no longer in the replay log`)
	st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: "REPLAY_LOG_OUTRUN", Metadata: map[string]string{
		"subscription_id": "s", "first_missing": first, "last_missing": last,
	}})
	return st.Err()
}

func TestDataLoss(t *testing.T) {
	lossScript := func(n int, _ *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
		if n == 0 {
			if err := sendAll(srv, heartbeat("s"), batch(1)); err != nil {
				return err
			}
			return dataLoss("2", "9")
		}
		if err := sendAll(srv, heartbeat("s"), batch(10)); err != nil {
			return err
		}
		<-srv.Context().Done()
		return nil
	}
	t.Run("returned", func(t *testing.T) {
		_, conn := serve(t, lossScript)
		rec := &recorder{}
		c, err := New(conn, Config{Options: &pb.StreamOptions{Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE}, Handler: rec.handler})
		require.NoError(t, err)
		err = c.Run(context.Background())
		var loss *DataLossError
		require.ErrorAs(t, err, &loss)
		assert.Equal(t, "s", loss.SubscriptionID)
		assert.Equal(t, uint64(2), loss.From)
		assert.Equal(t, uint64(9), loss.To)
		assert.False(t, loss.Unknown)
		assert.Equal(t, codes.DataLoss, status.Code(err))
		assert.Equal(t, []uint64{1}, rec.handled())
	})
	t.Run("accepted", func(t *testing.T) {
		f, conn := serve(t, lossScript)
		rec := &recorder{}
		var seen *DataLossError
		c, err := New(conn, Config{
			Options:    &pb.StreamOptions{Qos: pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE},
			Handler:    rec.handler,
			OnDataLoss: func(e *DataLossError) error { seen = e; return nil },
		})
		require.NoError(t, err)
		stop := runClient(t, c)
		require.Eventually(t, func() bool { return len(rec.handled()) == 2 }, 10*time.Second, time.Millisecond)
		require.ErrorIs(t, stop(), context.Canceled)
		require.NotNil(t, seen)
		assert.Equal(t, []uint64{1, 10}, rec.handled())
		assert.Equal(t, uint64(9), f.requests()[1].Options.GetResumeAfterSequence(), "goes on after the gap")
	})
}

func TestHandlerErrorStopsWithoutCheckpoint(t *testing.T) {
	f, conn := serve(t, func(_ int, _ *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
		return sendAll(srv, heartbeat("h"), batch(1), batch(2), batch(3))
	})
	rec := &recorder{}
	boom := errors.New("disk full")
	c, err := New(conn, Config{
		Options: &pb.StreamOptions{Qos: pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE},
		Handler: func(ctx context.Context, b *pb.MetricBatch) error {
			if b.Sequence == 2 {
				return boom
			}
			return rec.handler(ctx, b)
		},
		Checkpoint: rec.checkpoint,
	})
	require.NoError(t, err)
	err = c.Run(context.Background())
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "batch 2")
	assert.Equal(t, []uint64{1}, rec.cps)
	assert.Equal(t, uint64(1), c.LastSequence())
	assert.Len(t, f.requests(), 1, "not retried")
}

func TestBestEffortReconnectsWithoutResume(t *testing.T) {
	f, conn := serve(t, func(n int, _ *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
		if n == 0 {
			hb := heartbeat("be")
			hb.GetHeartbeat().DroppedBatches = 2
			hb.GetHeartbeat().DroppedDatapoints = 20
			if err := sendAll(srv, hb, batch(1)); err != nil {
				return err
			}
			return status.Error(codes.Unavailable, "shutting down")
		}
		if err := sendAll(srv, heartbeat("be"), batch(1)); err != nil {
			return err
		}
		<-srv.Context().Done()
		return nil
	})
	rec := &recorder{}
	c, err := New(conn, Config{Handler: rec.handler, MinBackoff: time.Millisecond})
	require.NoError(t, err)
	stop := runClient(t, c)
	require.Eventually(t, func() bool { return len(rec.handled()) == 2 }, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, []uint64{1, 1}, rec.handled(), "a new best-effort subscription numbers from 1 again")
	assert.Nil(t, f.requests()[1].Options.ResumeAfterSequence)
	assert.Equal(t, uint64(20), c.Stats().DroppedDatapoints)
	assert.Equal(t, uint64(2), c.Stats().DroppedBatches)
}

func TestTerminalStatusIsReturned(t *testing.T) {
	f, conn := serve(t, func(int, *pb.StreamMetricsRequest, grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
		return status.Error(codes.InvalidArgument, "filter.names[0]: bad")
	})
	c, err := New(conn, Config{Handler: func(context.Context, *pb.MetricBatch) error { return nil }})
	require.NoError(t, err)
	err = c.Run(context.Background())
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Len(t, f.requests(), 1)
}

func TestNewNeedsAHandler(t *testing.T) {
	_, err := New(nil, Config{})
	require.Error(t, err)
}

func TestCompressorsRegistered(t *testing.T) {
	for _, name := range []string{"gzip", "snappy", "zstd", "lz4"} {
		assert.NotNil(t, encoding.GetCompressor(name), name)
	}
}
