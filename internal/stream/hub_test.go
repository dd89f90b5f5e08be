package stream

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

func newTestHub(t *testing.T, mutate func(*Config)) *Hub {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := NewHub(cfg, zap.NewNop())
	require.NoError(t, err)
	require.NoError(t, h.Start())
	t.Cleanup(h.Close)
	return h
}

// gauges returns n gauge points of metric name with values from..from+n-1,
// each with label i=<value> and label parity=even|odd.
func gauges(name string, from, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "test")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for v := from; v < from+n; v++ {
		dp := dps.AppendEmpty()
		dp.SetTimestamp(ts(t1))
		dp.SetDoubleValue(float64(v))
		dp.Attributes().PutStr("i", strconv.Itoa(v))
		if v%2 == 0 {
			dp.Attributes().PutStr("parity", "even")
		} else {
			dp.Attributes().PutStr("parity", "odd")
		}
	}
	return md
}

func publish(t *testing.T, h *Hub, md pmetric.Metrics) {
	t.Helper()
	require.NoError(t, h.Stage(md).Commit())
}

// testStream runs a stream into a channel; stall() makes its sends block
// until release().
type testStream struct {
	t          *testing.T
	st         *Stream
	msgs       chan *pb.StreamMetricsResponse
	done       chan error
	cancel     context.CancelFunc
	mu         sync.Mutex
	stalled    chan struct{}
	heartbeats []*pb.Heartbeat
	err        error
	finished   bool
}

func openStream(t *testing.T, h *Hub, req *pb.StreamMetricsRequest) *testStream {
	t.Helper()
	st, err := h.Subscribe(req)
	require.NoError(t, err)
	return runStream(t, st)
}

func runStream(t *testing.T, st *Stream) *testStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testStream{t: t, st: st, msgs: make(chan *pb.StreamMetricsResponse, 100_000), done: make(chan error, 1), cancel: cancel}
	send := func(m Message) error {
		buf := make([]byte, m.SizeVT())
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return err
		}
		r := &pb.StreamMetricsResponse{}
		if err := r.UnmarshalVT(buf); err != nil {
			return err
		}
		ts.mu.Lock()
		gate := ts.stalled
		ts.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ts.msgs <- r
		return nil
	}
	go func() {
		ts.done <- st.Run(ctx, send, Notice{Compression: pb.StreamCompression_STREAM_COMPRESSION_NONE, Message: "hello"})
	}()
	t.Cleanup(func() { ts.stop() })
	return ts
}

func (ts *testStream) stall() {
	ts.mu.Lock()
	ts.stalled = make(chan struct{})
	ts.mu.Unlock()
}

func (ts *testStream) release() {
	ts.mu.Lock()
	close(ts.stalled)
	ts.stalled = nil
	ts.mu.Unlock()
}

// stop cancels the stream and returns what Run returned.
func (ts *testStream) stop() error {
	ts.cancel()
	return ts.wait()
}

// wait returns what Run returned.
func (ts *testStream) wait() error {
	if !ts.finished {
		select {
		case ts.err = <-ts.done:
			ts.finished = true
		case <-time.After(waitFor):
			ts.t.Fatal("the stream did not end")
		}
	}
	return ts.err
}

// next returns the next message, failing after waitFor.
func (ts *testStream) next() *pb.StreamMetricsResponse {
	ts.t.Helper()
	return ts.nextBefore(time.Now().Add(waitFor))
}

func (ts *testStream) nextBefore(deadline time.Time) *pb.StreamMetricsResponse {
	ts.t.Helper()
	select {
	case m := <-ts.msgs:
		if hb := m.GetHeartbeat(); hb != nil {
			ts.heartbeats = append(ts.heartbeats, hb)
		}
		return m
	case err := <-ts.done:
		ts.finished, ts.err = true, err
		ts.t.Fatalf("the stream ended: %v", err)
	case <-time.After(time.Until(deadline)):
		ts.t.Fatal("no message")
	}
	return nil
}

// nextBatch returns the next batch, recording heartbeats on the way.
func (ts *testStream) nextBatch() *pb.MetricBatch {
	ts.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if b := ts.nextBefore(deadline).GetBatch(); b != nil {
			return b
		}
	}
}

