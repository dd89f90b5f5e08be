package metricsclient_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	"github.com/metricsmodule/metricsmodule/client/metricstest"
	"github.com/metricsmodule/metricsmodule/client/streamclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T, srv *metricstest.Server, opts ...metricsclient.Option) *metricsclient.Client {
	t.Helper()
	opts = append([]metricsclient.Option{metricsclient.WithFlushInterval(time.Hour),
		metricsclient.WithRetry(metricsclient.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: 10 * time.Second})}, opts...)
	cl := metricsclient.NewFromConn(srv.Conn(), opts...)
	t.Cleanup(func() { _ = cl.Close(context.Background()) })
	return cl
}

func TestInstrumentsAreRecordedWithTheirTypesAndLabels(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := newClient(t, srv, metricsclient.WithResource(map[string]string{"service.name": "checkout"}))
	ctx := context.Background()

	requests := cl.Counter("http_requests_total", metricsclient.WithLabels("method"), metricsclient.WithDescription("requests served"))
	requests.With("GET").Add(2)
	requests.With("GET").Inc()
	requests.With("POST").Inc()
	requests.With("POST").Add(-5) // ignored: counters only go up
	temp := cl.Gauge("room_temperature", metricsclient.WithUnit("Cel"))
	temp.Set(20)
	temp.Set(21.5)
	inflight := cl.Gauge("inflight", metricsclient.WithConstLabels(map[string]string{"pool": "a"}))
	inflight.With().Inc()
	inflight.With().Inc()
	inflight.With().Dec()
	sizes := cl.Histogram("response_size_bytes", metricsclient.WithLabels("route"))
	sizes.With("/a").Observe(100)
	sizes.With("/a").Observe(300)
	cl.Summary("queue_wait").Observe(0.5)
	lat := cl.Timer("db_query_seconds", metricsclient.WithLabels("table"))
	lat.With("users").Observe(250 * time.Millisecond)

	require.NoError(t, cl.Flush(ctx))
	srv.AssertCounter(t, "http_requests_total", map[string]string{"method": "GET"}, 3)
	srv.AssertCounter(t, "http_requests_total", map[string]string{"method": "POST"}, 1)
	srv.AssertGauge(t, "room_temperature", nil, 21.5)
	srv.AssertGauge(t, "inflight", map[string]string{"pool": "a"}, 1)
	srv.AssertObservations(t, "response_size_bytes", map[string]string{"route": "/a"}, 100, 300)
	srv.AssertObservations(t, "queue_wait", nil, 0.5)
	srv.AssertObservations(t, "db_query_seconds", map[string]string{"table": "users"}, 0.25)

	types := map[string]pb.MetricType{}
	for _, p := range srv.Points() {
		types[p.Name] = p.Type
		assert.Equal(t, "checkout", p.Resource["service.name"], p.Name)
	}
	assert.Equal(t, map[string]pb.MetricType{
		"http_requests_total": pb.MetricType_METRIC_TYPE_COUNTER, "room_temperature": pb.MetricType_METRIC_TYPE_GAUGE,
		"inflight": pb.MetricType_METRIC_TYPE_GAUGE, "response_size_bytes": pb.MetricType_METRIC_TYPE_HISTOGRAM,
		"queue_wait": pb.MetricType_METRIC_TYPE_SUMMARY, "db_query_seconds": pb.MetricType_METRIC_TYPE_TIMER,
	}, types)

	// nothing new: a flush sends nothing; a counter sends its increment since the last flush
	calls := srv.Calls()
	require.NoError(t, cl.Flush(ctx))
	assert.Equal(t, calls, srv.Calls(), "an idle flush makes no call")
	requests.With("GET").Inc()
	require.NoError(t, cl.Flush(ctx))
	srv.AssertCounter(t, "http_requests_total", map[string]string{"method": "GET"}, 4)
	assert.Equal(t, uint64(0), cl.Stats().Refused)
}

func TestWrongLabelCountPanicsNamingTheLabels(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := newClient(t, srv)
	c := cl.Counter("x_total", metricsclient.WithLabels("a", "b"))
	assert.PanicsWithValue(t, `metricsclient: x_total has labels [a b]: With needs 2 values, got 1 (["only"])`, func() { c.With("only") })
	assert.Panics(t, func() { cl.Gauge("x_total") }, "one name is one kind of instrument")
}

