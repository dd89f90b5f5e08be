package natslog_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metricsmodule/metricsmodule/internal/stream"
	"github.com/metricsmodule/metricsmodule/internal/stream/natslog"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of these tests.
const wait = 30 * time.Second

// startNATS runs nats-server with JetStream, its store in dir, on addr (a
// free port when empty).
func startNATS(t testing.TB, dir, addr string) *testpeer.Peer {
	t.Helper()
	return testpeer.Start(t, testpeer.Config{
		Binary: "nats-server",
		Addr:   addr,
		Args: func(a string) []string {
			host, port, _ := net.SplitHostPort(a)
			return []string{"-js", "-a", host, "-p", port, "-sd", dir}
		},
	})
}

// node is one collector's stream hub in cluster mode.
type node struct {
	hub *stream.Hub
	log *natslog.Log
}

func newNode(t testing.TB, url, name string, mutate func(*stream.Config)) *node {
	t.Helper()
	cfg := stream.DefaultConfig()
	cfg.Cluster.Node = name
	cfg.Cluster.NATS.URL = url
	cfg.Cluster.NATS.ReconnectWait = 20 * time.Millisecond
	cfg.Cluster.NATS.PublishTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	log, err := natslog.Open(cfg.Cluster, zaptest.NewLogger(t).Named(name), nil)
	require.NoError(t, err)
	hub, err := stream.NewHub(cfg, zap.NewNop(), stream.WithCluster(log))
	require.NoError(t, err)
	require.NoError(t, hub.Start())
	t.Cleanup(func() {
		hub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		log.Close(ctx)
	})
	return &node{hub: hub, log: log}
}

// ingest commits one batch of points gauges named name.
func (n *node) ingest(name string, points int) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for i := 0; i < points; i++ {
		dp := dps.AppendEmpty()
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutInt("i", int64(i))
	}
	_ = n.hub.Stage(md).Commit()
}

// ingestPublished ingests and waits until JetStream acknowledged the batch,
// so that batches from several nodes are in the log in the order of the
// calls.
func (n *node) ingestPublished(t *testing.T, name string, points int) {
	t.Helper()
	before := n.log.Status().Published
	n.ingest(name, points)
	require.Eventually(t, func() bool { return n.log.Status().Published > before }, wait, time.Millisecond)
}

// subscriber runs one stream and collects what it sends.
type subscriber struct {
	msgs   chan *pb.StreamMetricsResponse
	errc   chan error
	cancel context.CancelFunc
	hbs    []*pb.Heartbeat
}

