package convert

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// build turns the staged series and the gauge groups of c into pdata.
func (a *Accumulator) build(c *call, b *Batch) pmetric.Metrics {
	md := pmetric.NewMetrics()
	if cap(c.rms) < len(b.resources) {
		c.rms = make([]pmetric.ScopeMetrics, len(b.resources))
	}
	c.rms = c.rms[:len(b.resources)]
	for i := range c.rms {
		c.rms[i] = pmetric.ScopeMetrics{}
	}
	// Emit the gauges (a series with several records at its first one), then
	// the stateful series, each in the order of its first record, the points
	// of a series in timestamp order. A first
	// pass creates the metrics and counts their points, so that their point
	// slices are allocated once.
	last := int32(-1)
	note := func(r *record, n int) {
		if last >= 0 && c.slots[last].key.res == r.res && c.slots[last].key.name == r.m.Name {
			fillMeta(c.slots[last].m, r)
		} else {
			last = a.metricFor(c, md, b, r)
		}
		c.slots[last].n += n
		c.order = append(c.order, last)
	}
	for i := range b.recs {
		r := &b.recs[i]
		if r.bad || stateful(r.m.Type) {
			continue
		}
		if c.gmark == nil || c.gmark[i] == 0 {
			note(r, 1)
			continue
		}
		if gi := c.gmark[i]; gi > 0 { // the first record of a series with several
			g := &c.gauges[gi-1]
			note(&b.recs[g.rec], len(g.recs))
			for _, ri := range g.recs {
				fillMeta(c.slots[last].m, &b.recs[ri])
			}
		}
	}
	for i := range c.staged {
		st := &c.staged[i]
		n := 1
		if st.multi != nil {
			n += len(st.multi.prior)
		}
		if st.multi == nil {
			note(&b.recs[st.rec], 1)
			continue
		}
		note(&b.recs[st.rec], n)
		for _, ri := range st.multi.recs {
			fillMeta(c.slots[last].m, &b.recs[ri])
		}
	}
	for i := range c.slots {
		reserve(c.slots[i].m, c.slots[i].n)
	}
	ar := &c.arena
	ar.reset(!a.noArena)
	defer ar.reset(false) // (the pdata keeps the arrays: the call must not)
	j := 0
	for i := range b.recs {
		r := &b.recs[i]
		if r.bad || stateful(r.m.Type) {
			continue
		}
		if c.gmark == nil || c.gmark[i] == 0 {
			m := c.slots[c.order[j]].m
			j++
			gaugePoint(ar, m.Gauge().DataPoints(), r)
			continue
		}
		if gi := c.gmark[i]; gi > 0 {
			dps := c.slots[c.order[j]].m.Gauge().DataPoints()
			j++
			for _, ri := range c.gauges[gi-1].recs {
				gaugePoint(ar, dps, &b.recs[ri])
			}
		}
	}
	for i := range c.staged {
		st := &c.staged[i]
		m := c.slots[c.order[j]].m
		j++
		rec := &b.recs[st.rec]
		// a delta point starts where the previous point of its series ended
		prev := st.next.last
		if st.multi != nil {
			for k := range st.multi.prior {
				p := &st.multi.prior[k]
				a.emit(ar, m, p, max(prev, p.start), rec)
				prev = p.ts
			}
		}
		p := point{
			ts: st.ts, start: st.next.start, total: st.next.total, delta: st.delta,
			hist: st.next.hist, expo: st.next.expo, summary: st.next.summary,
			dhist: st.dhist, dexpo: st.dexpo, pre: st.pre,
		}
		a.emit(ar, m, &p, max(prev, p.start), rec)
	}
	return md
}

func gaugePoint(ar *pointArena, dps pmetric.NumberDataPointSlice, r *record) {
	if ar.numberPoint(dps, pcommon.Timestamp(r.ts), 0, r.m.Value, r.labels, r.cs) {
		return
	}
	dp := dps.AppendEmpty()
	dp.SetTimestamp(pcommon.Timestamp(r.ts))
	dp.SetDoubleValue(r.m.Value)
	putRecordLabels(dp.Attributes(), r)
}

// putRecordLabels sets the labels of r as attrs. The strings are shared:
// from the series cache, or from the request.
func putRecordLabels(attrs pcommon.Map, r *record) {
	if r.labels == nil && r.cs != nil {
		attrs.EnsureCapacity(int(r.cs.nl))
		for i := range int(r.cs.nl) {
			l := r.cs.label(i)
			attrs.PutStr(l.k, l.v)
		}
		return
	}
	putLabels(attrs, r.labels)
}

// metricSlot is one metric of a build and the number of its points.
type metricSlot struct {
	key metricKey
	m   pmetric.Metric
	n   int
}

