package metricsservicereceiver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/client/streamclient"
	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

const streamWait = 15 * time.Second

// startStreamReceiver starts a receiver on a free port with a nop pipeline.
func startStreamReceiver(t *testing.T, mutate func(*metricsstoreextension.Config)) *metricsReceiver {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	require.NoError(t, cfg.Validate())
	next, host := storePipeline(t, t.TempDir(), mutate, consumertest.NewNop())
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// recordGauges records gauges name{i="v", parity=...} = v for v in [from, from+n).
func recordGauges(t *testing.T, c pb.MetricsServiceClient, name string, from, n int) {
	t.Helper()
	req := &pb.RecordBatchMetricsRequest{Resource: &pb.Resource{Attributes: map[string]string{"service.name": "api"}}}
	for v := from; v < from+n; v++ {
		parity := "even"
		if v%2 == 1 {
			parity = "odd"
		}
		req.Metrics = append(req.Metrics, &pb.MetricData{
			Name: name, Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: float64(v),
			Labels: map[string]string{"i": strconv.Itoa(v), "parity": parity, "path": "/api/v1/users/profile/settings"},
		})
	}
	_, err := c.RecordBatchMetrics(context.Background(), req)
	require.NoError(t, err)
}

// rawStream reads a StreamMetrics call into a channel.
type rawStream struct {
	t      *testing.T
	s      grpc.ServerStreamingClient[pb.StreamMetricsResponse]
	cancel context.CancelFunc
	msgs   chan *pb.StreamMetricsResponse
	errc   chan error
	once   sync.Once
	done   chan struct{}
}

func openRaw(t *testing.T, c pb.MetricsServiceClient, req *pb.StreamMetricsRequest, read bool, opts ...grpc.CallOption) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.StreamMetrics(ctx, req, opts...)
	require.NoError(t, err)
	r := &rawStream{t: t, s: s, cancel: cancel, msgs: make(chan *pb.StreamMetricsResponse, 100_000), errc: make(chan error, 1), done: make(chan struct{})}
	if read {
		r.start()
	}
	t.Cleanup(func() {
		cancel()
		r.start()
		<-r.done
	})
	return r
}

// start begins reading (a stream opened with read=false is stalled until then).
func (r *rawStream) start() {
	r.once.Do(func() {
		go func() {
			defer close(r.done)
			for {
				m, err := r.s.Recv()
				if err != nil {
					r.errc <- err
					return
				}
				r.msgs <- m
			}
		}()
	})
}

func (r *rawStream) next() *pb.StreamMetricsResponse {
	r.t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case err := <-r.errc:
		r.errc <- err
		r.t.Fatalf("stream ended: %v", err)
	case <-time.After(streamWait):
		r.t.Fatal("no message")
	}
	return nil
}

func (r *rawStream) nextBatch() *pb.MetricBatch {
	r.t.Helper()
	deadline := time.After(streamWait)
	for {
		select {
		case m := <-r.msgs:
			if b := m.GetBatch(); b != nil {
				return b
			}
		case err := <-r.errc:
			r.errc <- err
			r.t.Fatalf("stream ended: %v", err)
		case <-deadline:
			r.t.Fatal("no batch")
		}
	}
}

// err waits for the end of the stream.
func (r *rawStream) err() error {
	r.t.Helper()
	for {
		select {
		case <-r.msgs:
		case err := <-r.errc:
			r.errc <- err
			return err
		case <-time.After(streamWait):
			r.t.Fatal("the stream did not end")
		}
	}
}

func batchValues(b *pb.MetricBatch) []int {
	out := make([]int, 0, len(b.Metrics))
	for _, m := range b.Metrics {
		out = append(out, int(m.Value))
	}
	return out
}