func subscribe(t *testing.T, n *node, id string, resume *uint64) (*subscriber, error) {
	t.Helper()
	// A new subscription on a node whose log is not connected yet starts
	// after the last record once the log is back (not at the records
	// published meanwhile): the tests subscribe on a connected node.
	require.Eventually(t, func() bool { return n.log.Status().Connected }, wait, time.Millisecond)
	st, err := n.hub.Subscribe(&pb.StreamMetricsRequest{
		Filter: &pb.MetricFilter{Names: []string{"wanted"}},
		Options: &pb.StreamOptions{
			SubscriptionId: id, Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE,
			HeartbeatIntervalMs: 20, ResumeAfterSequence: resume,
		},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{msgs: make(chan *pb.StreamMetricsResponse, 1024), errc: make(chan error, 1), cancel: cancel}
	go func() {
		s.errc <- st.Run(ctx, func(m stream.Message) error {
			buf := make([]byte, m.SizeVT())
			n, err := m.MarshalToSizedBufferVT(buf)
			if err != nil {
				return err
			}
			resp := &pb.StreamMetricsResponse{}
			if err := resp.UnmarshalVT(buf[len(buf)-n:]); err != nil {
				return err
			}
			select {
			case s.msgs <- resp:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, stream.Notice{})
	}()
	t.Cleanup(s.stop)
	return s, nil
}

func (s *subscriber) stop() {
	s.cancel()
}

// batches returns the next n batches (collecting heartbeats on the way).
func (s *subscriber) batches(t *testing.T, n int) []*pb.MetricBatch {
	t.Helper()
	var out []*pb.MetricBatch
	timeout := time.After(wait)
	for len(out) < n {
		select {
		case m := <-s.msgs:
			if b := m.GetBatch(); b != nil {
				out = append(out, b)
			} else if hb := m.GetHeartbeat(); hb != nil {
				s.hbs = append(s.hbs, hb)
			}
		case err := <-s.errc:
			t.Fatalf("stream ended after %d of %d batches: %v", len(out), n, err)
		case <-timeout:
			t.Fatalf("%d of %d batches after %s: %v", len(out), n, wait, seqs(out))
		}
	}
	return out
}

// heartbeatWhere waits for a heartbeat that ok accepts.
func (s *subscriber) heartbeatWhere(t *testing.T, ok func(*pb.Heartbeat) bool) *pb.Heartbeat {
	t.Helper()
	for _, hb := range s.hbs {
		if ok(hb) {
			return hb
		}
	}
	timeout := time.After(wait)
	for {
		select {
		case m := <-s.msgs:
			if hb := m.GetHeartbeat(); hb != nil {
				s.hbs = append(s.hbs, hb)
				if ok(hb) {
					return hb
				}
			} else {
				t.Fatalf("unexpected batch %d while waiting for a heartbeat", m.GetBatch().GetSequence())
			}
		case err := <-s.errc:
			t.Fatalf("stream ended: %v", err)
		case <-timeout:
			t.Fatalf("no such heartbeat after %s", wait)
		}
	}
}

func seqs(bs []*pb.MetricBatch) []uint64 {
	out := make([]uint64, len(bs))
	for i, b := range bs {
		out[i] = b.GetSequence()
	}
	return out
}

func natsURL(p *testpeer.Peer) string { return "nats://" + p.Addr }

func TestPointsIngestedOnOneNodeReachASubscriberOnAnother(t *testing.T) {
	t.Parallel()
	nats := startNATS(t, t.TempDir(), "")
	a := newNode(t, natsURL(nats), "a", nil)
	b := newNode(t, natsURL(nats), "b", nil)
	sub, err := subscribe(t, b, "on-b", nil)
	require.NoError(t, err)

	a.ingestPublished(t, "other", 2) // not matched: its sequence is skipped
	a.ingestPublished(t, "wanted", 3)
	b.ingestPublished(t, "wanted", 2)
	got := sub.batches(t, 2)
	assert.Len(t, got[0].GetMetrics(), 3)
	assert.Len(t, got[1].GetMetrics(), 2)
	assert.Equal(t, "wanted", got[0].GetMetrics()[0].GetName())
	// one global order, numbered by the JetStream sequence: 1 was "other"
	assert.Equal(t, []uint64{2, 3}, seqs(got))
}

func TestSubscriberResumesOnAnotherNodeExactlyAfterItsLastSequence(t *testing.T) {
	t.Parallel()
	nats := startNATS(t, t.TempDir(), "")
	nodes := []*node{
		newNode(t, natsURL(nats), "a", nil),
		newNode(t, natsURL(nats), "b", nil),
		newNode(t, natsURL(nats), "c", nil),
	}
	ref, err := subscribe(t, nodes[2], "reference", nil)
	require.NoError(t, err)
	onA, err := subscribe(t, nodes[0], "mover", nil)
	require.NoError(t, err)

	for i := 0; i < 10; i++ {
		nodes[i%3].ingest("wanted", 1+i%4)
		if i%3 == 1 {
			nodes[i%3].ingest("other", 1)
		}
	}
	first := onA.batches(t, 5)
	onA.stop()
	require.ErrorIs(t, <-onA.errc, context.Canceled)
	for i := 10; i < 20; i++ {
		nodes[i%3].ingest("wanted", 1+i%4)
	}
	all := ref.batches(t, 20)
	last := first[4].GetSequence()
	onB, err := subscribe(t, nodes[1], "mover", &last)
	require.NoError(t, err)
	rest := onB.batches(t, 15)

	assert.Equal(t, seqs(all[:5]), seqs(first), "the same sequences on every node")
	assert.Equal(t, seqs(all[5:]), seqs(rest), "everything after the resume point, once each, no gap")
	for i := range rest {
		assert.Len(t, rest[i].GetMetrics(), len(all[5+i].GetMetrics()))
	}
	select {
	case m := <-onB.msgs:
		assert.Nil(t, m.GetBatch(), "no batch beyond what was ingested")
	default:
	}

	ahead := all[19].GetSequence() + 100
	_, err = subscribe(t, nodes[2], "mover", &ahead)
	require.ErrorIs(t, err, stream.ErrResumeAhead)
}

func TestHeartbeatPositionSkipsUnmatchedRecordsForAResumeElsewhere(t *testing.T) {
	t.Parallel()
	nats := startNATS(t, t.TempDir(), "")
	a := newNode(t, natsURL(nats), "a", nil)
	b := newNode(t, natsURL(nats), "b", nil)
	sub, err := subscribe(t, a, "quiet", nil)
	require.NoError(t, err)
	for range 3 {
		b.ingestPublished(t, "other", 1)
	}
	hb := sub.heartbeatWhere(t, func(hb *pb.Heartbeat) bool { return hb.GetLastSequence() == 3 })
	sub.stop()
	b.ingestPublished(t, "wanted", 2) // while the subscriber has no stream
	last := hb.GetLastSequence()
	moved, err := subscribe(t, b, "quiet", &last)
	require.NoError(t, err)
	got := moved.batches(t, 1)
	assert.Equal(t, uint64(4), got[0].GetSequence(), "resuming after the position misses nothing")
}

func TestNATSRestartKeepsWhatWasCommittedOrReportsItDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nats := startNATS(t, dir, "")
	const points = 4
	// the publish buffer holds 3 batches of ours
	small := func(c *stream.Config) { c.Cluster.NATS.PublishBufferBytes = 3*batchBytes(points) + 10 }
	a := newNode(t, natsURL(nats), "a", small)
	b := newNode(t, natsURL(nats), "b", nil)
	sub, err := subscribe(t, b, "survivor", nil)
	require.NoError(t, err)

	for range 5 {
		a.ingest("wanted", points)
		require.Len(t, sub.batches(t, 1), 1) // within the small buffer
	}

	nats.Stop(t)
	require.Eventually(t, func() bool { return !a.log.Status().Healthy }, wait, time.Millisecond)
	for range 5 {
		a.ingest("wanted", points) // committed: 3 buffered, 2 dropped
	}
	st := a.log.Status()
	assert.Equal(t, 3, st.Buffered)
	assert.Equal(t, uint64(2), st.DroppedBatches)
	assert.Equal(t, uint64(2*points), st.DroppedPoints)
	sub.hbs = nil
	hb := sub.heartbeatWhere(t, func(hb *pb.Heartbeat) bool { return strings.Contains(hb.GetMessage(), "cluster degraded") })
	t.Logf("heartbeat while NATS is down: %q", hb.GetMessage())

	startNATS(t, dir, nats.Addr)
	require.Eventually(t, func() bool { st := a.log.Status(); return st.Healthy && st.Buffered == 0 }, wait, time.Millisecond)
	for range 5 {
		a.ingest("wanted", points)
		require.Eventually(t, func() bool { return a.log.Status().Buffered == 0 }, wait, time.Millisecond)
	}
	got := sub.batches(t, 8) // 3 buffered + 5 after the restart
	for i := 1; i < len(got); i++ {
		assert.Greater(t, got[i].GetSequence(), got[i-1].GetSequence())
	}
	dropped := sub.heartbeatWhere(t, func(hb *pb.Heartbeat) bool { return hb.GetDroppedBatches() > 0 })
	assert.Equal(t, uint64(2), dropped.GetDroppedBatches(), "the drops of node a reach the subscriber on b")
	assert.Equal(t, uint64(2*points), dropped.GetDroppedDatapoints())
	require.Eventually(t, func() bool { return a.log.Status().Healthy }, wait, time.Millisecond)
}

// batchBytes is the pdata protobuf size of a batch of ingest(points).
func batchBytes(points int) int64 {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("wanted")
	dps := m.SetEmptyGauge().DataPoints()
	for i := 0; i < points; i++ {
		dp := dps.AppendEmpty()
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutInt("i", int64(i))
	}
	b, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	return int64(len(b))
}

func TestResumeBeforeWhatTheStreamRetainsIsDataLoss(t *testing.T) {
	t.Parallel()
	nats := startNATS(t, t.TempDir(), "")
	const points = 50
	tiny := func(c *stream.Config) { c.Cluster.NATS.MaxBytes = 8 * batchBytes(points) }
	a := newNode(t, natsURL(nats), "a", tiny)
	sub, err := subscribe(t, a, "slow", nil)
	require.NoError(t, err)
	a.ingest("wanted", points)
	firstSeq := sub.batches(t, 1)[0].GetSequence()
	sub.stop()
	for range 30 {
		a.ingest("wanted", points)
	}
	var first uint64
	require.Eventually(t, func() bool {
		f, last, err := a.log.Bounds(context.Background())
		first = f
		return err == nil && last == 31 && f > 2
	}, wait, time.Millisecond)

	_, err = subscribe(t, a, "slow", &firstSeq)
	var loss *stream.DataLossError
	require.True(t, errors.As(err, &loss), "got %v", err)
	assert.Equal(t, firstSeq+1, loss.From)
	assert.Equal(t, first-1, loss.To)
	assert.Contains(t, loss.Error(), "cluster.nats.max_bytes")

	// resuming where the error says works
	resumed, err := subscribe(t, a, "slow", &loss.To)
	require.NoError(t, err)
	got := resumed.batches(t, int(31-loss.To))
	assert.Equal(t, loss.To+1, got[0].GetSequence())
}

func TestNodeStartsWhileNATSIsDownAndCatchesUp(t *testing.T) {
	t.Parallel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testpeer.FreePort(t)))
	a := newNode(t, "nats://"+addr, "a", nil)
	a.ingest("wanted", 2) // committed while NATS is down
	assert.False(t, a.log.Status().Healthy)
	assert.Equal(t, 1, a.log.Status().Buffered)

	nats := startNATS(t, t.TempDir(), addr)
	require.Eventually(t, func() bool { return a.log.Status().Buffered == 0 && a.log.Status().Healthy }, wait, time.Millisecond)
	b := newNode(t, natsURL(nats), "b", nil)
	sub, err := subscribe(t, b, "late", nil)
	require.NoError(t, err)
	a.ingest("wanted", 1)
	got := sub.batches(t, 1)
	assert.Equal(t, uint64(2), got[0].GetSequence(), "the batch buffered during the outage was published first")
}

// BenchmarkPublishToSubscriberOnAnotherNode measures committed batches (100
// points each) from node a until a subscriber on node b received them all.
func BenchmarkPublishToSubscriberOnAnotherNode(b *testing.B) {
	nats := startNATS(b, b.TempDir(), "")
	a := newNode(b, natsURL(nats), "a", nil)
	other := newNode(b, natsURL(nats), "b", nil)
	st, err := other.hub.Subscribe(&pb.StreamMetricsRequest{
		Filter:  &pb.MetricFilter{Names: []string{"wanted"}},
		Options: &pb.StreamOptions{Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE},
	})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	batches := make(chan struct{}, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.Run(ctx, func(m stream.Message) error {
			if _, hb := m.(*pb.StreamMetricsResponse); !hb {
				batches <- struct{}{}
			}
			return nil
		}, stream.Notice{})
	}()
	defer func() {
		cancel()
		<-done
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.ingest("wanted", 100)
		if i%64 == 63 { // stay within the publish buffer
			for range 64 {
				<-batches
			}
		}
	}
	for range b.N % 64 {
		<-batches
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "points/s")
	require.Zero(b, a.log.Status().DroppedBatches)
}
