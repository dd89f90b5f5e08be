package stream

import (
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Filter is a compiled MetricFilter (semantics: package metricfilter). The
// name and type parts are evaluated once per metric name and cached by the
// hub; only label matchers run per data point.
type Filter struct {
	f *metricfilter.Filter
}

// CompileFilter compiles f (nil matches everything). Errors are
// *metricfilter.Error naming the field relative to the request
// ("filter.names[1]: ...").
func CompileFilter(f *pb.MetricFilter) (*Filter, error) {
	c, err := metricfilter.Compile(f)
	if err != nil {
		return nil, err
	}
	return &Filter{f: c}, nil
}

// HasLabelMatchers reports whether the filter looks at data point labels.
func (f *Filter) HasLabelMatchers() bool { return f.f.HasLabelMatchers() }

// indexLabel returns a label and value that a point must have to match
// (the first equality matcher with a non-empty value), for the hub's label
// index; ok is false when the filter has none.
func (f *Filter) indexLabel() (name, value string, ok bool) {
	for _, m := range f.f.LabelMatchers() {
		if m.Type == labels.MatchEqual && m.Value != "" {
			return m.Name, m.Value, true
		}
	}
	return "", "", false
}

// MatchMetric reports whether a metric of this name, stream type and unit
// passes the name and type parts of the filter. Pipeline histograms carry no
// timer type: a filter on TIMER matches histograms whose unit is "s".
func (f *Filter) MatchMetric(name string, typ pb.MetricType, unit string) bool {
	return f.f.MatchType(typ, unit) && f.f.MatchName(name)
}

// MatchLabels reports whether every label matcher matches; a missing label
// has the empty value, as in PromQL.
func (f *Filter) MatchLabels(attrs pcommon.Map) bool {
	if !f.f.HasLabelMatchers() {
		return true
	}
	return f.f.MatchLabels(func(name string) (string, bool) {
		a, ok := attrs.Get(name)
		if !ok {
			return "", false
		}
		if a.Type() == pcommon.ValueTypeStr {
			return a.Str(), true
		}
		return a.AsString(), true
	})
}

// streamType is the MetricType a pipeline metric is streamed as.
func streamType(m pmetric.Metric) pb.MetricType { return metricfilter.TypeOf(m) }
