package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// deafConn is a client connection that, once deaf, reads what the server
// sends and throws it away until it is closed: the request goes out, the
// answer never arrives.
type deafConn struct {
	net.Conn
	deaf   *atomic.Bool
	closed chan struct{}
	once   sync.Once
}

func (c *deafConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.deaf.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *deafConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// deafClient is a MetricsService client whose connections can turn deaf.
type deafClient struct {
	pb.MetricsServiceClient
	deaf  atomic.Bool
	mu    sync.Mutex
	conns []*deafConn
}

func newDeafClient(t *testing.T, addr string) *deafClient {
	t.Helper()
	d := &deafClient{}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
			if err != nil {
				return nil, err
			}
			dc := &deafConn{Conn: c, deaf: &d.deaf, closed: make(chan struct{})}
			d.mu.Lock()
			d.conns = append(d.conns, dc)
			d.mu.Unlock()
			return dc, nil
		}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	d.MetricsServiceClient = pb.NewMetricsServiceClient(conn)
	return d
}

// hangUp closes the connections (the collector died).
func (d *deafClient) hangUp() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
}

// samples returns the raw samples of the series sel selects in the last hour.
func samples(t *testing.T, c pb.MetricsServiceClient, sel string) []*pb.Series {
	t.Helper()
	resp, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: sel + "[1h]", Time: timestamppb.New(time.Now().Add(time.Minute))})
	require.NoError(t, err)
	return resp.Series
}

// TestBatchStoredButUnansweredBeforeKill9IsCountedOnce: a batch is stored
// and its answer is on the way when the collector is killed with SIGKILL;
// the client never got the answer and retries with the same request id
// after the restart. The dedup journal next to the store remembered the id:
// the retry is answered as a duplicate and the counter holds the batch once.
// The control (dedup.persist: false, ids in memory only) counts it twice.
func TestBatchStoredButUnansweredBeforeKill9IsCountedOnce(t *testing.T) {
	for _, persist := range []bool{true, false} {
		name := "journal"
		if !persist {
			name = "memory only (control)"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := newCollectorProc(t, dir)
			if !persist {
				raw, err := os.ReadFile(p.cfgPath)
				require.NoError(t, err)
				cfg := strings.Replace(string(raw), "  metrics_service:\n", "  metrics_service:\n    dedup:\n      persist: false\n", 1)
				require.NoError(t, os.WriteFile(p.cfgPath, []byte(cfg), 0o600))
			}
			p.start()
			direct := p.client()
			dc := newDeafClient(t, p.e.ingest)
			ctx := context.Background()
			// the connection is up and idle before it turns deaf
			_, err := dc.RecordMetric(ctx, &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "dedup_crash_warmup", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}})
			require.NoError(t, err)

			const id = "crash-batch-0001"
			req := &pb.RecordBatchMetricsRequest{RequestId: id, Resource: &pb.Resource{Attributes: map[string]string{"service.name": "dedup-crash"}},
				Metrics: []*pb.MetricData{
					{Name: "dedup_crash_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: map[string]string{"path": "/a"}},
					{Name: "dedup_crash_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 7, Labels: map[string]string{"path": "/b"}},
				}}
			dc.deaf.Store(true)
			callErr := make(chan error, 1)
			go func() {
				cctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				_, err := dc.RecordBatchMetrics(cctx, req)
				callErr <- err
			}()
			// stored (and, with the journal, journaled: both happen before the answer)
			journal := filepath.Join(dir, "dedup.journal")
			require.Eventually(t, func() bool {
				if persist {
					raw, _ := os.ReadFile(journal)
					return bytes.Contains(raw, []byte(id))
				}
				return len(samples(t, direct, `dedup_crash_requests_total`)) == 2
			}, time.Minute, 5*time.Millisecond)
			p.stop(syscall.SIGKILL)
			dc.hangUp()
			require.Error(t, <-callErr, "the client never got the answer")

			p.start()
			resp, err := p.client().RecordBatchMetrics(ctx, req)
			require.NoError(t, err)
			got := samples(t, p.client(), `dedup_crash_requests_total`)
			require.Len(t, got, 2)
			if !persist {
				assert.False(t, resp.Duplicate)
				for _, s := range got {
					assert.Len(t, s.Samples, 2, "%v: without the journal the retry is stored again", s.Labels)
				}
				return
			}
			assert.True(t, resp.Duplicate, "the restarted collector knows the request id")
			assert.EqualValues(t, 2, resp.AcceptedCount, "the first answer is replayed")
			want := map[string]float64{"/a": 5, "/b": 7}
			for _, s := range got {
				require.Len(t, s.Samples, 1, "%v: stored once", s.Labels)
				assert.Equal(t, want[s.Labels["path"]], s.Samples[0].Value)
			}
		})
	}
}
