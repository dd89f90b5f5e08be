package metricsservicereceiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// TestRetryAfterARestartIsRecognisedFromTheJournal: the receiver journals
// each acknowledged request next to the store before answering it; a new
// receiver over the same directory answers the retries of both methods as
// duplicates with the first answers and stores nothing again.
func TestRetryAfterARestartIsRecognisedFromTheJournal(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, _, stop := runReceiverWith(t, dir, nil)
	batch := &pb.RecordBatchMetricsRequest{RequestId: "batch-1", Metrics: []*pb.MetricData{
		{Name: "journal_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 3, Labels: map[string]string{"path": "/a"}},
		{Name: "journal_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 4, Labels: map[string]string{"path": "/b"}},
	}}
	one := &pb.RecordMetricRequest{RequestId: "one-1", Metric: &pb.MetricData{Name: "journal_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: map[string]string{"path": "/c"}}}
	first, err := c.RecordBatchMetrics(ctx, batch)
	require.NoError(t, err)
	firstOne, err := c.RecordMetric(ctx, one)
	require.NoError(t, err)
	// written before the answers: a kill -9 now would keep them
	raw, err := os.ReadFile(filepath.Join(dir, "dedup.journal"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), "batch-1")
	assert.Contains(t, string(raw), "one-1")
	stop()

	c, _, _ = runReceiverWith(t, dir, nil)
	again, err := c.RecordBatchMetrics(ctx, batch)
	require.NoError(t, err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.AcceptedCount, again.AcceptedCount)
	assert.True(t, first.RecordedAt.AsTime().Equal(again.RecordedAt.AsTime()), "the first answer is replayed")
	againOne, err := c.RecordMetric(ctx, one)
	require.NoError(t, err)
	assert.True(t, againOne.Duplicate)
	assert.Equal(t, firstOne.SeriesId, againOne.SeriesId)

	resp, err := c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `count_over_time(journal_requests_total[1h])`})
	require.NoError(t, err)
	require.Len(t, resp.Series, 3)
	for _, s := range resp.Series {
		require.Len(t, s.Samples, 1)
		assert.Equal(t, 1.0, s.Samples[0].Value, "%v: stored once", s.Labels)
	}
}

// TestWithoutPersistARetryAfterARestartCountsAgain is the control: with
// dedup.persist false the ids are in memory only, and the same retry is
// recorded a second time.
func TestWithoutPersistARetryAfterARestartCountsAgain(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, r, stop := runReceiverWith(t, dir, func(cfg *Config) { cfg.Dedup.Persist = false })
	assert.Nil(t, r.in.journal)
	req := &pb.RecordMetricRequest{RequestId: "r-1", Metric: &pb.MetricData{Name: "memonly_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}}
	_, err := c.RecordMetric(ctx, req)
	require.NoError(t, err)
	stop()
	_, err = os.Stat(filepath.Join(dir, "dedup.journal"))
	require.ErrorIs(t, err, os.ErrNotExist)

	c, _, _ = runReceiverWith(t, dir, func(cfg *Config) { cfg.Dedup.Persist = false })
	again, err := c.RecordMetric(ctx, req)
	require.NoError(t, err)
	assert.False(t, again.Duplicate)
	resp, err := c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `count_over_time(memonly_requests_total[1h])`})
	require.NoError(t, err)
	require.Len(t, resp.Series, 1)
	assert.Equal(t, 2.0, resp.Series[0].Samples[0].Value)
}

// runReceiverWith is runReceiver (open definitions) with a changed config
// (mutate may be nil) and the id metrics_service.
func runReceiverWith(t *testing.T, dir string, mutate func(*Config)) (c pb.MetricsServiceClient, r *metricsReceiver, stop func()) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.PrometheusAPI = configoptional.None[confighttp.ServerConfig]()
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	next, host, stopPipeline := storePipelineStop(t, filepath.Join(dir, "tsdb"), nil, &switchSink{})
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type) // the journal's name follows the id: keep it across the restart
	r, err := newReceiver(cfg, set, next)
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

func TestJournalPath(t *testing.T) {
	for _, tt := range []struct {
		name, id, path, dataDir, want string
		persist                       bool
	}{
		{name: "next to the store", dataDir: "/data", persist: true, want: "/data/dedup.journal"},
		{name: "named receiver", id: "edge", dataDir: "/data", persist: true, want: "/data/dedup-edge.journal"},
		{name: "configured", path: "/var/lib/x.journal", persist: true, want: "/var/lib/x.journal"},
		{name: "no store", persist: true, want: ""},
		{name: "not persisted", dataDir: "/data", persist: false, want: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := createDefaultConfig().(*Config).Dedup
			d.Persist, d.Path = tt.persist, tt.path
			assert.Equal(t, tt.want, journalPathFor(d, component.NewIDWithName(metadata.Type, tt.id), tt.dataDir))
		})
	}
}

func TestStartFailsNamingDedupPathWhenTheJournalCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notADir, nil, 0o600))
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.PrometheusAPI = configoptional.None[confighttp.ServerConfig]()
	cfg.Dedup.Path = filepath.Join(notADir, "dedup.journal")
	require.NoError(t, cfg.Validate())
	next, host := storePipeline(t, filepath.Join(dir, "tsdb"), nil, &switchSink{})
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	err = r.Start(context.Background(), host)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dedup.path:")
	assert.Contains(t, err.Error(), "fix:")
	require.NoError(t, r.Shutdown(context.Background()))
}
