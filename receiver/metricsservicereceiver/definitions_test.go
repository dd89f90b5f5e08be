package metricsservicereceiver

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// runReceiver starts a receiver with a store in dir; stop shuts it down.
func runReceiver(t *testing.T, dir string, mode registry.Mode) (c pb.MetricsServiceClient, r *metricsReceiver, stop func()) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.PrometheusAPI = configoptional.None[confighttp.ServerConfig]()
	cfg.Definitions.Mode = mode
	require.NoError(t, cfg.Validate())
	next, host, stopPipeline := storePipelineStop(t, filepath.Join(dir, "tsdb"), nil, &switchSink{})
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	conn, err := grpc.NewClient(r.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = conn.Close()
			require.NoError(t, r.Shutdown(context.Background()))
			stopPipeline()
		}
	}
	t.Cleanup(stop)
	return pb.NewMetricsServiceClient(conn), r, stop
}

func requestsDef() *pb.MetricDefinition {
	return &pb.MetricDefinition{
		Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Description: "requests served", Owner: "team-web",
		Labels: []*pb.LabelDefinition{
			{Name: "method", Required: true, AllowedValues: []string{"GET", "POST"}},
			{Name: "path"},
		},
	}
}

func TestRegisterMetricAndIngestChecks(t *testing.T) {
	c, _, _ := runReceiver(t, t.TempDir(), registry.ModeOpen)
	ctx := context.Background()
	resp, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	assert.True(t, resp.Created)
	assert.Equal(t, uint64(1), resp.SchemaVersion)

	_, err = c.RecordMetric(ctx, &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1,
		Labels: map[string]string{"method": "FETCH"}}})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), `metric.labels["method"]: label "method" value "FETCH" is not one of GET, POST (schema v1)`)
	assert.Contains(t, st.Message(), "fix:")

	_, err = c.RecordMetric(ctx, &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1,
		Labels: map[string]string{"method": "GET", "path": "/"}}})
	require.NoError(t, err)

	// a breaking change needs allow_breaking; a dry run shows the changes
	breaking := requestsDef()
	breaking.Labels[1].Required = true
	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: breaking})
	st = status.Convert(err)
	assert.Equal(t, codes.FailedPrecondition, st.Code())
	assert.Contains(t, st.Message(), `label "path" became required`)
	dry, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: breaking, DryRun: true, AllowBreaking: true})
	require.NoError(t, err)
	assert.False(t, dry.Compatible)
	assert.Equal(t, uint64(2), dry.SchemaVersion)
	ok, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: breaking, AllowBreaking: true})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), ok.SchemaVersion)

	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: &pb.MetricDefinition{Name: "x y"}})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))

	md, err := c.GetMetricMetadata(ctx, &pb.GetMetricMetadataRequest{Names: []string{"http_*"}, IncludeHistory: true, IncludeUsage: true})
	require.NoError(t, err)
	require.Len(t, md.Metadata, 1)
	m := md.Metadata[0]
	assert.True(t, m.Registered)
	assert.Equal(t, uint64(2), m.SchemaVersion)
	require.Len(t, m.History, 2)
	assert.False(t, m.History[1].Compatible)
	assert.Equal(t, int64(1), m.Usage.SeriesCount)
	assert.Positive(t, m.Usage.SampleCount)
	assert.Equal(t, int64(1), m.Health.RejectedLastHour)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_DEGRADED, m.Health.Status)

	// metrics seen but not registered
	_, err = c.RecordMetric(ctx, &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 3, Labels: map[string]string{"queue": "a"}}})
	require.NoError(t, err)
	md, err = c.GetMetricMetadata(ctx, &pb.GetMetricMetadataRequest{IncludeUnregistered: true})
	require.NoError(t, err)
	require.Len(t, md.Metadata, 2)
	inferred := md.Metadata[1]
	assert.Equal(t, "queue_depth", inferred.Definition.Name)
	assert.False(t, inferred.Registered)
	assert.Equal(t, pb.MetricType_METRIC_TYPE_GAUGE, inferred.Definition.Type)
	require.NotEmpty(t, inferred.Definition.Labels)
}

func TestStrictModeRefusesUnregistered(t *testing.T) {
	c, _, _ := runReceiver(t, t.TempDir(), registry.ModeStrict)
	_, err := c.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "free_form", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}})
	st := status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), "not registered and the registry is strict")
}

func TestDefinitionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	c, _, stop := runReceiver(t, dir, registry.ModeOpen)
	_, err := c.RegisterMetric(context.Background(), &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	stop()

	c, _, _ = runReceiver(t, dir, registry.ModeOpen)
	md, err := c.GetMetricMetadata(context.Background(), &pb.GetMetricMetadataRequest{Names: []string{"http_requests_total"}})
	require.NoError(t, err)
	require.Len(t, md.Metadata, 1)
	assert.Equal(t, "team-web", md.Metadata[0].Definition.Owner)
	_, err = c.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1,
		Labels: map[string]string{"method": "GET"}}})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "the definition is enforced after the restart")
}

func recordRequests(t *testing.T, c pb.MetricsServiceClient) {
	t.Helper()
	for i := range 3 {
		_, err := c.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: float64(i + 1),
			Labels: map[string]string{"method": "GET", "path": "/a"}}})
		require.NoError(t, err)
	}
}

func sumRequests(t *testing.T, c pb.MetricsServiceClient) (float64, int) {
	t.Helper()
	resp, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: `max_over_time(http_requests_total[1h])`})
	require.NoError(t, err)
	if len(resp.Series) == 0 {
		return 0, 0
	}
	return resp.Series[0].Samples[0].Value, len(resp.Series)
}

func TestUnregisterKeepDeleteBackupRestore(t *testing.T) {
	c, r, _ := runReceiver(t, t.TempDir(), registry.ModeOpen)
	ctx := context.Background()
	_, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	recordRequests(t, c)

	// dry run: reports, removes nothing
	dry, err := c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, int64(1), dry.SeriesAffected)
	assert.Equal(t, int64(3), dry.SamplesAffected)
	_, still := r.defs.registry.Get("http_requests_total")
	assert.True(t, still)

	// keep the data
	_, err = c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total"})
	require.NoError(t, err)
	v, _ := sumRequests(t, c)
	assert.InDelta(t, 6.0, v, 0, "data is kept")
	_, err = c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total"})
	assert.Equal(t, codes.NotFound, status.Code(err))

	// delete with a backup, then restore definition and data
	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	del, err := c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true, Backup: true})
	require.NoError(t, err)
	require.NotEmpty(t, del.BackupId)
	info, err := os.Stat(del.BackupPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	_, n := sumRequests(t, c)
	assert.Zero(t, n, "data is deleted")

	restored, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{RestoreBackupId: del.BackupId})
	require.NoError(t, err)
	assert.Equal(t, "http_requests_total", restored.Definition.Name)
	_, ok := r.defs.registry.Get("http_requests_total")
	assert.True(t, ok, "definition restored")
	require.Eventually(t, func() bool {
		v, _ := sumRequests(t, c)
		return v == 6
	}, 15*time.Second, 100*time.Millisecond, "data restored from the backup")

	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{RestoreBackupId: "../../etc/passwd"})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{RestoreBackupId: "nope"})
	assert.Equal(t, codes.NotFound, status.Code(err))
}

func TestUnregisterWithRetentionDeletesLater(t *testing.T) {
	c, r, _ := runReceiver(t, t.TempDir(), registry.ModeOpen)
	ctx := context.Background()
	_, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef()})
	require.NoError(t, err)
	recordRequests(t, c)
	resp, err := c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true, DataRetention: durationpb.New(time.Hour)})
	require.NoError(t, err)
	require.NotNil(t, resp.DataDeletionTime)
	v, _ := sumRequests(t, c)
	assert.InDelta(t, 6.0, v, 0, "kept during the retention")
	r.runDueDeletions(time.Now().Add(2 * time.Hour))
	_, n := sumRequests(t, c)
	assert.Zero(t, n, "deleted when the retention passed")
}

func TestIndexedLabelsAnswerFromTheRegistry(t *testing.T) {
	c, base := startWithStore(t, t.TempDir())
	ctx := context.Background()
	_, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: requestsDef(), CreateIndex: true})
	require.NoError(t, err)
	for _, m := range []string{"GET", "POST", "GET"} {
		_, err := c.RecordMetric(ctx, &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1,
			Labels: map[string]string{"method": m}}})
		require.NoError(t, err)
	}
	code, body := getJSON(t, base+"/api/v1/label/method/values?match[]="+url.QueryEscape(`{__name__="http_requests_total"}`))
	require.Equal(t, 200, code)
	assert.Equal(t, []any{"GET", "POST"}, body["data"])
	code, body = getJSON(t, base+"/api/v1/labels?match[]="+url.QueryEscape(`{__name__="http_requests_total"}`))
	require.Equal(t, 200, code)
	assert.Equal(t, []any{"__name__", "method", "path"}, body["data"], "the declared labels, from the index")
}
