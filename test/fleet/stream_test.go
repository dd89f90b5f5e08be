// Package fleet tests a fleet of collectors sharing real peers: several
// in-process nodes (metrics_store extension, processor and metrics_service
// receiver each), and the README's recipe as three collector processes
// (test/childcollector) with etcd, VictoriaMetrics and nats-server.
package fleet

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metricsmodule/metricsmodule/client/streamclient"
	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

const wait = 30 * time.Second

// fleetNode is one node: store extension, processor and receiver.
type fleetNode struct {
	conn *grpc.ClientConn
	api  pb.MetricsServiceClient
}

func startFleetNode(t *testing.T, natsURL, name string) *fleetNode {
	t.Helper()
	ctx := context.Background()
	p, err := storepipeline.Start(ctx, filepath.Join(t.TempDir(), "tsdb"), func(c *metricsstoreextension.Config) {
		c.Stream.Cluster.Node = name
		c.Stream.Cluster.NATS.URL = natsURL
		c.Stream.Cluster.NATS.ReconnectWait = 20 * time.Millisecond
	}, consumertest.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop(context.Background())) })

	f := metricsservicereceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
	cfg.NetAddr.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(testpeer.FreePort(t)))
	set := receiver.Settings{ID: component.NewIDWithName(f.Type(), name), TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}
	r, err := f.CreateMetrics(ctx, set, cfg, p.Next)
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx, p.Host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	conn, err := grpc.NewClient(cfg.NetAddr.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &fleetNode{conn: conn, api: pb.NewMetricsServiceClient(conn)}
}

// record ingests one gauge point with value v through the node's receiver.
func (n *fleetNode) record(t *testing.T, name string, v float64) {
	t.Helper()
	_, err := n.api.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{
		Name: name, Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: v, Labels: map[string]string{"v": strconv.Itoa(int(v))},
	}})
	require.NoError(t, err)
}

// collector is an exactly-once stream client and what it handled.
type collector struct {
	mu     sync.Mutex
	seqs   []uint64
	values []float64
	client *streamclient.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned with err
	err    error
	opened atomic.Bool // a heartbeat arrived: the stream is positioned
}

func collect(t *testing.T, n *fleetNode, id string, resume *uint64) *collector {
	t.Helper()
	c := &collector{done: make(chan struct{})}
	client, err := streamclient.New(n.conn, streamclient.Config{
		Filter: &pb.MetricFilter{Names: []string{"fleet_gauge"}},
		Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE, SubscriptionId: id, ResumeAfterSequence: resume,
			HeartbeatIntervalMs: 20,
		},
		Handler: func(_ context.Context, b *pb.MetricBatch) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.seqs = append(c.seqs, b.GetSequence())
			for _, m := range b.GetMetrics() {
				c.values = append(c.values, m.GetValue())
			}
			return nil
		},
		OnHeartbeat: func(*pb.Heartbeat) { c.opened.Store(true) },
		MinBackoff:  5 * time.Millisecond,
		MaxBackoff:  50 * time.Millisecond,
	})
	require.NoError(t, err)
	c.client = client
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		c.err = client.Run(ctx)
		close(c.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

func (c *collector) got() ([]uint64, []float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.seqs...), append([]float64(nil), c.values...)
}

// waitValues waits until the collector handled n values.
func (c *collector) waitValues(t *testing.T, n int) {
	t.Helper()
	if !assert.Eventually(t, func() bool { _, v := c.got(); return len(v) >= n }, wait, time.Millisecond) {
		seqs, values := c.got()
		t.Fatalf("%d of %d values: %v (batches %v)", len(values), n, values, seqs)
	}
}

func TestFleetStreamSubscriberMovesToAnotherNodeAndResumes(t *testing.T) {
	peer := testpeer.Start(t, testpeer.Config{
		Binary: "nats-server",
		Args: func(a string) []string {
			host, port, _ := net.SplitHostPort(a)
			return []string{"-js", "-a", host, "-p", port, "-sd", t.TempDir()}
		},
	})
	url := "nats://" + peer.Addr
	nodes := []*fleetNode{startFleetNode(t, url, "a"), startFleetNode(t, url, "b"), startFleetNode(t, url, "c")}

	reference := collect(t, nodes[2], "reference", nil)
	mover := collect(t, nodes[0], "mover", nil)
	// both streams are positioned once their first heartbeat arrived
	require.Eventually(t, func() bool { return reference.opened.Load() && mover.opened.Load() }, wait, time.Millisecond)

	for i := range 30 { // points ingested on every node reach a subscriber on any node
		nodes[i%3].record(t, "fleet_gauge", float64(i))
		nodes[i%3].record(t, "fleet_other", float64(i))
	}
	mover.waitValues(t, 30)
	mover.cancel()
	<-mover.done
	moverSeqs, moverValues := mover.got()
	last := mover.client.LastSequence() // its last batch, or past it when heartbeats moved it on
	require.GreaterOrEqual(t, last, moverSeqs[len(moverSeqs)-1])

	for i := 30; i < 60; i++ { // ingested while the subscriber moves
		nodes[i%3].record(t, "fleet_gauge", float64(i))
	}
	moved := collect(t, nodes[1], "mover", &last)
	reference.waitValues(t, 60)
	moved.waitValues(t, 30)

	refSeqs, refValues := reference.got()
	movedSeqs, movedValues := moved.got()
	assert.ElementsMatch(t, refValues, append(moverValues, movedValues...), "every point once, none lost across the move")
	assert.Equal(t, refSeqs, append(moverSeqs, movedSeqs...), "the same sequences on every node, each once")
	for i := 1; i < len(refSeqs); i++ {
		assert.Greater(t, refSeqs[i], refSeqs[i-1])
	}
}
