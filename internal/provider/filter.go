package provider

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// filter is a compiled MetricFilter over pdata (semantics: package
// metricfilter). A nil *filter keeps everything.
type filter struct {
	mf *metricfilter.Filter
}

// compileFilter compiles a MetricFilter; nil when it keeps everything. A
// filter that does not compile (validateFilter refuses it at create and
// update) is an error, never "keep everything".
func compileFilter(mf *pb.MetricFilter) (*filter, error) {
	c, err := metricfilter.CompileAt("config.filter", mf)
	if err != nil {
		return nil, err
	}
	if c.Empty() {
		return nil, nil
	}
	return &filter{mf: c}, nil
}

// keepMetric reports whether a metric passes the name and type parts.
func (f *filter) keepMetric(m pmetric.Metric) bool { return f.mf.MatchMetric(m) }

// keepPoint reports whether a data point's labels (its attributes, then the
// resource's) pass every label matcher. A missing label is the empty string,
// as in PromQL.
func (f *filter) keepPoint(attrs, res pcommon.Map) bool {
	return f.mf.MatchLabels(func(name string) (string, bool) {
		v, ok := attrs.Get(name)
		if !ok {
			if v, ok = res.Get(name); !ok {
				return "", false
			}
		}
		return v.AsString(), true
	})
}

// apply returns the part of md that passes, as a new Metrics (md is not
// changed), and whether anything passed. A nil filter returns md itself.
func (f *filter) apply(md pmetric.Metrics) (pmetric.Metrics, bool) {
	if f == nil {
		return md, md.DataPointCount() > 0
	}
	out := pmetric.NewMetrics()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		var orm pmetric.ResourceMetrics
		hasRM := false
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			var osm pmetric.ScopeMetrics
			hasSM := false
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if !f.keepMetric(m) {
					continue
				}
				if !hasRM {
					orm = out.ResourceMetrics().AppendEmpty()
					rm.Resource().CopyTo(orm.Resource())
					orm.SetSchemaUrl(rm.SchemaUrl())
					hasRM = true
				}
				if !hasSM {
					osm = orm.ScopeMetrics().AppendEmpty()
					sm.Scope().CopyTo(osm.Scope())
					osm.SetSchemaUrl(sm.SchemaUrl())
					hasSM = true
				}
				om := osm.Metrics().AppendEmpty()
				m.CopyTo(om)
				if f.mf.HasLabelMatchers() {
					res := rm.Resource().Attributes()
					removePoints(om, func(attrs pcommon.Map) bool { return !f.keepPoint(attrs, res) })
					if pointCount(om) == 0 {
						osm.Metrics().RemoveIf(func(x pmetric.Metric) bool { return pointCount(x) == 0 })
					}
				}
			}
		}
	}
	// Drop scopes and resources left empty by label matchers.
	out.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool { return sm.Metrics().Len() == 0 })
		return rm.ScopeMetrics().Len() == 0
	})
	return out, out.DataPointCount() > 0
}

// removePoints removes the data points whose attributes satisfy drop.
func removePoints(m pmetric.Metric, drop func(pcommon.Map) bool) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool { return drop(dp.Attributes()) })
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool { return drop(dp.Attributes()) })
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(dp pmetric.HistogramDataPoint) bool { return drop(dp.Attributes()) })
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool { return drop(dp.Attributes()) })
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(dp pmetric.SummaryDataPoint) bool { return drop(dp.Attributes()) })
	}
}

// pointCount returns the number of data points of a metric.
func pointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