func TestStreamFiltersEndToEnd(t *testing.T) {
	r := startStreamReceiver(t, nil)
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	s := openRaw(t, c, &pb.StreamMetricsRequest{
		Filter: &pb.MetricFilter{
			Names:         []string{"http_*"},
			ExcludeNames:  []string{"http_debug_*"},
			LabelMatchers: []*pb.LabelMatcher{{Name: "method", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "GET|HEAD"}},
			Types:         []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER},
		},
		Options: &pb.StreamOptions{BatchTimeoutMs: 5},
	}, true)
	s.next() // the stream is subscribed once its first heartbeat arrives

	_, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": "api"}},
		Metrics: []*pb.MetricData{
			{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Labels: map[string]string{"method": "GET"}},
			{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": "POST"}},
			{Name: "http_debug_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": "GET"}},
			{Name: "http_inflight", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 3, Labels: map[string]string{"method": "GET"}},
			{Name: "db_queries_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": "GET"}},
		},
	})
	require.NoError(t, err)
	_, err = c.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{
		Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: map[string]string{"method": "GET"},
	}, Resource: &pb.Resource{Attributes: map[string]string{"service.name": "api"}}})
	require.NoError(t, err)

	var got []*pb.MetricData
	for len(got) < 2 {
		got = append(got, s.nextBatch().Metrics...)
	}
	require.Len(t, got, 2)
	for _, m := range got {
		assert.Equal(t, "http_requests_total", m.Name)
		assert.Equal(t, pb.MetricType_METRIC_TYPE_COUNTER, m.Type)
		assert.Equal(t, "GET", m.Labels["method"])
		assert.True(t, m.Cumulative, "the pipeline's counters are cumulative totals")
		assert.NotNil(t, m.StartTime)
		assert.NotNil(t, m.Timestamp)
		assert.Equal(t, "api", m.Resource.GetAttributes()["service.name"])
	}
	assert.Equal(t, []float64{2, 7}, []float64{got[0].Value, got[1].Value}, "running totals, in order")
}

// headerRecorder is a client stats handler that records the compression of
// responses and the compressed and uncompressed payload sizes.
type headerRecorder struct {
	mu           sync.Mutex
	compression  string
	wire, plain  int
	payloadsSeen int
}

func (h *headerRecorder) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (h *headerRecorder) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (h *headerRecorder) HandleConn(context.Context, stats.ConnStats) {}
func (h *headerRecorder) HandleRPC(_ context.Context, s stats.RPCStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch s := s.(type) {
	case *stats.InHeader:
		h.compression = s.Compression
	case *stats.InPayload:
		h.wire += s.CompressedLength
		h.plain += s.Length
		h.payloadsSeen++
	}
}

func (h *headerRecorder) get() (string, int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.compression, h.wire, h.plain
}

func TestStreamCompressionEndToEnd(t *testing.T) {
	r := startStreamReceiver(t, nil)
	ingest := pb.NewMetricsServiceClient(dial(t, r.addr()))
	tests := []struct {
		c    pb.StreamCompression
		name string
	}{
		{pb.StreamCompression_STREAM_COMPRESSION_NONE, "identity"},
		{pb.StreamCompression_STREAM_COMPRESSION_GZIP, "gzip"},
		{pb.StreamCompression_STREAM_COMPRESSION_SNAPPY, "snappy"},
		{pb.StreamCompression_STREAM_COMPRESSION_LZ4, "lz4"},
		{pb.StreamCompression_STREAM_COMPRESSION_ZSTD, "zstd"},
	}
	for i, tt := range tests {
		t.Run(tt.c.String(), func(t *testing.T) {
			rec := &headerRecorder{}
			// the client package registers every compressor, so this client advertises all of them
			c := pb.NewMetricsServiceClient(dial(t, r.addr(), grpc.WithStatsHandler(rec)))
			metric := "cmp_" + strconv.Itoa(i)
			s := openRaw(t, c, &pb.StreamMetricsRequest{
				Filter:  &pb.MetricFilter{Names: []string{metric}},
				Options: &pb.StreamOptions{Compression: tt.c, BatchSize: 500, BatchTimeoutMs: 5},
			}, true)
			hb := s.next().GetHeartbeat()
			require.NotNil(t, hb)
			assert.Equal(t, tt.c, hb.Compression)
			assert.Empty(t, hb.Message)

			recordGauges(t, ingest, metric, 0, 500)
			var got []int
			for len(got) < 500 {
				got = append(got, batchValues(s.nextBatch())...)
			}
			assert.Len(t, got, 500)
			name, wire, plain := rec.get()
			if tt.c == pb.StreamCompression_STREAM_COMPRESSION_NONE {
				assert.Contains(t, []string{"", "identity"}, name)
				assert.Equal(t, plain, wire)
			} else {
				assert.Equal(t, tt.name, name)
				assert.Less(t, wire, plain/2, "the batches were compressed on the wire")
			}
		})
	}
}

