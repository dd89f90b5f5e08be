package stream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// fakeLog is an in-memory ClusterLog: Publish appends a record; discard
// drops the oldest records, as JetStream retention does.
type fakeLog struct {
	mu      sync.Mutex
	recs    []ClusterRecord // from seq first
	first   uint64
	last    uint64
	added   chan struct{}
	healthy bool
}

func newFakeLog() *fakeLog { return &fakeLog{first: 1, added: make(chan struct{}), healthy: true} }

func (f *fakeLog) Publish(payload []byte, _ int) {
	f.append(ClusterRecord{Origin: "here", Time: time.Unix(1, 0), Payload: payload})
}

func (f *fakeLog) append(rec ClusterRecord) {
	f.mu.Lock()
	f.last++
	rec.Seq = f.last
	f.recs = append(f.recs, rec)
	close(f.added)
	f.added = make(chan struct{})
	f.mu.Unlock()
}

// skip numbers n records that are discarded before anyone read them.
func (f *fakeLog) skip(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last += n
	f.recs = nil
	f.first = f.last + 1
}

func (f *fakeLog) discard(upTo uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.recs) > 0 && f.recs[0].Seq <= upTo {
		f.recs = f.recs[1:]
	}
	f.first = upTo + 1
}

func (f *fakeLog) Bounds(context.Context) (uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.healthy {
		return 0, 0, errors.New("down")
	}
	return f.first, f.last, nil
}

func (f *fakeLog) Read(from uint64) ClusterReader { return &fakeReader{f: f, next: from} }

func (f *fakeLog) Status() ClusterStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ClusterStatus{Healthy: f.healthy, Connected: f.healthy, Message: "down"}
}

type fakeReader struct {
	f    *fakeLog
	next uint64
}

func (r *fakeReader) Next(ctx context.Context) (ClusterRecord, error) {
	for {
		r.f.mu.Lock()
		if r.next == 0 {
			r.next = r.f.last + 1
		}
		for _, rec := range r.f.recs {
			if rec.Seq >= r.next {
				r.next = rec.Seq + 1
				r.f.mu.Unlock()
				return rec, nil
			}
		}
		added := r.f.added
		r.f.mu.Unlock()
		select {
		case <-ctx.Done():
			return ClusterRecord{}, ctx.Err()
		case <-added:
		}
	}
}

func (r *fakeReader) Close() {}

func newClusterHub(t *testing.T, log ClusterLog) *Hub {
	t.Helper()
	h, err := NewHub(DefaultConfig(), zap.NewNop(), WithCluster(log))
	require.NoError(t, err)
	require.NoError(t, h.Start())
	t.Cleanup(h.Close)
	return h
}

// runClusterStream subscribes and runs the stream, returning its messages and end.
func runClusterStream(t *testing.T, h *Hub, qos pb.QualityOfService, resume *uint64) (<-chan *pb.StreamMetricsResponse, <-chan error) {
	t.Helper()
	st, err := h.Subscribe(&pb.StreamMetricsRequest{
		Filter:  &pb.MetricFilter{Names: []string{"a"}},
		Options: &pb.StreamOptions{SubscriptionId: "s", Qos: qos, ResumeAfterSequence: resume, HeartbeatIntervalMs: 10},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	msgs := make(chan *pb.StreamMetricsResponse, 256)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- st.Run(ctx, func(m Message) error {
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
			case msgs <- resp:
			default: // the test stopped reading
			}
			return nil
		}, Notice{})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return msgs, errc
}

func nextBatch(t *testing.T, msgs <-chan *pb.StreamMetricsResponse, hbs *[]*pb.Heartbeat) *pb.MetricBatch {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case m := <-msgs:
			if b := m.GetBatch(); b != nil {
				return b
			}
			*hbs = append(*hbs, m.GetHeartbeat())
		case <-timeout:
			t.Fatal("no batch")
		}
	}
}

func TestClusterCommitPublishesAndStreamsNumberByLogSequence(t *testing.T) {
	log := newFakeLog()
	h := newClusterHub(t, log)
	msgs, _ := runClusterStream(t, h, pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, nil)

	st := h.Stage(gauges("a", 0, 3))
	assert.Empty(t, log.recs, "nothing is published before the commit")
	require.NoError(t, st.Commit())
	h.Stage(gauges("other", 0, 1)).Rollback()
	require.NoError(t, h.Stage(gauges("other", 0, 1)).Commit())
	require.NoError(t, h.Stage(gauges("a", 10, 2)).Commit())
	assert.Len(t, log.recs, 3, "a rolled-back batch is not published")

	var hbs []*pb.Heartbeat
	b1 := nextBatch(t, msgs, &hbs)
	b2 := nextBatch(t, msgs, &hbs)
	assert.Equal(t, uint64(1), b1.GetSequence())
	assert.Len(t, b1.GetMetrics(), 3)
	assert.Equal(t, uint64(3), b2.GetSequence(), "sequence 2 had nothing for the filter")
	assert.Len(t, b2.GetMetrics(), 2)
	assert.Equal(t, "test", b2.GetMetrics()[0].GetResource().GetAttributes()["service.name"])
}

