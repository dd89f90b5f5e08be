package metricsstoreextension

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Internal telemetry of the store and the stream hub, observed at each
// collection through the collector's MeterProvider (served with the
// collector's own metrics, e.g. on :8888).
const (
	meterName = "github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"

	metricHeadSeries      = "metricsmodule_store_head_series"
	metricSamplesAppended = "metricsmodule_store_samples_appended"
	metricSamplesRejected = "metricsmodule_store_samples_rejected"
	metricBlocks          = "metricsmodule_store_blocks"
	metricDiskBytes       = "metricsmodule_store_disk_bytes"
	metricSubscriptions   = "metricsmodule_stream_subscriptions"
	metricStreams         = "metricsmodule_stream_streams"
	metricStreamMemory    = "metricsmodule_stream_memory_bytes"

	// cluster mode (stream.cluster.nats.url)
	metricClusterPublished = "metricsmodule_stream_cluster_published"
	metricClusterDropped   = "metricsmodule_stream_cluster_dropped_batches"
	metricClusterDroppedDP = "metricsmodule_stream_cluster_dropped_datapoints"
	metricClusterBuffered  = "metricsmodule_stream_cluster_buffered_batches"
	metricClusterHealthy   = "metricsmodule_stream_cluster_healthy"
)

// registerTelemetry registers the observable instruments; they read the
// sink at each collection (nothing while the extension is stopped).
func (e *storeExtension) registerTelemetry(mp metric.MeterProvider) (metric.Registration, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	var errs [13]error
	var (
		head, blocks, disk, subs, streams, mem, buffered, healthy metric.Int64ObservableGauge
		appended, rejected, published, dropped, droppedDP         metric.Int64ObservableCounter
	)
	head, errs[0] = m.Int64ObservableGauge(metricHeadSeries, metric.WithUnit("{series}"), metric.WithDescription("Series in the store's head block."))
	appended, errs[1] = m.Int64ObservableCounter(metricSamplesAppended, metric.WithUnit("{sample}"), metric.WithDescription("Samples appended to the store since start."))
	rejected, errs[2] = m.Int64ObservableCounter(metricSamplesRejected, metric.WithUnit("{sample}"), metric.WithDescription("Samples the store refused (out of order, too old, duplicate timestamps) since start."))
	blocks, errs[3] = m.Int64ObservableGauge(metricBlocks, metric.WithUnit("{block}"), metric.WithDescription("Persisted blocks of the store (compactions merge them)."))
	disk, errs[4] = m.Int64ObservableGauge(metricDiskBytes, metric.WithUnit("By"), metric.WithDescription("Bytes of the store on disk (blocks and WAL)."))
	subs, errs[5] = m.Int64ObservableGauge(metricSubscriptions, metric.WithUnit("{subscription}"), metric.WithDescription("StreamMetrics subscriptions of the hub."))
	streams, errs[6] = m.Int64ObservableGauge(metricStreams, metric.WithUnit("{stream}"), metric.WithDescription("Open StreamMetrics streams."))
	mem, errs[7] = m.Int64ObservableGauge(metricStreamMemory, metric.WithUnit("By"), metric.WithDescription("Bytes buffered for streams."))
	published, errs[8] = m.Int64ObservableCounter(metricClusterPublished, metric.WithUnit("{batch}"), metric.WithDescription("Committed batches published to the stream's JetStream stream since start (cluster mode)."))
	dropped, errs[9] = m.Int64ObservableCounter(metricClusterDropped, metric.WithUnit("{batch}"), metric.WithDescription("Committed batches not published to the JetStream stream (publish buffer full, over max_payload) since start (cluster mode)."))
	droppedDP, errs[10] = m.Int64ObservableCounter(metricClusterDroppedDP, metric.WithUnit("{datapoint}"), metric.WithDescription("Data points of the batches not published (cluster mode)."))
	buffered, errs[11] = m.Int64ObservableGauge(metricClusterBuffered, metric.WithUnit("{batch}"), metric.WithDescription("Committed batches waiting to be published (cluster mode)."))
	healthy, errs[12] = m.Int64ObservableGauge(metricClusterHealthy, metric.WithUnit("1"), metric.WithDescription("1 while the node reaches the JetStream stream, 0 while degraded (cluster mode)."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		sink := e.Sink()
		if sink == nil {
			return nil
		}
		st, hub := sink.Store(), sink.Hub()
		o.ObserveInt64(head, int64(st.HeadStats(0).NumSeries))
		o.ObserveInt64(appended, st.Stats().Total())
		o.ObserveInt64(rejected, st.Rejected())
		o.ObserveInt64(blocks, int64(len(st.Blocks())))
		o.ObserveInt64(disk, st.DiskBytes())
		o.ObserveInt64(subs, int64(hub.Subscriptions()))
		o.ObserveInt64(streams, int64(hub.Streams()))
		o.ObserveInt64(mem, hub.MemoryBytes())
		if cs, on := e.ClusterStatus(); on {
			o.ObserveInt64(published, int64(cs.Published))
			o.ObserveInt64(dropped, int64(cs.DroppedBatches))
			o.ObserveInt64(droppedDP, int64(cs.DroppedPoints))
			o.ObserveInt64(buffered, int64(cs.Buffered))
			h := int64(0)
			if cs.Healthy {
				h = 1
			}
			o.ObserveInt64(healthy, h)
		}
		return nil
	}, head, appended, rejected, blocks, disk, subs, streams, mem, published, dropped, droppedDP, buffered, healthy)
}