func TestRetriesKeepTheRequestIDAndApplyOnce(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := newClient(t, srv, metricsclient.WithRequestIDPrefix("app"))
	ctx := context.Background()
	c := cl.Counter("jobs_total")

	// refused before applying, twice: retried
	srv.FailNext(status.Error(codes.Unavailable, "restarting"), status.Error(codes.ResourceExhausted, "memory limiter"))
	c.Add(5)
	require.NoError(t, cl.Flush(ctx))
	srv.AssertCounter(t, "jobs_total", nil, 5)
	assert.Equal(t, 3, srv.Calls())
	assert.Equal(t, []string{"app-1"}, srv.RequestIDs())

	// applied, answer lost: the retry with the same id is a duplicate
	srv.LoseNextAnswer(status.Error(codes.Unavailable, "connection reset"))
	c.Add(7)
	require.NoError(t, cl.Flush(ctx))
	srv.AssertCounter(t, "jobs_total", nil, 12)
	assert.Equal(t, []string{"app-1", "app-2"}, srv.RequestIDs())
	st := cl.Stats()
	assert.Equal(t, uint64(1), st.Duplicates)
	assert.Equal(t, uint64(3), st.Retries)
	assert.Equal(t, uint64(2), st.Batches)
}

func TestPermanentRefusalIsGivenUpAndReported(t *testing.T) {
	srv := metricstest.NewServer(t)
	var mu sync.Mutex
	var reported []error
	cl := newClient(t, srv, metricsclient.WithErrorHandler(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}))
	srv.FailNext(status.Error(codes.InvalidArgument, "metrics[0].name: bad (fix: rename)"))
	cl.Counter("a_total").Inc()
	err := cl.Flush(context.Background())
	var giveUp *metricsclient.GiveUpError
	require.ErrorAs(t, err, &giveUp)
	assert.Equal(t, 1, giveUp.Attempts, "INVALID_ARGUMENT is not retried")
	assert.Equal(t, codes.InvalidArgument, status.Code(giveUp))
	assert.Equal(t, uint64(1), cl.Stats().Refused)

	// best effort: the valid item is applied, the refused one reported with its field
	cl.Record(&pb.MetricData{Name: "ok", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1})
	cl.Record(&pb.MetricData{Name: "untyped", Value: 1})
	err = cl.Flush(context.Background())
	var refused *metricsclient.RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, uint32(1), refused.Refused)
	assert.Contains(t, refused.Error(), "metrics[1] untyped: metrics[1].type")
	srv.AssertGauge(t, "ok", nil, 1)

	// the background flusher reports to the handler
	srv.FailNext(status.Error(codes.PermissionDenied, "no"))
	cl.Counter("a_total").Inc()
	require.NoError(t, cl.Close(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reported, 1)
	assert.Equal(t, codes.PermissionDenied, status.Code(reported[0]))
}

func TestCloseFlushesAndLaterRecordsAreDropped(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := metricsclient.NewFromConn(srv.Conn(), metricsclient.WithFlushInterval(time.Hour))
	h := cl.Histogram("h")
	for i := range 2500 {
		h.Observe(float64(i))
	}
	cl.Counter("c_total").Add(3)
	require.NoError(t, cl.Close(context.Background()))
	assert.Len(t, srv.Observations("h", nil), 2500)
	srv.AssertCounter(t, "c_total", nil, 3)
	h.Observe(1)
	assert.Equal(t, uint64(1), cl.Stats().Dropped)
	require.NoError(t, cl.Close(context.Background()), "Close twice")
}

func TestCloseGivesUpWhenItsContextEnds(t *testing.T) {
	srv := metricstest.NewServer(t)
	resume := srv.Pause()
	defer resume()
	cl := metricsclient.NewFromConn(srv.Conn(), metricsclient.WithFlushInterval(time.Hour))
	cl.Counter("c_total").Inc()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := cl.Close(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, uint64(1), cl.Stats().Refused)
}

func TestDropAndCountWhenTheBufferIsFull(t *testing.T) {
	srv := metricstest.NewServer(t)
	resume := srv.Pause()
	defer resume()
	cl := metricsclient.NewFromConn(srv.Conn(), metricsclient.WithFlushInterval(time.Hour),
		metricsclient.WithBufferSize(10), metricsclient.WithBackpressure(metricsclient.DropAndCount))
	h := cl.Histogram("h")
	// the first 5 are taken by the flusher (woken at half the buffer), which then waits on the paused server
	for range 5 {
		h.Observe(1)
	}
	require.Eventually(t, func() bool { return srv.Calls() == 0 && cl.Stats().Dropped == 0 }, time.Second, time.Millisecond)
	for range 100 {
		h.Observe(2)
	}
	// at most the buffer (10) plus what the flusher holds (5) is kept
	assert.GreaterOrEqual(t, cl.Stats().Dropped, uint64(85))
	resume()
	require.NoError(t, cl.Close(context.Background()))
	kept := len(srv.Observations("h", nil))
	assert.Equal(t, 105, kept+int(cl.Stats().Dropped), "each observation is sent or counted as dropped")
}