// TestStreamCompressionWithGzipOnlyClient plays a client that knows gzip
// only, as grpcurl: gzip and none work, anything else falls back to none
// and the first heartbeat says so.
func TestStreamCompressionWithGzipOnlyClient(t *testing.T) {
	r := startStreamReceiver(t, nil)
	ingest := pb.NewMetricsServiceClient(dial(t, r.addr()))
	tests := []struct {
		want, got pb.StreamCompression
		header    []string
		message   string
	}{
		{pb.StreamCompression_STREAM_COMPRESSION_GZIP, pb.StreamCompression_STREAM_COMPRESSION_GZIP, []string{"gzip"}, ""},
		{pb.StreamCompression_STREAM_COMPRESSION_NONE, pb.StreamCompression_STREAM_COMPRESSION_NONE, []string{"", "identity"}, ""},
		{pb.StreamCompression_STREAM_COMPRESSION_UNSPECIFIED, pb.StreamCompression_STREAM_COMPRESSION_NONE, []string{"", "identity"}, ""},
		{pb.StreamCompression_STREAM_COMPRESSION_LZ4, pb.StreamCompression_STREAM_COMPRESSION_NONE, []string{"", "identity"}, "compression lz4 requested, but the client advertises [gzip]"},
		{pb.StreamCompression_STREAM_COMPRESSION_ZSTD, pb.StreamCompression_STREAM_COMPRESSION_NONE, []string{"", "identity"}, "compression zstd requested"},
	}
	for i, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			rec := &headerRecorder{}
			c := pb.NewMetricsServiceClient(dial(t, r.addr(), grpc.WithStatsHandler(rec)))
			metric := "gz_" + strconv.Itoa(i)
			s := openRaw(t, c, &pb.StreamMetricsRequest{
				Filter:  &pb.MetricFilter{Names: []string{metric}},
				Options: &pb.StreamOptions{Compression: tt.want, BatchTimeoutMs: 5},
			}, true, experimental.AcceptCompressors("gzip"))
			hb := s.next().GetHeartbeat()
			require.NotNil(t, hb)
			assert.Equal(t, tt.got, hb.Compression)
			if tt.message == "" {
				assert.Empty(t, hb.Message)
			} else {
				assert.Contains(t, hb.Message, tt.message)
			}
			recordGauges(t, ingest, metric, 0, 50)
			assert.Len(t, s.nextBatch().Metrics, 50, "the stream works")
			name, _, _ := rec.get()
			assert.Contains(t, tt.header, name)
		})
	}
}

// grpcurlPath finds grpcurl (the repository's bin/ or PATH): a missing
// binary skips the test, unless REQUIRE_INTEGRATION=1.
func grpcurlPath(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", "..", "bin", "grpcurl")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return testpeer.LookPath(t, "grpcurl")
}

func TestStreamWithGrpcurl(t *testing.T) {
	bin := grpcurlPath(t)
	r := startStreamReceiver(t, nil)
	ingest := pb.NewMetricsServiceClient(dial(t, r.addr()))
	for i, compression := range []string{"STREAM_COMPRESSION_GZIP", "STREAM_COMPRESSION_NONE"} {
		t.Run(compression, func(t *testing.T) {
			metric := "curl_" + strconv.Itoa(i)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-plaintext", "-d",
				`{"filter":{"names":["`+metric+`"]},"options":{"compression":"`+compression+`","batchTimeoutMs":5}}`,
				r.addr(), "metricsmodule.v1.MetricsService/StreamMetrics")
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			lines := make(chan string, 1000)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			ended := func() string {
				cancel()
				for range lines { //nolint:revive // drain until grpcurl exits
				}
				_ = cmd.Wait()
				return stderr.String()
			}
			waitLine := func(want string) {
				t.Helper()
				deadline := time.After(streamWait)
				for {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatalf("grpcurl ended: %s", ended())
						}
						if strings.Contains(l, want) {
							return
						}
					case <-deadline:
						t.Fatalf("grpcurl printed no %q; stderr: %s", want, ended())
					}
				}
			}
			waitLine(`"compression": "` + compression + `"`)
			recordGauges(t, ingest, metric, 0, 3)
			waitLine(`"sequence": "1"`)
			ended()
		})
	}
}