// reserve makes room for n data points in m.
func reserve(m pmetric.Metric, n int) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().EnsureCapacity(n)
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().EnsureCapacity(n)
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().EnsureCapacity(n)
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().EnsureCapacity(n)
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().EnsureCapacity(n)
	}
}

// fillMeta sets the unit and description of m from r where m has none.
func fillMeta(m pmetric.Metric, r *record) {
	if m.Unit() == "" && r.m.Unit != "" {
		m.SetUnit(r.m.Unit)
	}
	if m.Description() == "" && r.m.Description != "" {
		m.SetDescription(r.m.Description)
	}
}

func putLabels(attrs pcommon.Map, labels []kv) {
	attrs.EnsureCapacity(len(labels))
	for _, l := range labels {
		attrs.PutStr(l.k, l.v)
	}
}

// metricFor returns the slot of the metric of r's name in r's resource,
// creating the resource, scope and metric on first use.
func (a *Accumulator) metricFor(c *call, md pmetric.Metrics, b *Batch, r *record) int32 {
	k := metricKey{res: r.res, name: r.m.Name}
	if si, ok := c.metrics[k]; ok {
		fillMeta(c.slots[si].m, r)
		return si
	}
	sm := c.rms[r.res]
	if sm == (pmetric.ScopeMetrics{}) {
		rm := md.ResourceMetrics().AppendEmpty()
		attrs := b.resources[r.res].attrs
		rattrs := rm.Resource().Attributes()
		rattrs.EnsureCapacity(len(attrs))
		for k, v := range attrs {
			rattrs.PutStr(k, v)
		}
		sm = rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(a.scope.Name)
		sm.Scope().SetVersion(a.scope.Version)
		c.rms[r.res] = sm
	}
	m := sm.Metrics().AppendEmpty()
	m.SetName(r.m.Name)
	m.SetUnit(r.m.Unit)
	m.SetDescription(r.m.Description)
	switch r.m.Type {
	case pb.MetricType_METRIC_TYPE_GAUGE:
		m.SetEmptyGauge()
	case pb.MetricType_METRIC_TYPE_COUNTER:
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pdataTemporality(a.cfg.CounterTemporality))
	case pb.MetricType_METRIC_TYPE_TIMER, pb.MetricType_METRIC_TYPE_HISTOGRAM:
		if r.m.Type == pb.MetricType_METRIC_TYPE_TIMER && r.m.Unit == "" {
			m.SetUnit("s")
		}
		switch {
		case r.m.Histogram != nil && r.m.Histogram.Exponential != nil:
			m.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		case r.m.Histogram != nil:
			m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		case a.cfg.Histogram.Kind == HistogramExponential:
			m.SetEmptyExponentialHistogram().SetAggregationTemporality(pdataTemporality(a.cfg.HistogramTemporality))
		default:
			m.SetEmptyHistogram().SetAggregationTemporality(pdataTemporality(a.cfg.HistogramTemporality))
		}
	case pb.MetricType_METRIC_TYPE_SUMMARY:
		m.SetEmptySummary()
	}
	si := int32(len(c.slots))
	c.slots = append(c.slots, metricSlot{key: k, m: m})
	c.metrics[k] = si
	return si
}

func pdataTemporality(t Temporality) pmetric.AggregationTemporality {
	if t == TemporalityDelta {
		return pmetric.AggregationTemporalityDelta
	}
	return pmetric.AggregationTemporalityCumulative
}

