package provider

import (
	"path"
	"regexp"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// filter is a compiled MetricFilter over pdata. All set parts must match
// (AND); the entries of one part are alternatives (OR). A nil *filter keeps
// everything.
type filter struct {
	names    []string
	exclude  []string
	nameRe   *regexp.Regexp
	types    map[pb.MetricType]bool
	matchers []labelMatcher
}

type labelMatcher struct {
	name  string
	op    pb.MatchOperator
	value string
	re    *regexp.Regexp
}

// compileFilter compiles a validated MetricFilter; nil when it keeps everything.
func compileFilter(mf *pb.MetricFilter) *filter {
	if mf == nil || (len(mf.GetNames()) == 0 && len(mf.GetExcludeNames()) == 0 && mf.GetNameRegex() == "" &&
		len(mf.GetTypes()) == 0 && len(mf.GetLabelMatchers()) == 0) {
		return nil
	}
	f := &filter{names: mf.GetNames(), exclude: mf.GetExcludeNames()}
	if re := mf.GetNameRegex(); re != "" {
		f.nameRe = regexp.MustCompile("^(?:" + re + ")$")
	}
	if len(mf.GetTypes()) > 0 {
		f.types = map[pb.MetricType]bool{}
		for _, t := range mf.GetTypes() {
			f.types[t] = true
		}
	}
	for _, lm := range mf.GetLabelMatchers() {
		m := labelMatcher{name: lm.GetName(), op: lm.GetOperator(), value: lm.GetValue()}
		if m.op == pb.MatchOperator_MATCH_OPERATOR_REGEX || m.op == pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX {
			m.re = regexp.MustCompile("^(?:" + lm.GetValue() + ")$")
		}
		f.matchers = append(f.matchers, m)
	}
	return f
}

func globAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// keepMetric reports whether a metric passes the name and type parts.
func (f *filter) keepMetric(m pmetric.Metric) bool {
	name := m.Name()
	if len(f.names) > 0 && !globAny(f.names, name) {
		return false
	}
	if f.nameRe != nil && !f.nameRe.MatchString(name) {
		return false
	}
	if globAny(f.exclude, name) {
		return false
	}
	if f.types != nil && !f.types[metricType(m)] && !(f.types[pb.MetricType_METRIC_TYPE_HISTOGRAM] && metricType(m) == pb.MetricType_METRIC_TYPE_TIMER) {
		return false
	}
	return true
}

// metricType maps a pdata metric to the API's metric type. A histogram in
// seconds is a TIMER (the metrics_service receiver emits timers so); the
// HISTOGRAM type matches it too.
func metricType(m pmetric.Metric) pb.MetricType {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return pb.MetricType_METRIC_TYPE_GAUGE
	case pmetric.MetricTypeSum:
		if m.Sum().IsMonotonic() {
			return pb.MetricType_METRIC_TYPE_COUNTER
		}
		return pb.MetricType_METRIC_TYPE_GAUGE
	case pmetric.MetricTypeHistogram, pmetric.MetricTypeExponentialHistogram:
		if m.Unit() == "s" {
			return pb.MetricType_METRIC_TYPE_TIMER
		}
		return pb.MetricType_METRIC_TYPE_HISTOGRAM
	case pmetric.MetricTypeSummary:
		return pb.MetricType_METRIC_TYPE_SUMMARY
	}
	return pb.MetricType_METRIC_TYPE_UNSPECIFIED
}

// keepPoint reports whether a data point's labels (its attributes, then the
// resource's) pass every label matcher. A missing label is the empty string,
// as in PromQL.
func (f *filter) keepPoint(attrs, res pcommon.Map) bool {
	for _, m := range f.matchers {
		v, ok := attrs.Get(m.name)
		if !ok {
			v, ok = res.Get(m.name)
		}
		s := ""
		if ok {
			s = v.AsString()
		}
		var match bool
		switch m.op {
		case pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL:
			match = s != m.value
		case pb.MatchOperator_MATCH_OPERATOR_REGEX:
			match = m.re.MatchString(s)
		case pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX:
			match = !m.re.MatchString(s)
		default:
			match = s == m.value
		}
		if !match {
			return false
		}
	}
	return true
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
				if len(f.matchers) > 0 {
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
