package metricsservicereceiver

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// Internal telemetry of the receiver's ingest path, through the collector's
// MeterProvider (service::telemetry::metrics).
const (
	meterName = "github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"

	// MetricSeriesCacheHits counts RecordBatchMetrics records whose series
	// checks and key came from the series cache.
	MetricSeriesCacheHits = "metricsmodule_ingest_series_cache_hits"
	// MetricSeriesCacheMisses counts records eligible for the series cache
	// that were checked in full.
	MetricSeriesCacheMisses = "metricsmodule_ingest_series_cache_misses"
	// MetricSeriesCacheSize is the number of series in the series cache
	// (at most aggregation.series_cache_size).
	MetricSeriesCacheSize = "metricsmodule_ingest_series_cache_series"
)

// startTelemetry registers the receiver's observable instruments; the
// returned function unregisters them (nil when there is nothing to do).
func (r *metricsReceiver) startTelemetry() (func() error, error) {
	mp := r.settings.MeterProvider
	if mp == nil {
		return nil, nil
	}
	m := mp.Meter(meterName)
	hits, err1 := m.Int64ObservableCounter(MetricSeriesCacheHits, metric.WithUnit("{record}"),
		metric.WithDescription("RecordBatchMetrics records whose series checks and key came from the series cache."))
	misses, err2 := m.Int64ObservableCounter(MetricSeriesCacheMisses, metric.WithUnit("{record}"),
		metric.WithDescription("RecordBatchMetrics records eligible for the series cache that were checked in full."))
	size, err3 := m.Int64ObservableGauge(MetricSeriesCacheSize, metric.WithUnit("{series}"),
		metric.WithDescription("Series in the series cache (at most aggregation.series_cache_size)."))
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := r.in.acc.SeriesCacheStats()
		o.ObserveInt64(hits, int64(st.Hits))
		o.ObserveInt64(misses, int64(st.Misses))
		o.ObserveInt64(size, int64(st.Size))
		return nil
	}, hits, misses, size)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