// nextHeartbeat returns the next heartbeat, skipping batches.
func (ts *testStream) nextHeartbeat() *pb.Heartbeat {
	ts.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if hb := ts.nextBefore(deadline).GetHeartbeat(); hb != nil {
			return hb
		}
	}
}

func values(b *pb.MetricBatch) []int {
	out := make([]int, 0, len(b.Metrics))
	for _, m := range b.Metrics {
		out = append(out, int(m.Value))
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestStageCostsNothingWithoutMatches(t *testing.T) {
	h := newTestHub(t, nil)
	assert.Nil(t, h.Stage(gauges("g", 0, 10)), "no subscription")
	require.NoError(t, (*Staged)(nil).Commit())
	(*Staged)(nil).Rollback()

	_ = openStream(t, h, &pb.StreamMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"other_*"}}})
	assert.Nil(t, h.Stage(gauges("g", 0, 10)), "nothing matched: nothing staged")
}

func TestSubscriptionsShareEncodedPoints(t *testing.T) {
	h := newTestHub(t, nil)
	_ = openStream(t, h, &pb.StreamMetricsRequest{})
	_ = openStream(t, h, &pb.StreamMetricsRequest{Filter: &pb.MetricFilter{
		LabelMatchers: []*pb.LabelMatcher{{Name: "parity", Value: "even"}},
	}})
	st := h.Stage(gauges("g", 0, 10))
	require.NotNil(t, st)
	require.Len(t, st.per, 2)
	all, even := st.per[0], st.per[1]
	if len(all) < len(even) {
		all, even = even, all
	}
	require.Len(t, all, 10)
	require.Len(t, even, 5)
	for i, item := range even {
		assert.Same(t, &all[2*i][0], &item[0], "one encoding per data point, shared")
	}
	st.Rollback()
}

func TestFilterRouting(t *testing.T) {
	h := newTestHub(t, nil)
	opts := &pb.StreamOptions{BatchSize: 1000, BatchTimeoutMs: 5}
	odd := openStream(t, h, &pb.StreamMetricsRequest{Options: opts, Filter: &pb.MetricFilter{
		Names:         []string{"http_*"},
		LabelMatchers: []*pb.LabelMatcher{{Name: "parity", Value: "odd"}},
	}})
	counters := openStream(t, h, &pb.StreamMetricsRequest{Options: opts, Filter: &pb.MetricFilter{
		Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER},
	}})
	md := gauges("http_requests", 0, 6)
	gauges("db_queries", 100, 2).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	publish(t, h, md)
	publish(t, h, counterMetrics("http_total", 7))

	b := odd.nextBatch()
	assert.Equal(t, []int{1, 3, 5}, values(b))
	for _, m := range b.Metrics {
		assert.Equal(t, "http_requests", m.Name)
		assert.Equal(t, "odd", m.Labels["parity"])
		assert.Equal(t, "test", m.Resource.Attributes["service.name"])
	}
	c := counters.nextBatch()
	require.Len(t, c.Metrics, 1)
	assert.Equal(t, "http_total", c.Metrics[0].Name)
	assert.True(t, c.Metrics[0].Cumulative)
	assert.Equal(t, uint64(1), c.Sequence, "the gauges did not use a sequence of this subscription")
}

func counterMetrics(name string, v float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(ts(t0))
	dp.SetTimestamp(ts(t1))
	dp.SetDoubleValue(v)
	return md
}

func TestBatchBySize(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{BatchSize: 3, BatchTimeoutMs: 60_000}})
	publish(t, h, gauges("g", 0, 4))
	publish(t, h, gauges("g", 4, 3))
	b1 := s.nextBatch()
	b2 := s.nextBatch()
	assert.Equal(t, uint64(1), b1.Sequence)
	assert.Equal(t, []int{0, 1, 2}, values(b1))
	assert.Equal(t, uint64(2), b2.Sequence)
	assert.Equal(t, []int{3, 4, 5}, values(b2))
	assert.NotNil(t, b1.CreatedAt)
}

func TestBatchByTimeout(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{BatchSize: 1000, BatchTimeoutMs: 5}})
	publish(t, h, gauges("g", 0, 4))
	b := s.nextBatch()
	assert.Equal(t, []int{0, 1, 2, 3}, values(b), "a partial batch goes out at the timeout")
	publish(t, h, gauges("g", 4, 1))
	assert.Equal(t, []int{4}, values(s.nextBatch()))
}

