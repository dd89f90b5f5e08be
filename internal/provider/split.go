package provider

import (
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// split cuts md into batches of at most maxPoints data points, keeping
// resources, scopes and metric metadata. md is not changed; with maxPoints
// <= 0 or a small enough md, md itself is the only batch.
func split(md pmetric.Metrics, maxPoints int) []pmetric.Metrics {
	if maxPoints <= 0 || md.DataPointCount() <= maxPoints {
		return []pmetric.Metrics{md}
	}
	var out []pmetric.Metrics
	cur := pmetric.NewMetrics()
	n := 0
	// dest returns the scope of the current batch for (rm, sm), creating the
	// resource and scope on first use.
	var curRM pmetric.ResourceMetrics
	var curSM pmetric.ScopeMetrics
	lastRM, lastSM := -1, -1
	dest := func(ri, si int, rm pmetric.ResourceMetrics, sm pmetric.ScopeMetrics) pmetric.MetricSlice {
		if lastRM != ri {
			curRM = cur.ResourceMetrics().AppendEmpty()
			rm.Resource().CopyTo(curRM.Resource())
			curRM.SetSchemaUrl(rm.SchemaUrl())
			lastRM, lastSM = ri, -1
		}
		if lastSM != si {
			curSM = curRM.ScopeMetrics().AppendEmpty()
			sm.Scope().CopyTo(curSM.Scope())
			curSM.SetSchemaUrl(sm.SchemaUrl())
			lastSM = si
		}
		return curSM.Metrics()
	}
	flush := func() {
		out = append(out, cur)
		cur = pmetric.NewMetrics()
		n = 0
		lastRM, lastSM = -1, -1
	}
	rms := md.ResourceMetrics()
	for ri := 0; ri < rms.Len(); ri++ {
		rm := rms.At(ri)
		for si := 0; si < rm.ScopeMetrics().Len(); si++ {
			sm := rm.ScopeMetrics().At(si)
			for mi := 0; mi < sm.Metrics().Len(); mi++ {
				m := sm.Metrics().At(mi)
				pts := pointCount(m)
				if n+pts <= maxPoints {
					m.CopyTo(dest(ri, si, rm, sm).AppendEmpty())
					n += pts
					if n == maxPoints {
						flush()
					}
					continue
				}
				// The metric does not fit: copy it in slices of points.
				for from := 0; from < pts; {
					take := min(maxPoints-n, pts-from)
					copyPoints(m, dest(ri, si, rm, sm).AppendEmpty(), from, from+take)
					n += take
					from += take
					if n == maxPoints {
						flush()
					}
				}
			}
		}
	}
	if n > 0 {
		out = append(out, cur)
	}
	return out
}

// copyPoints copies the metadata of src and its points [from, to) into dst.
func copyPoints(src, dst pmetric.Metric, from, to int) {
	dst.SetName(src.Name())
	dst.SetDescription(src.Description())
	dst.SetUnit(src.Unit())
	src.Metadata().CopyTo(dst.Metadata())
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		d := dst.SetEmptyGauge().DataPoints()
		s := src.Gauge().DataPoints()
		for i := from; i < to; i++ {
			s.At(i).CopyTo(d.AppendEmpty())
		}
	case pmetric.MetricTypeSum:
		ds := dst.SetEmptySum()
		ds.SetAggregationTemporality(src.Sum().AggregationTemporality())
		ds.SetIsMonotonic(src.Sum().IsMonotonic())
		s := src.Sum().DataPoints()
		for i := from; i < to; i++ {
			s.At(i).CopyTo(ds.DataPoints().AppendEmpty())
		}
	case pmetric.MetricTypeHistogram:
		dh := dst.SetEmptyHistogram()
		dh.SetAggregationTemporality(src.Histogram().AggregationTemporality())
		s := src.Histogram().DataPoints()
		for i := from; i < to; i++ {
			s.At(i).CopyTo(dh.DataPoints().AppendEmpty())
		}
	case pmetric.MetricTypeExponentialHistogram:
		dh := dst.SetEmptyExponentialHistogram()
		dh.SetAggregationTemporality(src.ExponentialHistogram().AggregationTemporality())
		s := src.ExponentialHistogram().DataPoints()
		for i := from; i < to; i++ {
			s.At(i).CopyTo(dh.DataPoints().AppendEmpty())
		}
	case pmetric.MetricTypeSummary:
		d := dst.SetEmptySummary().DataPoints()
		s := src.Summary().DataPoints()
		for i := from; i < to; i++ {
			s.At(i).CopyTo(d.AppendEmpty())
		}
	}
}