// emit appends data point p of one series to m; deltaStart is the start time
// of a delta point (the end of the series' previous point).
func (a *Accumulator) emit(ar *pointArena, m pmetric.Metric, p *point, deltaStart int64, r *record) {
	ts := pcommon.Timestamp(p.ts)
	start := pcommon.Timestamp(p.start)
	switch m.Type() {
	case pmetric.MetricTypeSum:
		if a.cfg.CounterTemporality == TemporalityDelta {
			if ar.numberPoint(m.Sum().DataPoints(), ts, pcommon.Timestamp(deltaStart), p.delta, r.labels, r.cs) {
				return
			}
		} else if ar.numberPoint(m.Sum().DataPoints(), ts, start, p.total, r.labels, r.cs) {
			return
		}
		dp := m.Sum().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		if a.cfg.CounterTemporality == TemporalityDelta {
			dp.SetStartTimestamp(pcommon.Timestamp(deltaStart))
			dp.SetDoubleValue(p.delta)
		} else {
			dp.SetStartTimestamp(start)
			dp.SetDoubleValue(p.total)
		}
		putRecordLabels(dp.Attributes(), r)
	case pmetric.MetricTypeHistogram:
		dp := m.Histogram().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetStartTimestamp(start)
		putRecordLabels(dp.Attributes(), r)
		if p.pre != nil && p.pre.Histogram != nil && p.pre.Histogram.Exponential == nil {
			h := p.pre.Histogram
			dp.SetCount(h.Count)
			dp.SetSum(h.Sum)
			dp.ExplicitBounds().FromRaw(h.ExplicitBounds)
			dp.BucketCounts().FromRaw(h.BucketCounts)
			if h.Min != nil {
				dp.SetMin(*h.Min)
			}
			if h.Max != nil {
				dp.SetMax(*h.Max)
			}
			return
		}
		h := p.hist
		if a.cfg.HistogramTemporality == TemporalityDelta {
			h = p.dhist
			dp.SetStartTimestamp(pcommon.Timestamp(deltaStart))
		}
		if h == nil {
			h = newExplicitHist(len(a.bounds))
		}
		dp.SetCount(h.count)
		dp.SetSum(h.sum)
		dp.ExplicitBounds().FromRaw(a.bounds)
		dp.BucketCounts().FromRaw(h.counts)
		if h.count > 0 && !h.noMinMax {
			dp.SetMin(h.min)
			dp.SetMax(h.max)
		}
	case pmetric.MetricTypeExponentialHistogram:
		dp := m.ExponentialHistogram().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetStartTimestamp(start)
		putRecordLabels(dp.Attributes(), r)
		if p.pre != nil && p.pre.Histogram != nil && p.pre.Histogram.Exponential != nil {
			h := p.pre.Histogram
			e := h.Exponential
			dp.SetCount(h.Count)
			dp.SetSum(h.Sum)
			dp.SetScale(e.Scale)
			dp.SetZeroCount(e.ZeroCount)
			dp.SetZeroThreshold(e.ZeroThreshold)
			dp.Positive().SetOffset(e.PositiveOffset)
			dp.Positive().BucketCounts().FromRaw(e.PositiveBucketCounts)
			dp.Negative().SetOffset(e.NegativeOffset)
			dp.Negative().BucketCounts().FromRaw(e.NegativeBucketCounts)
			if h.Min != nil {
				dp.SetMin(*h.Min)
			}
			if h.Max != nil {
				dp.SetMax(*h.Max)
			}
			return
		}
		e := p.expo
		if a.cfg.HistogramTemporality == TemporalityDelta {
			e = p.dexpo
			dp.SetStartTimestamp(pcommon.Timestamp(deltaStart))
		}
		if e == nil {
			e = newExpoHist(a.cfg.Histogram.MaxSize)
		}
		fillExpo(dp, e)
	case pmetric.MetricTypeSummary:
		dp := m.Summary().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetStartTimestamp(start)
		putRecordLabels(dp.Attributes(), r)
		if p.pre != nil && p.pre.Summary != nil {
			s := p.pre.Summary
			dp.SetCount(s.Count)
			dp.SetSum(s.Sum)
			for _, q := range s.Quantiles {
				qv := dp.QuantileValues().AppendEmpty()
				qv.SetQuantile(q.Quantile)
				qv.SetValue(q.Value)
			}
			return
		}
		s := p.summary
		if s == nil {
			return
		}
		dp.SetCount(s.count)
		dp.SetSum(s.sum)
		if s.count == 0 {
			return
		}
		vals, err := s.sketch.GetValuesAtQuantiles(a.cfg.Summary.Quantiles)
		if err != nil {
			return
		}
		for i, q := range a.cfg.Summary.Quantiles {
			qv := dp.QuantileValues().AppendEmpty()
			qv.SetQuantile(q)
			qv.SetValue(vals[i])
		}
	}
}

func fillExpo(dp pmetric.ExponentialHistogramDataPoint, e *expoHist) {
	if e.base != nil {
		fillResumedExpo(dp, e)
		return
	}
	h := &e.h
	dp.SetCount(h.Count())
	dp.SetSum(h.Sum())
	dp.SetScale(h.Scale())
	dp.SetZeroCount(h.ZeroCount())
	if h.Count() > 0 {
		dp.SetMin(h.Min())
		dp.SetMax(h.Max())
	}
	for _, pair := range []struct {
		src *structureBuckets
		dst pmetric.ExponentialHistogramDataPointBuckets
	}{{src: (*structureBuckets)(h.Positive()), dst: dp.Positive()}, {src: (*structureBuckets)(h.Negative()), dst: dp.Negative()}} {
		n := pair.src.Len()
		pair.dst.SetOffset(pair.src.Offset())
		counts := pair.dst.BucketCounts()
		counts.EnsureCapacity(int(n))
		for i := uint32(0); i < n; i++ {
			counts.Append(pair.src.At(i))
		}
	}
}