func TestHeartbeats(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{
		HeartbeatIntervalMs: 10, BatchTimeoutMs: 1, SubscriptionId: "dash-1",
	}})
	first := s.next().GetHeartbeat()
	require.NotNil(t, first, "a stream starts with a heartbeat")
	assert.Equal(t, "dash-1", first.SubscriptionId)
	assert.Equal(t, "hello", first.Message)
	assert.Equal(t, pb.StreamCompression_STREAM_COMPRESSION_NONE, first.Compression)
	assert.Equal(t, uint64(0), first.LastSequence)

	publish(t, h, gauges("g", 0, 2))
	assert.Equal(t, uint64(1), s.nextBatch().Sequence)
	hb := s.nextHeartbeat()
	assert.Equal(t, uint64(1), hb.LastSequence)
	assert.Empty(t, hb.Message, "the notice is in the first heartbeat only")
	assert.False(t, hb.ServerTime.AsTime().Before(first.ServerTime.AsTime()))
	assert.Equal(t, "dash-1", hb.SubscriptionId)
}

func TestAssignedSubscriptionID(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, &pb.StreamMetricsRequest{})
	hb := s.nextHeartbeat()
	assert.Regexp(t, `^sub-[0-9a-f]{16}$`, hb.SubscriptionId)
	assert.Equal(t, hb.SubscriptionId, s.st.SubscriptionID())
}

func TestBestEffortDropsOldestWhenStalled(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{
		BatchSize: 10, BatchTimeoutMs: 60_000, BufferSize: 2, HeartbeatIntervalMs: 10,
	}})
	s.nextHeartbeat()
	s.stall()
	const total = 1000
	for i := 0; i < total; i += 10 {
		publish(t, h, gauges("g", i, 10)) // ingest never waits for the stalled stream
	}
	s.release()

	var received, droppedPoints, droppedBatches uint64
	seen := map[int]bool{}
	var lastSeq uint64
	gaps := uint64(0)
	require.Eventually(t, func() bool {
		for {
			select {
			case m := <-s.msgs:
				if b := m.GetBatch(); b != nil {
					received += uint64(len(b.Metrics))
					gaps += b.Sequence - lastSeq - 1
					lastSeq = b.Sequence
					for _, v := range values(b) {
						seen[v] = true
					}
				}
				if hb := m.GetHeartbeat(); hb != nil {
					droppedPoints += hb.DroppedDatapoints
					droppedBatches += hb.DroppedBatches
				}
				continue
			default:
			}
			return received+droppedPoints == total && lastSeq == total/10
		}
	}, waitFor, time.Millisecond)
	assert.Positive(t, droppedBatches)
	assert.Equal(t, droppedBatches, gaps, "every gap in the sequence is a counted drop")
	assert.Equal(t, 10*droppedBatches, droppedPoints)
	assert.True(t, seen[total-1], "the newest batches are kept")
	assert.LessOrEqual(t, received, uint64(40), "at most the buffer, the batch in flight and the one after")
	require.Eventually(t, func() bool { return h.MemoryBytes() == 0 }, waitFor, time.Millisecond)
}

func TestMaxTotalBytesBoundsBuffers(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.MaxTotalBytes = 4096 })
	s := openStream(t, h, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{BatchSize: 10, BatchTimeoutMs: 60_000, BufferSize: 10_000}})
	s.nextHeartbeat()
	s.stall()
	for i := 0; i < 2000; i += 10 {
		publish(t, h, gauges("g", i, 10))
		require.LessOrEqual(t, h.MemoryBytes(), int64(4096+2000), "within the budget (plus the newest batch)")
	}
	s.release()
}

func aloRequest(id string, resume *uint64, batchSize uint32) *pb.StreamMetricsRequest {
	return &pb.StreamMetricsRequest{
		Filter: &pb.MetricFilter{Names: []string{"g"}},
		Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, SubscriptionId: id, ResumeAfterSequence: resume,
			BatchSize: batchSize, BatchTimeoutMs: 60_000, HeartbeatIntervalMs: 10,
		},
	}
}

func u64(v uint64) *uint64 { return &v }

