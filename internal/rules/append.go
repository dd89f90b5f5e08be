package rules

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/datapath"
)

// ScopeName is the instrumentation scope of the points rules write (a
// StreamMetrics subscriber tells rule output by it).
const ScopeName = "github.com/metricsmodule/metricsmodule/internal/rules"

// Stager stages a batch in the store and the stream hub (datapath.Sink).
type Stager interface {
	Stage(ctx context.Context, md pmetric.Metrics) (datapath.Staged, error)
}

// ErrNotStorable is a rule output the store would keep under another name
// or not at all (see the error's message).
var ErrNotStorable = errors.New("rule output cannot be stored as is")

// sinkAppendable turns what the rules manager appends (recording rule
// output, ALERTS and ALERTS_FOR_STATE) into one pdata batch per group
// evaluation and stages and commits it through the same path as ingested
// data: the store keeps it and StreamMetrics subscribers see it.
type sinkAppendable struct {
	sink func() Stager
}

func (s sinkAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &sinkAppender{ctx: ctx, sink: s.sink, metrics: map[string]pmetric.NumberDataPointSlice{}}
}

// sinkAppender collects one evaluation's samples as gauges, one metric per
// name, the labels (without __name__) as point attributes.
type sinkAppender struct {
	ctx     context.Context
	sink    func() Stager
	md      pmetric.Metrics
	sm      pmetric.ScopeMetrics
	metrics map[string]pmetric.NumberDataPointSlice
	n       int
}

func (a *sinkAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return 0, fmt.Errorf("%w: series %s is a native histogram; the store keeps rule output as float gauges (aggregate it to a number, e.g. histogram_quantile)", ErrNotStorable, ls.String())
	}
	name := ls.Get(labels.MetricName)
	if err := checkStorable(name, ls); err != nil {
		return 0, err
	}
	if a.n == 0 {
		a.md = pmetric.NewMetrics()
		a.sm = a.md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
		a.sm.Scope().SetName(ScopeName)
	}
	dps, ok := a.metrics[name]
	if !ok {
		m := a.sm.Metrics().AppendEmpty()
		m.SetName(name)
		dps = m.SetEmptyGauge().DataPoints()
		a.metrics[name] = dps
	}
	dp := dps.AppendEmpty()
	dp.SetTimestamp(pcommon.Timestamp(t * 1e6))
	if value.IsStaleNaN(v) {
		// a stale marker: the translator stores it as Prometheus' StaleNaN
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		dp.SetDoubleValue(math.NaN())
	} else {
		dp.SetDoubleValue(v)
	}
	attrs := dp.Attributes()
	attrs.EnsureCapacity(ls.Len() - 1)
	ls.Range(func(l labels.Label) {
		if l.Name != labels.MetricName {
			attrs.PutStr(l.Name, l.Value)
		}
	})
	a.n++
	return 0, nil
}

// Commit stages the evaluation's samples and commits them; a store
// refusal (a sample outside its window, a name collision) is the error
// the rule reports (/api/v1/rules lastError).
func (a *sinkAppender) Commit() error {
	if a.n == 0 {
		return nil
	}
	sink := a.sink()
	if sink == nil {
		return errors.New("the store is not open (the collector is starting or stopping)")
	}
	st, err := sink.Stage(a.ctx, a.md)
	if err != nil {
		return fmt.Errorf("store rule output: %w", err)
	}
	if err := st.Commit(); err != nil {
		return fmt.Errorf("commit rule output: %w", err)
	}
	return nil
}

// Rollback drops the collected samples.
func (a *sinkAppender) Rollback() error {
	a.n = 0
	clear(a.metrics)
	return nil
}

var (
	metricNamer = otlptranslator.MetricNamer{WithMetricSuffixes: true}
	labelNamer  = otlptranslator.LabelNamer{}
)

// storedName reports whether the store's OTLP translation keeps name as
// the metric name of a gauge without a unit.
func storedName(name string) bool {
	got, err := metricNamer.Build(otlptranslator.Metric{Name: name, Type: otlptranslator.MetricTypeGauge})
	return err == nil && got == name
}

// storedLabel reports whether the translation keeps a label name.
func storedLabel(name string) bool {
	got, err := labelNamer.Build(name)
	return err == nil && got == name
}

// checkStorable refuses a sample the store would rename.
func checkStorable(name string, ls labels.Labels) error {
	if !storedName(name) {
		return fmt.Errorf("%w: metric name %q would be stored as another name (the store keeps Prometheus names made of [a-zA-Z0-9:] runs joined by single underscores); rename the rule's record", ErrNotStorable, name)
	}
	var err error
	ls.Range(func(l labels.Label) {
		if err == nil && l.Name != labels.MetricName && !storedLabel(l.Name) {
			err = fmt.Errorf("%w: label %q of series %s would be stored as another name (label names are [a-zA-Z0-9] runs joined by single underscores); rename it with label_replace or drop it with sum without(...)", ErrNotStorable, l.Name, ls.String())
		}
	})
	return err
}
