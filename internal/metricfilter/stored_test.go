package metricfilter

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/stretchr/testify/assert"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestStoredTypeOfSeriesNames(t *testing.T) {
	stored := map[string]metadata.Metadata{
		"http_requests_total": {Type: model.MetricTypeCounter},
		"queue_depth":         {Type: model.MetricTypeGauge, Unit: "items"},
		"request_duration":    {Type: model.MetricTypeHistogram, Unit: "seconds"},
		"rpc_latency":         {Type: model.MetricTypeSummary},
		"job_runs":            {Type: model.MetricTypeGaugeHistogram},
		"build_info":          {Type: model.MetricTypeInfo},
	}
	lookup := func(f string) (metadata.Metadata, bool) { md, ok := stored[f]; return md, ok }
	tests := []struct {
		name string
		typ  pb.MetricType
		unit string
	}{
		{"http_requests_total", pb.MetricType_METRIC_TYPE_COUNTER, ""},
		{"queue_depth", pb.MetricType_METRIC_TYPE_GAUGE, "items"},
		{"request_duration_bucket", pb.MetricType_METRIC_TYPE_HISTOGRAM, "s"},
		{"request_duration_sum", pb.MetricType_METRIC_TYPE_HISTOGRAM, "s"},
		{"rpc_latency_count", pb.MetricType_METRIC_TYPE_SUMMARY, ""},
		{"job_runs", pb.MetricType_METRIC_TYPE_HISTOGRAM, ""},
		{"build_info", pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""},
		{"unknown", pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""},
		{"", pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""},
	}
	for _, tt := range tests {
		typ, unit := StoredType(lookup, tt.name)
		assert.Equal(t, tt.typ, typ, tt.name)
		assert.Equal(t, tt.unit, unit, tt.name)
	}
	typ, _ := StoredType(nil, "http_requests_total")
	assert.Equal(t, pb.MetricType_METRIC_TYPE_UNSPECIFIED, typ, "no store")
}
