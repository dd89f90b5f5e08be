package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), got)
}

func renderApp() (*app, *bytes.Buffer) {
	var out bytes.Buffer
	displayZone = time.UTC
	return &app{stdout: &out, stderr: &out, output: "table"}, &out
}

func TestSummaryRendering(t *testing.T) {
	a, out := renderApp()
	ts := timestamppb.New(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	a.printSummary(&pb.GetMetricsSummaryResponse{
		Totals: &pb.SummaryTotals{Series: 1234, MetricNames: 56, Samples: 987654, IngestRate_1M: 1520.5, IngestRate_5M: 0.5, IngestRate_15M: 0,
			MetricsByType: map[string]int64{"METRIC_TYPE_COUNTER": 30, "METRIC_TYPE_GAUGE": 26}},
		Storage: &pb.StorageStats{DiskBytes: 5 << 20, MemoryBytes: 300 << 20, Blocks: 3, MinTime: ts, MaxTime: ts},
		Health: []*pb.ComponentHealth{
			{Name: "pipeline", Status: pb.HealthStatus_HEALTH_STATUS_HEALTHY, Message: "the pipeline accepted every batch"},
			{Name: "store", Status: pb.HealthStatus_HEALTH_STATUS_DEGRADED, Message: "12 samples refused as too old"},
		},
		TopBySeries:      []*pb.MetricRanking{{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Series: 800, Rate: 1200}},
		TopByRate:        []*pb.MetricRanking{{Name: "http_requests_total", Series: 800, Rate: 1200}, {Name: "queue_depth", Series: 1, Rate: 0.2}},
		LabelCardinality: []*pb.LabelCardinality{{Label: "user_id", DistinctValues: 700, Growth: 3.5}, {Label: "method", DistinctValues: 1, Growth: 1}},
		Trends:           []*pb.Trend{{Name: "*", CurrentRate: 1520.5, PreviousRate: 760, ChangeRatio: 2}},
		Recommendations: []*pb.Recommendation{{Rule: "label_cardinality_explosion", Severity: pb.Severity_SEVERITY_WARNING, Subject: "user_id",
			Message: "label user_id has 700 values and grew x3.5 in 1h", Action: "drop user_id or move it to a log field"}},
	})
	golden(t, "summary.golden", out.String())
}

func TestQueryRendering(t *testing.T) {
	a, out := renderApp()
	ts := timestamppb.New(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	a.printQuery(&pb.QueryMetricsResponse{ResultType: pb.QueryResultType_QUERY_RESULT_TYPE_VECTOR, Series: []*pb.Series{
		{Labels: map[string]string{"method": "GET"}, Samples: []*pb.Sample{{Timestamp: ts, Value: 12}}},
		{Labels: map[string]string{"method": "POST"}, Samples: []*pb.Sample{{Timestamp: ts, Value: 0.125}}},
	}})
	var samples []*pb.Sample
	for i := range 90 {
		samples = append(samples, &pb.Sample{Timestamp: ts, Value: float64(i % 30)})
	}
	a.printQuery(&pb.QueryMetricsResponse{ResultType: pb.QueryResultType_QUERY_RESULT_TYPE_MATRIX, Series: []*pb.Series{
		{Name: "queue_depth", Labels: map[string]string{"queue": "mail"}, Samples: samples},
	}, Warnings: []string{"PromQL info: metric might not be a counter"}})
	golden(t, "query.golden", out.String())
}
