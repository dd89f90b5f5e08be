package metricsservicereceiver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/rules"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// definitionsConverge is the bound README documents for a definition
// registered on one node to be enforced on every other (the etcd watch
// usually takes milliseconds).
const definitionsConverge = 5 * time.Second

// etcdNode is one receiver of a fleet with its definitions on etcd.
type etcdNode struct {
	c    pb.MetricsServiceClient
	h    healthpb.HealthClient
	r    *metricsReceiver
	stop func()
}

func runEtcdReceiver(t *testing.T, eps []string, prefix string, mode registry.Mode, mutate ...func(*Config)) *etcdNode {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.PrometheusAPI = configoptional.None[confighttp.ServerConfig]()
	cfg.Definitions.Mode = mode
	cfg.Definitions.Backend = DefinitionsBackendEtcd
	cfg.Definitions.Etcd.Endpoints = eps
	cfg.Definitions.Etcd.Prefix = prefix
	cfg.Definitions.Etcd.RequestTimeout = time.Second
	cfg.Definitions.Etcd.HealthInterval = 100 * time.Millisecond
	cfg.Definitions.Etcd.LeaseTTL = 2 * time.Second
	for _, m := range mutate {
		m(cfg)
	}
	require.NoError(t, cfg.Validate())
	next, host, stopPipeline := storePipelineStop(t, filepath.Join(t.TempDir(), "tsdb"), nil, &switchSink{})
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	conn, err := grpc.NewClient(r.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	n := &etcdNode{c: pb.NewMetricsServiceClient(conn), h: healthpb.NewHealthClient(conn), r: r}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			_ = conn.Close()
			require.NoError(t, r.Shutdown(context.Background()))
			stopPipeline()
		})
	}
	t.Cleanup(n.stop)
	return n
}

func etcdPrefix(t *testing.T) string { return "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/" }

func recordMethod(c pb.MetricsServiceClient, method string) error {
	_, err := c.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "http_requests_total",
		Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": method, "path": "/a"}}})
	return err
}

func TestDefinitionsOnEtcdAreSharedByTheFleet(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	a := runEtcdReceiver(t, eps[:1], etcdPrefix(t), registry.ModeOpen)
	b := runEtcdReceiver(t, eps[1:2], etcdPrefix(t), registry.ModeOpen)
	ctx := context.Background()

	// registered on A, enforced on B
	require.NoError(t, recordMethod(b.c, "DELETE"), "open mode: accepted before the definition exists")
	_, err := a.c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return status.Code(recordMethod(b.c, "DELETE")) == codes.InvalidArgument },
		definitionsConverge, 10*time.Millisecond, "B refuses what A's definition forbids")
	require.NoError(t, recordMethod(b.c, "GET"))
	md, err := b.c.GetMetricMetadata(ctx, &pb.GetMetricMetadataRequest{})
	require.NoError(t, err)
	require.Len(t, md.Metadata, 1)

	// concurrent updates through A and B: one is ABORTED naming the metric and the current version
	var aborted []error
	for round := 0; round < 5 && len(aborted) == 0; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, n := range []*etcdNode{a, b} {
			wg.Go(func() {
				d := requestsDef()
				d.Description = "from " + string(rune('A'+i)) + string(rune('0'+round))
				_, errs[i] = n.c.RegisterMetric(context.Background(), &pb.RegisterMetricRequest{Definition: d})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				aborted = append(aborted, err)
			}
		}
	}
	require.Len(t, aborted, 1, "one of two concurrent updates loses")
	st := status.Convert(aborted[0])
	assert.Equal(t, codes.Aborted, st.Code(), st.Message())
	assert.Contains(t, st.Message(), `metric "http_requests_total"`)
	assert.Contains(t, st.Message(), "re-read it")
	assert.Contains(t, st.Message(), "now at version")

	// one node leads the scheduled deletions
	require.Eventually(t, func() bool {
		la, _ := a.r.defs.fleet.leadership(ctx)
		lb, _ := b.r.defs.fleet.leadership(ctx)
		return la.Leading != lb.Leading && la.Leader != "" && la.Leader == lb.Leader
	}, 20*time.Second, 10*time.Millisecond)

	// a scheduled data deletion: taken once by the leader, every node deletes its own data
	recordRequests(t, a.c)
	recordRequests(t, b.c)
	_, err = a.c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true, DataRetention: durationpb.New(time.Hour)})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(b.r.defs.registry.Pending()) == 1 }, definitionsConverge, 10*time.Millisecond)
	later := time.Now().Add(2 * time.Hour)
	for _, n := range []*etcdNode{a, b} {
		_, cnt := sumRequests(t, n.c)
		require.NotZero(t, cnt)
	}
	require.Eventually(t, func() bool {
		for _, n := range []*etcdNode{a, b} {
			n.r.runDueDeletions(later)
		}
		_, na := sumRequests(t, a.c)
		_, nb := sumRequests(t, b.c)
		return na == 0 && nb == 0
	}, definitionsConverge, 20*time.Millisecond, "both nodes deleted their data")
	assert.Empty(t, a.r.defs.registry.Pending())
	assert.Empty(t, b.r.defs.registry.Pending())

	// an immediate data deletion through B: A deletes its own copy too (next deletion run)
	_, err = a.c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := b.r.defs.registry.Get("http_requests_total"); return ok }, definitionsConverge, 10*time.Millisecond)
	recordRequests(t, a.c)
	recordRequests(t, b.c)
	_, err = b.c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true})
	require.NoError(t, err)
	_, nb := sumRequests(t, b.c)
	assert.Zero(t, nb, "B deleted its data at once")
	require.Eventually(t, func() bool {
		a.r.runDueDeletions(time.Now())
		_, na := sumRequests(t, a.c)
		return na == 0
	}, definitionsConverge, 20*time.Millisecond, "A deleted its copy")
}

