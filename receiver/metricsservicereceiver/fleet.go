package metricsservicereceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// nodeIdentity is this node's identity in a fleet with a shared store
// (metrics_store extension, shared.instance and shared.instance_label).
// The receiver's accumulator keeps the running totals of the increments
// this node received; when a load balancer spreads one series over several
// nodes, each node's total is one part of the fleet's. Stamping the node's
// identity on them keeps the parts apart in the shared backend (and at
// every provider), where reads add them up (ARCHITECTURE.md, Fleet).
// Gauges and delta points are not stamped: their points from any node are
// one series.
type nodeIdentity struct {
	label, value string
}

// stamp sets the identity attribute on every cumulative data point of md
// (sums, histograms, exponential histograms, summaries).
func (n nodeIdentity) stamp(md pmetric.Metrics) {
	if n.label == "" {
		return
	}
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				n.stampMetric(ms.At(k))
			}
		}
	}
}

func (n nodeIdentity) stampMetric(m pmetric.Metric) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			return
		}
		dps := m.Sum().DataPoints()
		for i := range dps.Len() {
			n.put(dps.At(i).Attributes())
		}
	case pmetric.MetricTypeHistogram:
		if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			return
		}
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			n.put(dps.At(i).Attributes())
		}
	case pmetric.MetricTypeExponentialHistogram:
		if m.ExponentialHistogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			return
		}
		dps := m.ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			n.put(dps.At(i).Attributes())
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := range dps.Len() {
			n.put(dps.At(i).Attributes())
		}
	}
}

func (n nodeIdentity) put(attrs pcommon.Map) {
	if n.label == "" {
		return
	}
	attrs.PutStr(n.label, n.value)
}
