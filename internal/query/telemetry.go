package query

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Internal telemetry of the query engine (SetMeterProvider): every query
// of QueryMetrics, GetMetrics, GetMetricsSummary and the Prometheus HTTP
// API goes through Do.
const (
	meterName = "github.com/metricsmodule/metricsmodule/internal/query"

	// MetricQueries counts queries by outcome (ok, bad_query, timeout,
	// canceled, too_large, unavailable, overloaded, execution, internal).
	MetricQueries = "metricsmodule_query_requests"
	// MetricDuration is the duration of queries by outcome, the wait for a
	// slot included.
	MetricDuration = "metricsmodule_query_duration"
	// MetricRefusals counts queries refused by a limit, by its config key.
	MetricRefusals = "metricsmodule_query_refusals"
)

type telemetry struct {
	queries  metric.Int64Counter
	duration metric.Float64Histogram
	refusals metric.Int64Counter
}

// SetMeterProvider turns on the engine's telemetry through mp (the
// collector's MeterProvider). Call it once, before the first query.
func (e *Engine) SetMeterProvider(mp metric.MeterProvider) error {
	if mp == nil {
		return nil
	}
	m := mp.Meter(meterName)
	var t telemetry
	var err1, err2, err3 error
	t.queries, err1 = m.Int64Counter(MetricQueries, metric.WithUnit("{query}"), metric.WithDescription("Queries by outcome."))
	t.duration, err2 = m.Float64Histogram(MetricDuration, metric.WithUnit("s"), metric.WithDescription("Query duration by outcome, the wait for an evaluation slot included."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
	t.refusals, err3 = m.Int64Counter(MetricRefusals, metric.WithUnit("{query}"), metric.WithDescription("Queries refused by a limit, by the limit's config key."))
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	e.tel.Store(&t)
	return nil
}

// record counts one query.
func (e *Engine) record(start time.Time, err error) {
	t := e.tel.Load()
	if t == nil {
		return
	}
	ctx := context.Background()
	outcome := outcomeOf(err)
	opt := metric.WithAttributes(attribute.String("outcome", outcome))
	t.queries.Add(ctx, 1, opt)
	t.duration.Record(ctx, time.Since(start).Seconds(), opt)
	var le *LimitError
	switch {
	case errors.As(err, &le):
		t.refusals.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", le.Key)))
	case outcome == "overloaded":
		t.refusals.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", "query.max_queued")))
	case outcome == "too_large":
		key := "query.max_samples"
		if strings.Contains(err.Error(), "query.max_series") {
			key = "query.max_series"
		}
		t.refusals.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", key)))
	}
}

func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	var qe *Error
	if !errors.As(err, &qe) {
		return "internal"
	}
	switch qe.Kind {
	case KindBadQuery:
		return "bad_query"
	case KindTimeout:
		return "timeout"
	case KindCanceled:
		return "canceled"
	case KindTooLarge:
		return "too_large"
	case KindUnavailable:
		return "unavailable"
	case KindOverloaded:
		return "overloaded"
	case KindExecution:
		return "execution"
	}
	return "internal"
}

// telemetryHolder is embedded in Engine.
type telemetryHolder struct {
	tel atomic.Pointer[telemetry]
}