func TestAtLeastOnceResume(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, aloRequest("alo", nil, 5))
	publish(t, h, gauges("g", 0, 20))
	assert.Equal(t, seq(0, 4), values(s.nextBatch()))
	assert.Equal(t, seq(5, 9), values(s.nextBatch()))
	require.ErrorIs(t, s.stop(), context.Canceled)
	assert.Equal(t, 1, h.Subscriptions(), "kept for a resume")

	publish(t, h, gauges("g", 20, 20)) // collected while no stream is attached
	r := openStream(t, h, aloRequest("alo", u64(2), 5))
	hb := r.nextHeartbeat()
	assert.Equal(t, uint64(2), hb.LastSequence, "the first heartbeat names the resume point")
	var got []int
	for want := uint64(3); want <= 8; want++ {
		b := r.nextBatch()
		assert.Equal(t, want, b.Sequence)
		got = append(got, values(b)...)
	}
	assert.Equal(t, seq(10, 39), got, "everything after the resume point, in order")
}

func TestAtLeastOnceResendsUnprocessed(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, aloRequest("again", nil, 5))
	publish(t, h, gauges("g", 0, 10))
	b1 := s.nextBatch()
	b2 := s.nextBatch()
	require.NoError(t, ignoreCanceled(s.stop()))
	// the client processed only batch 1: batch 2 comes again, identical
	r := openStream(t, h, aloRequest("again", u64(b1.Sequence), 5))
	again := r.nextBatch()
	assert.Equal(t, b2.Sequence, again.Sequence)
	assert.Equal(t, values(b2), values(again))
	assert.True(t, b2.CreatedAt.AsTime().Equal(again.CreatedAt.AsTime()))
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func TestResumeWithoutSequenceContinuesAfterLastSent(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, aloRequest("cont", nil, 5))
	publish(t, h, gauges("g", 0, 10))
	s.nextBatch()
	s.nextBatch()
	require.NoError(t, ignoreCanceled(s.stop()))
	publish(t, h, gauges("g", 10, 5))
	r := openStream(t, h, aloRequest("cont", nil, 5))
	assert.Equal(t, uint64(3), r.nextBatch().Sequence)
}

func TestDataLossWhenReplayLogOutrun(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.Replay.MaxBytes = 2048 })
	s := openStream(t, h, aloRequest("slow", nil, 10))
	publish(t, h, gauges("g", 0, 10))
	first := s.nextBatch()
	require.NoError(t, ignoreCanceled(s.stop()))
	for i := 10; i < 1000; i += 10 {
		publish(t, h, gauges("g", i, 10))
	}
	_, err := h.Subscribe(aloRequest("slow", u64(first.Sequence), 10))
	var loss *DataLossError
	require.ErrorAs(t, err, &loss)
	assert.Equal(t, "slow", loss.SubscriptionID)
	assert.Equal(t, uint64(2), loss.From)
	assert.Greater(t, loss.To, uint64(2))
	assert.Less(t, loss.To, uint64(100))
	assert.Contains(t, err.Error(), "batches 2..")

	// resuming where the message says continues with the oldest batch kept
	r := openStream(t, h, aloRequest("slow", u64(loss.To), 10))
	assert.Equal(t, loss.To+1, r.nextBatch().Sequence)
}

func TestDataLossWhileStreaming(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.Replay.MaxBytes = 2048 })
	s := openStream(t, h, aloRequest("stalled", nil, 10))
	s.nextHeartbeat()
	s.stall()
	publish(t, h, gauges("g", 0, 10))
	require.Eventually(t, func() bool { // batch 1 is in the stalled send
		s.st.sub.mu.Lock()
		defer s.st.sub.mu.Unlock()
		return s.st.att.cursor == 2
	}, waitFor, time.Millisecond)
	for i := 10; i < 1000; i += 10 {
		publish(t, h, gauges("g", i, 10))
	}
	s.release()
	var loss *DataLossError
	require.ErrorAs(t, s.wait(), &loss)
	assert.Equal(t, uint64(2), loss.From)
}