func TestStreamHelperDeliversRecordedBatches(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := newClient(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *pb.MetricBatch, 4)
	hb := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- cl.Stream(ctx, streamclient.Config{
			Handler:     func(_ context.Context, b *pb.MetricBatch) error { got <- b; return nil },
			OnHeartbeat: func(*pb.Heartbeat) { hb <- struct{}{} },
		})
	}()
	<-hb
	cl.Gauge("g").Set(4)
	require.NoError(t, cl.Flush(ctx))
	b := <-got
	assert.Equal(t, uint64(1), b.Sequence)
	assert.Equal(t, "g", b.Metrics[0].Name)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

func TestManagementHelpersApplyAndWait(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := newClient(t, srv)
	ctx := context.Background()
	cfg := &pb.ProviderConfig{ProviderId: "p1", Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
		Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{Endpoint: "127.0.0.1:4317"}}}
	res, err := cl.ApplyProvider(ctx, cfg, metricsclient.ApplyOptions{})
	require.NoError(t, err)
	assert.True(t, res.Created)
	cfg2 := cfg.CloneVT()
	cfg2.Name = "renamed"
	res, err = cl.ApplyProvider(ctx, cfg2, metricsclient.ApplyOptions{Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_ROLLING, DrainTimeout: time.Second})
	require.NoError(t, err)
	assert.False(t, res.Created)
	assert.Equal(t, uint64(1), res.Previous.Version)
	assert.Equal(t, uint64(2), res.Provider.Version)
	p, err := cl.WaitProvider(ctx, "p1", time.Millisecond, func(p *pb.Provider) bool { return p.GetState() == pb.ProviderState_PROVIDER_STATE_RUNNING }, nil)
	require.NoError(t, err)
	assert.Equal(t, "renamed", p.Config.Name)

	_, err = cl.Management().DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{ProviderId: "p1"})
	require.NoError(t, err)
	p, err = cl.WaitProvider(ctx, "p1", time.Millisecond, func(p *pb.Provider) bool { return p == nil }, nil)
	require.NoError(t, err)
	assert.Nil(t, p)
}

func TestExplainShowsFieldViolations(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := newClient(t, srv)
	_, err := cl.Metrics().RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "x"}})
	require.Error(t, err)
	assert.Equal(t, "InvalidArgument: metric.type: metric type is not set (fix: set COUNTER, GAUGE, HISTOGRAM, SUMMARY or TIMER)\n"+
		"  field metric.type: metric type is not set (fix: set COUNTER, GAUGE, HISTOGRAM, SUMMARY or TIMER) [missing_type]",
		metricsclient.Explain(err))
	assert.Len(t, metricsclient.Violations(err), 1)
}

func TestRecordGathererForwardsAClientGolangRegistry(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := newClient(t, srv)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "legacy_requests_total", Help: "requests"}, []string{"code"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "legacy_temperature"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "legacy_latency_seconds", Buckets: []float64{0.1, 1}})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("200").Add(7)
	g.Set(21)
	h.Observe(0.05)
	h.Observe(0.5)
	h.Observe(5)
	require.NoError(t, cl.RecordGatherer(reg))
	require.NoError(t, cl.Flush(context.Background()))

	byName := map[string]metricstest.Point{}
	for _, p := range srv.Points() {
		byName[p.Name] = p
	}
	ctr := byName["legacy_requests_total"]
	assert.Equal(t, pb.MetricType_METRIC_TYPE_COUNTER, ctr.Type)
	assert.True(t, ctr.Cumulative, "a client_golang counter is a running total")
	assert.Equal(t, 7.0, ctr.Value)
	assert.Equal(t, "200", ctr.Labels["code"])
	assert.Equal(t, "requests", ctr.Description)
	srv.AssertGauge(t, "legacy_temperature", nil, 21)
	hist := byName["legacy_latency_seconds"].Metric.Histogram
	require.NotNil(t, hist)
	assert.Equal(t, []float64{0.1, 1}, hist.ExplicitBounds)
	assert.Equal(t, []uint64{1, 1, 1}, hist.BucketCounts)
	assert.Equal(t, uint64(3), hist.Count)

	// GatherEvery forwards periodically until Close
	cl2 := metricsclient.NewFromConn(srv.Conn(), metricsclient.WithFlushInterval(time.Millisecond))
	cl2.GatherEvery(reg, time.Millisecond)
	g.Set(30)
	require.Eventually(t, func() bool { v, _ := srv.Last("legacy_temperature", nil); return v == 30 }, 5*time.Second, time.Millisecond)
	require.NoError(t, cl2.Close(context.Background()))
}