func TestStreamHeartbeats(t *testing.T) {
	r := startStreamReceiver(t, nil)
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	s := openRaw(t, c, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{HeartbeatIntervalMs: 20, BatchTimeoutMs: 1, SubscriptionId: "hb"}}, true)
	var hbs []*pb.Heartbeat
	var batches uint64
	recorded := false
	for len(hbs) < 4 {
		m := s.next()
		if hb := m.GetHeartbeat(); hb != nil {
			hbs = append(hbs, hb)
			if !recorded {
				recordGauges(t, c, "g", 0, 3)
				recorded = true
			}
		}
		if b := m.GetBatch(); b != nil {
			batches = b.Sequence
		}
	}
	for i, hb := range hbs {
		assert.Equal(t, "hb", hb.SubscriptionId)
		assert.Equal(t, pb.StreamCompression_STREAM_COMPRESSION_NONE, hb.Compression)
		if i > 0 {
			assert.False(t, hb.ServerTime.AsTime().Before(hbs[i-1].ServerTime.AsTime()))
			assert.GreaterOrEqual(t, hb.LastSequence, hbs[i-1].LastSequence)
		}
	}
	assert.Equal(t, uint64(1), batches)
	assert.Equal(t, uint64(1), hbs[len(hbs)-1].LastSequence, "heartbeats carry the last sequence sent")
}

// smallWindows keeps a client from buffering more than 64 KiB of a stream
// it does not read.
var smallWindows = []grpc.DialOption{grpc.WithInitialWindowSize(64 << 10), grpc.WithInitialConnWindowSize(64 << 10)}

func TestStreamBestEffortStalledSubscriber(t *testing.T) {
	r := startStreamReceiver(t, nil)
	ingest := pb.NewMetricsServiceClient(dial(t, r.addr()))
	c := pb.NewMetricsServiceClient(dial(t, r.addr(), smallWindows...))
	s := openRaw(t, c, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{
		BatchSize: 100, BatchTimeoutMs: 5, BufferSize: 4, HeartbeatIntervalMs: 20,
	}}, false)
	require.Eventually(t, func() bool { return r.hub.Streams() == 1 }, streamWait, time.Millisecond)

	const total = 20_000
	for v := 0; v < total; v += 500 {
		recordGauges(t, ingest, "g", v, 500) // never waits for the stalled subscriber
	}
	s.start()
	var received, dropped, droppedBatches, gaps, lastSeq uint64
	require.Eventually(t, func() bool {
		for {
			select {
			case m := <-s.msgs:
				if b := m.GetBatch(); b != nil {
					received += uint64(len(b.Metrics))
					gaps += b.Sequence - lastSeq - 1
					lastSeq = b.Sequence
				}
				if hb := m.GetHeartbeat(); hb != nil {
					dropped += hb.DroppedDatapoints
					droppedBatches += hb.DroppedBatches
				}
				continue
			default:
			}
			return received+dropped == total
		}
	}, streamWait, time.Millisecond)
	assert.Positive(t, dropped, "the stalled subscriber lost its oldest batches")
	assert.Less(t, received, uint64(total/2))
	assert.Equal(t, droppedBatches, gaps, "each missing sequence is a counted drop")
}

// proxy forwards TCP connections; cut breaks the current ones.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
	cuts   atomic.Int32
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = down.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		p.wg.Go(func() { pipe(up, down) })
		p.wg.Go(func() { pipe(down, up) })
	}
}

// cut closes every proxied connection, as a network failure would.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.cuts.Add(1)
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

func TestStreamAtLeastOnceResumeAfterDisconnect(t *testing.T) {
	r := startStreamReceiver(t, nil)
	ingest := pb.NewMetricsServiceClient(dial(t, r.addr()))
	px := newProxy(t, r.addr())
	c := pb.NewMetricsServiceClient(dial(t, px.addr()))
	req := func(resume *uint64) *pb.StreamMetricsRequest {
		return &pb.StreamMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"g"}}, Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, SubscriptionId: "alo-e2e", ResumeAfterSequence: resume,
			BatchSize: 10, BatchTimeoutMs: 5,
		}}
	}
	s := openRaw(t, c, req(nil), true)
	s.next()
	seen := map[int]bool{}
	var processed uint64
	recordGauges(t, ingest, "g", 0, 100)
	for len(seen) < 30 {
		b := s.nextBatch()
		require.Equal(t, processed+1, b.Sequence)
		processed = b.Sequence
		for _, v := range batchValues(b) {
			seen[v] = true
		}
	}
	px.cut()
	assert.Equal(t, codes.Unavailable, status.Code(s.err()))
	recordGauges(t, ingest, "g", 100, 100) // while the subscriber is away

	resume := processed
	s2 := openRaw(t, c, req(&resume), true)
	hb := s2.next().GetHeartbeat()
	require.NotNil(t, hb)
	assert.Equal(t, processed, hb.LastSequence)
	for len(seen) < 200 {
		b := s2.nextBatch()
		require.Equal(t, processed+1, b.Sequence, "no gap after the resume point")
		processed = b.Sequence
		for _, v := range batchValues(b) {
			seen[v] = true
		}
	}
	for v := 0; v < 200; v++ {
		require.True(t, seen[v], "value %d missing", v)
	}
}