func TestReplayLogMaxAge(t *testing.T) {
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	cfg := DefaultConfig()
	cfg.Replay.MaxAge = time.Minute
	cfg.Replay.IdleTTL = time.Hour
	h, err := NewHub(cfg, zap.NewNop())
	require.NoError(t, err)
	h.now = func() time.Time { return time.Unix(0, clock.Load()) }
	require.NoError(t, h.Start())
	t.Cleanup(h.Close)
	st, err := h.Subscribe(aloRequest("aged", nil, 5))
	require.NoError(t, err)
	h.detach(st)
	publish(t, h, gauges("g", 0, 10)) // batches 1, 2
	clock.Add(int64(2 * time.Minute))
	publish(t, h, gauges("g", 10, 5)) // batch 3
	h.sweep(h.now())
	_, err = h.Subscribe(aloRequest("aged", u64(0), 5))
	var loss *DataLossError
	require.ErrorAs(t, err, &loss)
	assert.Equal(t, uint64(1), loss.From)
	assert.Equal(t, uint64(2), loss.To)
}

func TestUnknownSubscriptionResumeIsDataLoss(t *testing.T) {
	h := newTestHub(t, nil)
	_, err := h.Subscribe(aloRequest("gone", u64(5), 5))
	var loss *DataLossError
	require.ErrorAs(t, err, &loss)
	assert.True(t, loss.Unknown)
	assert.Equal(t, uint64(6), loss.From)
	assert.Contains(t, err.Error(), "unknown")

	s := openStream(t, h, aloRequest("fresh", u64(0), 5))
	assert.Equal(t, "fresh", s.nextHeartbeat().SubscriptionId, "resume after 0 opens a new subscription")
}

func TestResumeAheadIsRefused(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, aloRequest("ahead", nil, 5))
	require.NoError(t, ignoreCanceled(s.stop()))
	_, err := h.Subscribe(aloRequest("ahead", u64(7), 5))
	require.ErrorIs(t, err, ErrResumeAhead)
}

func TestTakeover(t *testing.T) {
	h := newTestHub(t, nil)
	old := openStream(t, h, aloRequest("same", nil, 5))
	old.nextHeartbeat()
	newer := openStream(t, h, aloRequest("same", nil, 5))
	require.ErrorIs(t, old.wait(), ErrTakenOver)
	publish(t, h, gauges("g", 0, 5))
	assert.Equal(t, seq(0, 4), values(newer.nextBatch()))
	assert.Equal(t, 1, h.Subscriptions())
}

func TestSubscriptionMismatch(t *testing.T) {
	h := newTestHub(t, nil)
	_ = openStream(t, h, aloRequest("m", nil, 5))
	other := aloRequest("m", nil, 5)
	other.Filter.Names = []string{"h"}
	_, err := h.Subscribe(other)
	require.ErrorIs(t, err, ErrSubscriptionMismatch)
	be := aloRequest("m", nil, 5)
	be.Options.Qos = pb.QualityOfService_QUALITY_OF_SERVICE_BEST_EFFORT
	_, err = h.Subscribe(be)
	require.ErrorIs(t, err, ErrSubscriptionMismatch)
	eo := aloRequest("m", nil, 5)
	eo.Options.Qos = pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE
	_, err = h.Subscribe(eo)
	require.NoError(t, err, "exactly once is at least once on the server")
}

func TestMaxSubscribers(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.MaxSubscribers = 2 })
	_ = openStream(t, h, &pb.StreamMetricsRequest{})
	_ = openStream(t, h, &pb.StreamMetricsRequest{})
	_, err := h.Subscribe(&pb.StreamMetricsRequest{})
	require.ErrorIs(t, err, ErrTooManySubscribers)
	assert.Contains(t, err.Error(), "max_subscribers (2)")
}

