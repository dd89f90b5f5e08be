package provider

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// series returns, for the metric name, the value of each data point keyed
// by its provider_id/generation[/outcome|reason] attributes.
func series(t *testing.T, r *sdkmetric.ManualReader, name string) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]float64{}
	key := func(set attribute.Set) string {
		k := ""
		for _, a := range []attribute.Key{attrProviderID, attrGeneration, attrOutcome, attrReason} {
			if v, ok := set.Value(a); ok {
				k += "/" + v.AsString()
			}
		}
		return k
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out[key(dp.Attributes)] += float64(dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					out[key(dp.Attributes)] = float64(dp.Value)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out[key(dp.Attributes)] += float64(dp.Count)
				}
			}
		}
	}
	return out
}

// The provider metrics go through the collector's MeterProvider with
// provider_id and a generation that a delete and re-create does not reuse.
func TestTelemetryPerProviderGeneration(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	set := componenttest.NewNopTelemetrySettings()
	set.MeterProvider = mp
	e := NewEngine(Settings{TelemetrySettings: set, LookupHost: noDNS})
	require.NoError(t, e.Start(ctx, distribution(), nil))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })

	sink, name := newSink(t, "a")
	create(t, e, sinkProvider("a", name))
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 7)))
	eventually(t, func() bool { return sink.pointCount() == 7 }, "exported")
	eventually(t, func() bool { return series(t, reader, MetricDatapoints)["/a/1/sent"] == 7 }, "sent counted")
	assert.Equal(t, 1.0, series(t, reader, MetricSendDuration)["/a/1/ok"])
	assert.Equal(t, float64(defaultQueueSize), series(t, reader, MetricQueueCapacity)["/a/1"])
	assert.Equal(t, float64(pb.HealthStatus_HEALTH_STATUS_HEALTHY), series(t, reader, MetricHealth)["/a/1"])

	deleteNow(t, e, "a")
	sink.fail.Store(true)
	create(t, e, sinkProvider("a", name))
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 3)))
	eventually(t, func() bool { return series(t, reader, MetricFailures)["/a/2/other"] == 1 }, "the failure is counted under generation 2")
	pts := series(t, reader, MetricDatapoints)
	assert.Equal(t, 7.0, pts["/a/1/sent"], "generation 1 keeps its own series")
	assert.Equal(t, 3.0, pts["/a/2/failed"])
	assert.Zero(t, pts["/a/1/failed"])
	gauges := series(t, reader, MetricQueueSize)
	assert.Contains(t, gauges, "/a/2")
	assert.NotContains(t, gauges, "/a/1", "a deleted provider's gauges stop")
}