func TestStreamDataLossWhenReplayLogOutrun(t *testing.T) {
	r := startStreamReceiver(t, func(cfg *metricsstoreextension.Config) { cfg.Stream.Replay.MaxBytes = 4096 })
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	req := func(resume *uint64) *pb.StreamMetricsRequest {
		return &pb.StreamMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"g"}}, Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, SubscriptionId: "outrun", ResumeAfterSequence: resume,
			BatchSize: 10, BatchTimeoutMs: 5,
		}}
	}
	s := openRaw(t, c, req(nil), true)
	s.next()
	recordGauges(t, c, "g", 0, 10)
	first := s.nextBatch()
	s.cancel()
	require.Equal(t, codes.Canceled, status.Code(s.err()))
	require.Eventually(t, func() bool { return r.hub.Streams() == 0 }, streamWait, time.Millisecond)
	for v := 10; v < 2000; v += 200 {
		recordGauges(t, c, "g", v, 200)
	}

	resume := first.Sequence
	s2 := openRaw(t, c, req(&resume), true)
	st := status.Convert(s2.err())
	require.Equal(t, codes.DataLoss, st.Code(), st.Message())
	assert.Contains(t, st.Message(), `subscription "outrun": batches 2..`)
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if v, ok := d.(*errdetails.ErrorInfo); ok {
			info = v
		}
	}
	require.NotNil(t, info)
	assert.Equal(t, "REPLAY_LOG_OUTRUN", info.Reason)
	assert.Equal(t, "2", info.Metadata["first_missing"])
	assert.NotEmpty(t, info.Metadata["last_missing"])
}

func TestStreamExactlyOnceWithClientAcrossDisconnects(t *testing.T) {
	r := startStreamReceiver(t, nil)
	ingest := pb.NewMetricsServiceClient(dial(t, r.addr()))
	px := newProxy(t, r.addr())
	conn := dial(t, px.addr())

	var mu sync.Mutex
	counts := map[int]int{}
	var checkpoint atomic.Uint64
	client, err := streamclient.New(conn, streamclient.Config{
		Filter: &pb.MetricFilter{Names: []string{"g"}},
		Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE, SubscriptionId: "eo-e2e",
			BatchSize: 20, BatchTimeoutMs: 5, Compression: pb.StreamCompression_STREAM_COMPRESSION_ZSTD,
		},
		Handler: func(_ context.Context, b *pb.MetricBatch) error {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range batchValues(b) {
				counts[v]++
			}
			return nil
		},
		Checkpoint: func(_ context.Context, id string, seq uint64) error {
			if id != "eo-e2e" {
				return errors.New("unexpected subscription " + id)
			}
			checkpoint.Store(seq)
			return nil
		},
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- client.Run(ctx) }()
	require.Eventually(t, func() bool { return r.hub.Streams() == 1 }, streamWait, time.Millisecond)

	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(counts)
	}
	const total = 3000
	ingested := make(chan struct{})
	go func() {
		defer close(ingested)
		for v := 0; v < total; v += 50 {
			recordGauges(t, ingest, "g", v, 50)
		}
	}()
	for _, at := range []int{total / 3, 2 * total / 3} {
		require.Eventually(t, func() bool { return handled() >= at }, streamWait, time.Millisecond)
		px.cut() // batches in flight are lost on the wire; the resume brings them back
	}
	<-ingested
	require.Eventually(t, func() bool { return handled() == total }, streamWait, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-runErr, context.Canceled)

	mu.Lock()
	defer mu.Unlock()
	for v := 0; v < total; v++ {
		require.Equal(t, 1, counts[v], "value %d", v)
	}
	st := client.Stats()
	assert.GreaterOrEqual(t, st.Reconnects, uint64(2))
	assert.Equal(t, client.LastSequence(), checkpoint.Load())
}