func TestNewSubscriptionReclaimsTheLongestIdleResumableSlot(t *testing.T) {
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	cfg := DefaultConfig()
	cfg.MaxSubscribers = 3
	cfg.Replay.IdleTTL = time.Hour
	h, err := NewHub(cfg, zap.NewNop())
	require.NoError(t, err)
	h.now = func() time.Time { return time.Unix(0, clock.Load()) }
	require.NoError(t, h.Start())
	t.Cleanup(h.Close)

	idle := func(id string) {
		st, err := h.Subscribe(aloRequest(id, nil, 5))
		require.NoError(t, err)
		h.detach(st)
		clock.Add(int64(time.Minute))
	}
	idle("a") // idle the longest
	idle("b")
	live, err := h.Subscribe(&pb.StreamMetricsRequest{}) // best effort, with a stream
	require.NoError(t, err)
	t.Cleanup(func() { h.detach(live) })

	c, err := h.Subscribe(aloRequest("c", nil, 5))
	require.NoError(t, err, "the slot of the idle subscription a is reclaimed")
	t.Cleanup(func() { h.detach(c) })
	assert.Equal(t, 3, h.Subscriptions())

	_, err = h.Subscribe(aloRequest("a", u64(1), 5))
	var loss *DataLossError
	require.ErrorAs(t, err, &loss, "a reclaimed subscription resumes like an expired one")
	assert.True(t, loss.Unknown)

	d, err := h.Subscribe(aloRequest("d", nil, 5))
	require.NoError(t, err, "b is reclaimed next")
	t.Cleanup(func() { h.detach(d) })

	_, err = h.Subscribe(aloRequest("e", nil, 5))
	require.ErrorIs(t, err, ErrTooManySubscribers, "every slot has a live stream")
	assert.Contains(t, err.Error(), "stream.max_subscribers (3)")
	assert.Contains(t, err.Error(), "each with a live stream")
	_, err = h.Subscribe(aloRequest("b", u64(1), 5))
	require.ErrorAs(t, err, &loss)
}

func TestBestEffortSlotsAreNotReclaimed(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.MaxSubscribers = 1 })
	st, err := h.Subscribe(aloRequest("x", nil, 5))
	require.NoError(t, err)
	_, err = h.Subscribe(&pb.StreamMetricsRequest{})
	require.ErrorIs(t, err, ErrTooManySubscribers, "a subscription with a live stream keeps its slot")
	h.detach(st)
	be, err := h.Subscribe(&pb.StreamMetricsRequest{})
	require.NoError(t, err, "the detached at-least-once subscription gives its slot")
	h.detach(be)
}

func TestInvalidOptions(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.MaxBatchSize = 100; c.MaxBufferSize = 10; c.BufferSize = 10 })
	tests := []struct {
		opts *pb.StreamOptions
		want string
	}{
		{&pb.StreamOptions{ResumeAfterSequence: u64(1)}, "options.resume_after_sequence"},
		{&pb.StreamOptions{BatchSize: 101}, "options.batch_size: 101 is more than the server's limit 100"},
		{&pb.StreamOptions{HeartbeatIntervalMs: 1}, "options.heartbeat_interval_ms"},
		{&pb.StreamOptions{BatchTimeoutMs: 3_600_000}, "options.batch_timeout_ms"},
		{&pb.StreamOptions{BufferSize: 11}, "options.buffer_size"},
		{&pb.StreamOptions{SubscriptionId: "../x"}, "options.subscription_id"},
		{&pb.StreamOptions{Qos: 9}, "options.qos"},
	}
	for _, tt := range tests {
		_, err := h.Subscribe(&pb.StreamMetricsRequest{Options: tt.opts})
		require.ErrorIs(t, err, ErrInvalidRequest)
		assert.ErrorContains(t, err, tt.want)
	}
	_, err := h.Subscribe(&pb.StreamMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"["}}})
	require.ErrorIs(t, err, ErrInvalidRequest)
	assert.ErrorContains(t, err, "filter.names[0]")
	assert.Equal(t, 0, h.Subscriptions())
}

func TestBestEffortEndsWithItsStream(t *testing.T) {
	h := newTestHub(t, nil)
	s := openStream(t, h, &pb.StreamMetricsRequest{Options: &pb.StreamOptions{SubscriptionId: "be"}})
	publish(t, h, gauges("g", 0, 3))
	require.ErrorIs(t, s.stop(), context.Canceled)
	assert.Equal(t, 0, h.Subscriptions())
	assert.Equal(t, 0, h.Streams())
	assert.Equal(t, int64(0), h.MemoryBytes())
}

func TestIdleSubscriptionExpires(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.Replay.IdleTTL = 20 * time.Millisecond })
	s := openStream(t, h, aloRequest("idle", nil, 5))
	publish(t, h, gauges("g", 0, 10))
	require.NoError(t, ignoreCanceled(s.stop()))
	require.Eventually(t, func() bool { return h.Subscriptions() == 0 }, waitFor, time.Millisecond)
	assert.Equal(t, int64(0), h.MemoryBytes())
	_, err := h.Subscribe(aloRequest("idle", u64(1), 5))
	var loss *DataLossError
	require.ErrorAs(t, err, &loss)
	assert.True(t, loss.Unknown)
}