func TestClusterGapIsDataLossAtLeastOnceAndDropsBestEffort(t *testing.T) {
	log := newFakeLog()
	h := newClusterHub(t, log)
	payload, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(gauges("a", 0, 1))
	require.NoError(t, err)
	for range 5 {
		log.append(ClusterRecord{Payload: payload})
	}
	log.discard(3)

	resume := uint64(1)
	_, err = h.Subscribe(&pb.StreamMetricsRequest{Options: &pb.StreamOptions{
		Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, ResumeAfterSequence: &resume,
	}})
	var loss *DataLossError
	require.ErrorAs(t, err, &loss)
	assert.Equal(t, uint64(2), loss.From)
	assert.Equal(t, uint64(3), loss.To)

	ahead := uint64(9)
	_, err = h.Subscribe(&pb.StreamMetricsRequest{Options: &pb.StreamOptions{
		Qos: pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, ResumeAfterSequence: &ahead,
	}})
	require.ErrorIs(t, err, ErrResumeAhead)

	// a stream behind the log's retention: the reader jumps the gap
	t.Run("at least once", func(t *testing.T) {
		at := uint64(3)
		msgs, errc := runClusterStream(t, h, pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, &at)
		var hbs []*pb.Heartbeat
		assert.Equal(t, uint64(4), nextBatch(t, msgs, &hbs).GetSequence())
		assert.Equal(t, uint64(5), nextBatch(t, msgs, &hbs).GetSequence())
		log.skip(2)                                 // 6, 7
		log.append(ClusterRecord{Payload: payload}) // 8
		select {
		case err := <-errc:
			require.ErrorAs(t, err, &loss)
			assert.Equal(t, uint64(6), loss.From)
			assert.Equal(t, uint64(7), loss.To)
			assert.Contains(t, loss.Error(), "cluster.nats.max_bytes")
		case <-time.After(waitFor):
			t.Fatal("the stream did not end")
		}
	})
	t.Run("best effort", func(t *testing.T) {
		msgs, _ := runClusterStream(t, h, pb.QualityOfService_QUALITY_OF_SERVICE_BEST_EFFORT, nil)
		var hbs []*pb.Heartbeat
		for len(hbs) == 0 { // positioned after 8
			m := <-msgs
			hbs = append(hbs, m.GetHeartbeat())
		}
		log.append(ClusterRecord{Payload: payload}) // 9
		assert.Equal(t, uint64(9), nextBatch(t, msgs, &hbs).GetSequence())
		log.skip(2)                                 // 10, and 11: a drop report
		log.append(ClusterRecord{Payload: payload}) // 12
		log.append(ClusterRecord{DroppedBatches: 1, DroppedPoints: 1})
		log.append(ClusterRecord{Payload: payload}) // 14
		var dropped, points uint64
		require.Eventually(t, func() bool {
			for {
				select {
				case m := <-msgs:
					dropped += m.GetHeartbeat().GetDroppedBatches()
					points += m.GetHeartbeat().GetDroppedDatapoints()
				default:
					return dropped == 2+1 // 10 and 11 gone (2), then the report of 1
				}
			}
		}, waitFor, time.Millisecond)
		assert.Equal(t, uint64(1), points)
	})
}

func TestClusterConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{name: "off", mutate: func(*Config) {}},
		{name: "on", mutate: func(c *Config) { c.Cluster.NATS.URL = "nats://127.0.0.1:4222" }},
		{name: "subject", mutate: func(c *Config) { c.Cluster.NATS.URL = "nats://x"; c.Cluster.NATS.Subject = "" }, want: "cluster.nats.subject: must not be empty"},
		{name: "max bytes", mutate: func(c *Config) { c.Cluster.NATS.URL = "nats://x"; c.Cluster.NATS.MaxBytes = 0 }, want: "cluster.nats.max_bytes: must be positive, got 0"},
		{name: "buffer", mutate: func(c *Config) { c.Cluster.NATS.URL = "nats://x"; c.Cluster.NATS.PublishBufferBytes = -1 }, want: "cluster.nats.publish_buffer_bytes: must be positive, got -1"},
		{name: "timeout", mutate: func(c *Config) { c.Cluster.NATS.URL = "nats://x"; c.Cluster.NATS.PublishTimeout = 0 }, want: "cluster.nats.publish_timeout: must be positive"},
		{name: "reconnect", mutate: func(c *Config) { c.Cluster.NATS.URL = "nats://x"; c.Cluster.NATS.ReconnectWait = 0 }, want: "cluster.nats.reconnect_wait: must be positive"},
		{name: "directory", mutate: func(c *Config) { c.Cluster.NATS.URL = "nats://x"; c.Replay.Directory = "/tmp/x" }, want: "replay.directory: not used in cluster mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}