func TestDefinitionsOnEtcdBackupOnOneNodeRestoresOnAnother(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	eps := cluster.Endpoints()
	a := runEtcdReceiver(t, eps, etcdPrefix(t), registry.ModeOpen)
	b := runEtcdReceiver(t, eps, etcdPrefix(t), registry.ModeOpen)
	ctx := context.Background()
	_, err := a.c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	recordRequests(t, a.c)
	del, err := a.c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true, Backup: true})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(del.BackupPath, "etcd:"), del.BackupPath)
	require.Eventually(t, func() bool { _, ok := b.r.defs.registry.Get("http_requests_total"); return !ok }, definitionsConverge, 10*time.Millisecond)
	_, err = b.c.RegisterMetric(ctx, &pb.RegisterMetricRequest{RestoreBackupId: del.BackupId})
	require.NoError(t, err)
	require.Eventually(t, func() bool { v, _ := sumRequests(t, b.c); return v == 6 }, 15*time.Second, 50*time.Millisecond,
		"A's data is written into B's store")
	require.Eventually(t, func() bool { _, ok := a.r.defs.registry.Get("http_requests_total"); return ok }, definitionsConverge, 10*time.Millisecond)
}

func TestDefinitionsOnEtcdDownKeepChecksAndRefuseChanges(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	eps := cluster.Endpoints()
	a := runEtcdReceiver(t, eps, etcdPrefix(t), registry.ModeStrict)
	ctx := context.Background()
	_, err := a.c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	serving := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := a.h.Check(ctx, &healthpb.HealthCheckRequest{Service: DefinitionsHealthService})
		require.NoError(t, err)
		return resp.Status
	}
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, serving())

	cluster.Kill(0)
	require.Eventually(t, func() bool { return serving() == healthpb.HealthCheckResponse_NOT_SERVING }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, recordMethod(a.c, "GET"), "checks keep the last known definitions")
	assert.Equal(t, codes.InvalidArgument, status.Code(recordMethod(a.c, "DELETE")))
	d := requestsDef()
	d.Description = "while etcd is down"
	_, err = a.c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: d})
	st := status.Convert(err)
	assert.Equal(t, codes.Unavailable, st.Code(), st.Message())
	assert.Contains(t, st.Message(), "fix: bring the etcd cluster back")
	_, err = a.c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total"})
	assert.Equal(t, codes.Unavailable, status.Code(err))

	cluster.Start(0)
	cluster.WaitHealthy(0)
	require.Eventually(t, func() bool { return serving() == healthpb.HealthCheckResponse_SERVING }, 20*time.Second, 10*time.Millisecond)
	_, err = a.c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: d})
	require.NoError(t, err)
}

// ruleOutput returns the series of the recording rule in n's store.
func ruleOutput(t *testing.T, n *etcdNode) int {
	t.Helper()
	resp, err := n.c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: `count_over_time(fleet_rule_output[1h])`})
	require.NoError(t, err)
	return len(resp.Series)
}

func TestRulesRunOnTheLeaderOnly(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	eps := cluster.Endpoints()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(`groups:
  - name: fleet
    interval: 200ms
    rules:
      - record: fleet_rule_output
        expr: vector(1)
`), 0o600))
	leaderRules := func(cfg *Config) {
		cfg.Rules.Files = []string{filepath.Join(dir, "*.yaml")}
		cfg.Rules.RunOn = rules.RunOnLeader
	}
	nodes := []*etcdNode{
		runEtcdReceiver(t, eps, etcdPrefix(t), registry.ModeOpen, leaderRules),
		runEtcdReceiver(t, eps, etcdPrefix(t), registry.ModeOpen, leaderRules),
	}
	var lead, other *etcdNode
	require.Eventually(t, func() bool {
		a, b := nodes[0].r.leaderRules.evaluating(), nodes[1].r.leaderRules.evaluating()
		lead, other = nodes[0], nodes[1]
		if b {
			lead, other = nodes[1], nodes[0]
		}
		return a != b
	}, 20*time.Second, 10*time.Millisecond, "one node evaluates")
	require.Eventually(t, func() bool { return ruleOutput(t, lead) > 0 }, 10*time.Second, 50*time.Millisecond, "the leader writes the rule output")
	assert.Zero(t, ruleOutput(t, other), "the other node evaluates nothing")
	assert.NotEmpty(t, other.r.leaderRules.RuleGroups(), "the other node has the rules loaded (Prometheus API)")

	// the leader stops: it resigns and the other node takes over at once
	lead.stop()
	require.Eventually(t, other.r.leaderRules.evaluating, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return ruleOutput(t, other) > 0 }, 10*time.Second, 50*time.Millisecond)
}

// The only node of a fleet leads: metricsmodule_definitions_leader is 1.
func TestDefinitionsLeaderGauge(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.PrometheusAPI = configoptional.None[confighttp.ServerConfig]()
	cfg.Definitions.Backend = DefinitionsBackendEtcd
	cfg.Definitions.Etcd.Endpoints = cluster.Endpoints()
	cfg.Definitions.Etcd.Prefix = etcdPrefix(t)
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(metadata.Type)
	set.MeterProvider = mp
	r, err := newReceiver(cfg, set, new(consumertest.MetricsSink))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	leader := func() (int64, bool) {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == MetricDefinitionsLeader && len(g.DataPoints) == 1 {
					return g.DataPoints[0].Value, true
				}
			}
		}
		return 0, false
	}
	require.Eventually(t, func() bool { v, ok := leader(); return ok && v == 1 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
	_, ok := leader()
	assert.False(t, ok, "the gauge is gone after Shutdown")
}