func TestCloseEndsStreams(t *testing.T) {
	h := newTestHub(t, nil)
	a := openStream(t, h, &pb.StreamMetricsRequest{})
	b := openStream(t, h, aloRequest("x", nil, 5))
	publish(t, h, gauges("g", 0, 3))
	h.Close()
	require.ErrorIs(t, a.wait(), ErrClosed)
	require.ErrorIs(t, b.wait(), ErrClosed)
	assert.Equal(t, int64(0), h.MemoryBytes())
	_, err := h.Subscribe(&pb.StreamMetricsRequest{})
	require.ErrorIs(t, err, ErrClosed)
	assert.Nil(t, h.Stage(gauges("g", 0, 1)))
	h.Close()
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	cfg.MaxSubscribers = 0
	cfg.BufferSize = 20_000
	cfg.Replay.MaxAge = 0
	err := cfg.Validate()
	assert.ErrorContains(t, err, "max_subscribers: must be positive, got 0")
	assert.ErrorContains(t, err, "buffer_size: 20000 is more than max_buffer_size 10000")
	assert.ErrorContains(t, err, "replay.max_age: must be positive")
}

func TestTakeoverWithSmallerBatchSize(t *testing.T) {
	h := newTestHub(t, nil)
	st, err := h.Subscribe(aloRequest("shrink", nil, 10))
	require.NoError(t, err)
	h.detach(st)
	publish(t, h, gauges("g", 0, 7)) // an open batch of 7
	s := openStream(t, h, aloRequest("shrink", u64(0), 3))
	publish(t, h, gauges("g", 7, 6))
	var sizes, got []int
	for len(got) < 13 {
		b := s.nextBatch()
		sizes = append(sizes, len(b.Metrics))
		got = append(got, values(b)...)
	}
	assert.Equal(t, []int{7, 3, 3}, sizes, "the open batch closes as it is, then the new size applies")
	assert.Equal(t, seq(0, 12), got)
}

// TestLabelIndexRouting checks the label index against evaluating every
// filter on every point.
func TestLabelIndexRouting(t *testing.T) {
	h := newTestHub(t, nil)
	eq := pb.MatchOperator_MATCH_OPERATOR_EQUAL
	filters := []*pb.MetricFilter{
		{LabelMatchers: []*pb.LabelMatcher{{Name: "parity", Operator: eq, Value: "even"}}},
		{LabelMatchers: []*pb.LabelMatcher{{Name: "parity", Operator: eq, Value: "even"}}}, // same value twice
		{LabelMatchers: []*pb.LabelMatcher{{Name: "parity", Value: "odd"}, {Name: "i", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "1.*"}}},
		{LabelMatchers: []*pb.LabelMatcher{{Name: "i", Operator: pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX, Value: "[0-4]"}, {Name: "i", Operator: eq, Value: "7"}}},
		{LabelMatchers: []*pb.LabelMatcher{{Name: "i", Operator: pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL, Value: "3"}}}, // not indexable
		{LabelMatchers: []*pb.LabelMatcher{{Name: "tenant", Operator: eq, Value: ""}}},                                    // matches a missing label: not indexable
		{LabelMatchers: []*pb.LabelMatcher{{Name: "missing", Operator: eq, Value: "x"}}},                                  // never matches
		{},
	}
	for _, f := range filters {
		_, err := h.Subscribe(&pb.StreamMetricsRequest{Filter: f})
		require.NoError(t, err)
	}
	md := gauges("g", 0, 20)
	st := h.Stage(md)
	require.NotNil(t, st)
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	for si, sub := range st.r.subs {
		var want []int
		for i := 0; i < dps.Len(); i++ {
			if sub.filter.MatchLabels(dps.At(i).Attributes()) {
				want = append(want, int(dps.At(i).DoubleValue()))
			}
		}
		var got []int
		for _, item := range st.per[si] {
			m := &pb.MetricData{}
			require.NoError(t, m.UnmarshalVT(item))
			got = append(got, int(m.Value))
		}
		assert.Equal(t, want, got, "subscription %s", sub.spec)
	}
	st.Rollback()
}