func TestStreamCancellationCleansUp(t *testing.T) {
	r := startStreamReceiver(t, nil)
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	be := openRaw(t, c, &pb.StreamMetricsRequest{}, true)
	alo := openRaw(t, c, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{
		Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, SubscriptionId: "kept",
	}}, true)
	be.next()
	alo.next()
	assert.Equal(t, 2, r.hub.Streams())
	recordGauges(t, c, "g", 0, 10)
	be.cancel()
	alo.cancel()
	assert.Equal(t, codes.Canceled, status.Code(be.err()))
	require.Eventually(t, func() bool { return r.hub.Streams() == 0 }, streamWait, time.Millisecond)
	assert.Equal(t, 1, r.hub.Subscriptions(), "only the replay subscription is kept (for replay.idle_ttl)")
}

func TestStreamsEndOnShutdown(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	next, host := storePipeline(t, t.TempDir(), nil, consumertest.NewNop())
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	stalledConn := pb.NewMetricsServiceClient(dial(t, r.addr(), smallWindows...))
	reading := openRaw(t, c, &pb.StreamMetricsRequest{}, true)
	stalled := openRaw(t, stalledConn, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{BatchSize: 100, BatchTimeoutMs: 1}}, false)
	reading.next()
	require.Eventually(t, func() bool { return r.hub.Streams() == 2 }, streamWait, time.Millisecond)
	for v := 0; v < 5000; v += 500 {
		recordGauges(t, c, "g", v, 500)
	}

	require.NoError(t, r.Shutdown(context.Background()), "returns although a client stopped reading")
	assert.Equal(t, codes.Unavailable, status.Code(reading.err()))
	stalled.start()
	assert.Error(t, stalled.err())
	assert.Equal(t, 0, r.hub.Streams())
	require.NoError(t, r.Shutdown(context.Background()), "idempotent")
}

func TestStreamRefusals(t *testing.T) {
	r := startStreamReceiver(t, func(cfg *metricsstoreextension.Config) { cfg.Stream.MaxSubscribers = 1 })
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	tests := []struct {
		req  *pb.StreamMetricsRequest
		code codes.Code
		msg  string
	}{
		{&pb.StreamMetricsRequest{Filter: &pb.MetricFilter{NameRegex: "("}}, codes.InvalidArgument, "filter.name_regex"},
		{&pb.StreamMetricsRequest{Options: &pb.StreamOptions{Compression: 42}}, codes.InvalidArgument, "options.compression: 42"},
		{&pb.StreamMetricsRequest{Options: &pb.StreamOptions{ResumeAfterSequence: new(uint64)}}, codes.InvalidArgument, "options.resume_after_sequence"},
		{&pb.StreamMetricsRequest{Options: &pb.StreamOptions{BatchSize: 1_000_000}}, codes.InvalidArgument, "options.batch_size"},
		{&pb.StreamMetricsRequest{Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, SubscriptionId: "nope", ResumeAfterSequence: func() *uint64 { v := uint64(4); return &v }(),
		}}, codes.DataLoss, `subscription "nope" is unknown`},
	}
	for _, tt := range tests {
		s := openRaw(t, c, tt.req, true)
		st := status.Convert(s.err())
		assert.Equal(t, tt.code, st.Code(), st.Message())
		assert.Contains(t, st.Message(), tt.msg)
	}
	first := openRaw(t, c, &pb.StreamMetricsRequest{}, true)
	first.next()
	second := openRaw(t, c, &pb.StreamMetricsRequest{}, true)
	st := status.Convert(second.err())
	assert.Equal(t, codes.ResourceExhausted, st.Code())
	assert.Contains(t, st.Message(), "stream.max_subscribers (1)")
}

func TestStreamCarriesOnlyWhatThePipelineAccepted(t *testing.T) {
	sink := &switchSink{}
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	next, host := storePipeline(t, t.TempDir(), nil, sink)
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	s := openRaw(t, c, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{BatchTimeoutMs: 5}}, true)
	s.next()

	sink.refuse(errors.New("exporter queue is full"))
	_, err = c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{
		{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: -1},
	}})
	require.Equal(t, codes.Unavailable, status.Code(err))
	sink.refuse(nil)
	recordGauges(t, c, "g", 0, 2)
	b := s.nextBatch()
	assert.Equal(t, uint64(1), b.Sequence)
	assert.Equal(t, []int{0, 1}, batchValues(b), "the refused batch was rolled back, not streamed")
}
