package provider

import (
	"context"
	"errors"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Internal telemetry of the providers, through the collector's
// MeterProvider (component.TelemetrySettings; served with the collector's
// own metrics, e.g. on :8888). Every series carries provider_id and
// generation, which is never reused: a provider deleted and created again
// with the same id has new series.
const (
	meterName = "github.com/metricsmodule/metricsmodule/internal/provider"

	MetricQueueSize     = "metricsmodule_provider_queue_size"
	MetricQueueCapacity = "metricsmodule_provider_queue_capacity"
	MetricQueueBytes    = "metricsmodule_provider_queue_bytes"
	MetricHealth        = "metricsmodule_provider_health"
	MetricSendDuration  = "metricsmodule_provider_send_duration"
	MetricFailures      = "metricsmodule_provider_failed_attempts"
	MetricDatapoints    = "metricsmodule_provider_datapoints"

	attrProviderID = "provider_id"
	attrGeneration = "generation"
	attrOutcome    = "outcome"
	attrReason     = "reason"
)

// telemetry holds the engine's instruments.
type telemetry struct {
	sendDuration metric.Float64Histogram
	failures     metric.Int64Counter
	points       metric.Int64Counter
	reg          metric.Registration
}

// providerTel is one provider's instruments with its attributes prepared.
type providerTel struct {
	t                  *telemetry
	base               []attribute.KeyValue
	ok, fail           metric.MeasurementOption
	sent, failed, drop metric.MeasurementOption
}

func newTelemetry(mp metric.MeterProvider, e *Engine) (*telemetry, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	t := &telemetry{}
	var errs [8]error
	t.sendDuration, errs[0] = m.Float64Histogram(MetricSendDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of each export of a provider's batch (retries included), by outcome."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	t.failures, errs[1] = m.Int64Counter(MetricFailures, metric.WithUnit("{attempt}"),
		metric.WithDescription("Failed export attempts of a provider by reason, each retry included, counted as it fails."))
	t.points, errs[2] = m.Int64Counter(MetricDatapoints, metric.WithUnit("{datapoint}"),
		metric.WithDescription("Data points of a provider by outcome: sent, failed (export failed for good), dropped (limits, full queue, stop)."))
	qs, err3 := m.Int64ObservableGauge(MetricQueueSize, metric.WithUnit("{batch}"), metric.WithDescription("Batches in a provider's queue."))
	qc, err4 := m.Int64ObservableGauge(MetricQueueCapacity, metric.WithUnit("{batch}"), metric.WithDescription("Capacity of a provider's queue."))
	qb, err5 := m.Int64ObservableGauge(MetricQueueBytes, metric.WithUnit("By"), metric.WithDescription("Bytes in a provider's queue."))
	h, err6 := m.Int64ObservableGauge(MetricHealth, metric.WithUnit("1"),
		metric.WithDescription("A provider's health: 1 HEALTHY, 2 DEGRADED, 3 UNHEALTHY (0 unknown)."))
	errs[3], errs[4], errs[5], errs[6] = err3, err4, err5, err6
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	t.reg, errs[7] = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, p := range e.telemetrySnapshot() {
			opt := metric.WithAttributes(p.attrs...)
			o.ObserveInt64(qs, int64(p.q.size), opt)
			o.ObserveInt64(qc, int64(p.q.capacity), opt)
			o.ObserveInt64(qb, p.q.bytes, opt)
			o.ObserveInt64(h, int64(p.health), opt)
		}
		return nil
	}, qs, qc, qb, h)
	return t, errs[7]
}

// forProvider returns the instruments of one provider generation.
func (t *telemetry) forProvider(id string, gen uint64) *providerTel {
	if t == nil {
		return nil
	}
	base := []attribute.KeyValue{attribute.String(attrProviderID, id), attribute.String(attrGeneration, strconv.FormatUint(gen, 10))}
	with := func(kv attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributes(append(append([]attribute.KeyValue(nil), base...), kv)...)
	}
	return &providerTel{
		t: t, base: base,
		ok: with(attribute.String(attrOutcome, "ok")), fail: with(attribute.String(attrOutcome, "failed")),
		sent: with(attribute.String(attrOutcome, "sent")), failed: with(attribute.String(attrOutcome, "failed")),
		drop: with(attribute.String(attrOutcome, "dropped")),
	}
}

func (p *providerTel) export(seconds float64, points int, failed, countFailed bool) {
	if p == nil {
		return
	}
	ctx := context.Background()
	if failed {
		p.t.sendDuration.Record(ctx, seconds, p.fail)
		if countFailed {
			p.t.points.Add(ctx, int64(points), p.failed)
		}
		return
	}
	p.t.sendDuration.Record(ctx, seconds, p.ok)
	p.t.points.Add(ctx, int64(points), p.sent)
}

func (p *providerTel) dropped(points int) {
	if p == nil || points == 0 {
		return
	}
	p.t.points.Add(context.Background(), int64(points), p.drop)
}

func (p *providerTel) failure(reason string) {
	if p == nil {
		return
	}
	p.t.failures.Add(context.Background(), 1,
		metric.WithAttributes(append(append([]attribute.KeyValue(nil), p.base...), attribute.String(attrReason, reason))...))
}

// telProvider is what the gauges observe of one provider.
type telProvider struct {
	attrs  []attribute.KeyValue
	q      queueInfo
	health pb.HealthStatus
}

// telemetrySnapshot returns the queue and health of every provider.
func (e *Engine) telemetrySnapshot() []telProvider {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]telProvider, 0, len(e.providers))
	for _, ps := range e.providers {
		if ps.removed || ps.stats.tel == nil {
			continue
		}
		p := telProvider{attrs: ps.stats.tel.base, health: ps.stats.Health(), q: queueLocked(ps)}
		if ps.primary == nil && ps.spool == nil {
			p.q = queueInfo{}
		}
		out = append(out, p)
	}
	return out
}
