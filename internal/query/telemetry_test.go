package query

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Queries are counted by outcome with their duration, and refusals by the
// config key of the limit.
func TestTelemetryCountsQueriesAndRefusals(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	now := time.Now().Truncate(time.Minute)
	e := newEngine(t, testDB(t, now), nil)
	require.NoError(t, e.SetMeterProvider(mp))
	ctx := context.Background()
	_, err := e.Do(ctx, Request{Query: `sum(requests_total)`, Instant: true, Time: now})
	require.NoError(t, err)
	_, err = e.Do(ctx, Request{Query: `sum(requests_total`, Instant: true, Time: now})
	require.Error(t, err)
	_, err = e.Do(ctx, Request{Query: `requests_total`, Instant: true, Time: now, MaxSeries: 3})
	require.Error(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	counts := map[string]int64{}
	var durations uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					key := "outcome"
					if m.Name == MetricRefusals {
						key = "limit"
					}
					v, _ := dp.Attributes.Value(attribute.Key(key))
					counts[m.Name+"/"+v.AsString()] += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					durations += dp.Count
				}
			}
		}
	}
	assert.Equal(t, map[string]int64{
		MetricQueries + "/ok": 1, MetricQueries + "/bad_query": 1, MetricQueries + "/too_large": 1,
		MetricRefusals + "/query.max_series": 1,
	}, counts)
	assert.EqualValues(t, 3, durations)
}
