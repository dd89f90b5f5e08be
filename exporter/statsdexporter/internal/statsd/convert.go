package statsd

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// HistogramMode is how histograms are sent.
type HistogramMode string

// Histogram modes.
const (
	// HistogramAggregates sends name.count and name.sum as counters,
	// name.min and name.max as gauges, and one gauge per quantile
	// (name.p50, name.p99, ...) estimated from the buckets.
	HistogramAggregates HistogramMode = "aggregates"
	// HistogramObservations sends one timer/histogram/distribution line per
	// non-empty bucket: the bucket's middle value, weighted by its count
	// through the sample rate (|@0.25 counts as 4 observations).
	HistogramObservations HistogramMode = "observations"
)

// Reasons of dropped points.
const (
	ReasonNoValue     = "no_recorded_value"
	ReasonNotFinite   = "not_finite"
	ReasonUnsupported = "unsupported_type"
)

// Options configure a Converter.
type Options struct {
	// Prefix is put before every name (with a '.' unless it ends with one).
	Prefix string
	// TagFormat is how tags are written.
	TagFormat TagFormat
	// SampleRate in (0, 1] thins counters and histogram lines; gauges are
	// always sent.
	SampleRate float64
	// HistogramMode is how histograms are sent.
	HistogramMode HistogramMode
	// Quantiles are the quantile gauges of the aggregates mode.
	Quantiles []float64
	// ObservationType is the type of observation lines (ms, h or d).
	ObservationType Type
	// ResourceTags adds the resource attributes as tags.
	ResourceTags bool
	// Expiration is how long the state of an idle cumulative series is kept.
	Expiration time.Duration
	// Start is when the exporter started: a cumulative series first seen
	// is sent in full only when it started after this.
	Start time.Time
	// Now returns the wall clock (default time.Now).
	Now func() time.Time
	// Rand returns a number in [0, 1) for sampling.
	Rand func() float64
}

// Converter turns metrics into StatsD entries, keeping the last value of
// every cumulative series to send increments. It is not safe for concurrent
// use.
type Converter struct {
	opts      Options
	prefix    string
	start     pcommon.Timestamp
	state     map[string]*seriesState
	lastSweep time.Time
}

type seriesState struct {
	start, last pcommon.Timestamp
	value       float64 // counters, summary sums
	count       uint64  // summary counts
	dist        *dist   // histograms
	seen        time.Time
}

// NewConverter returns a Converter without state.
func NewConverter(opts Options) *Converter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SampleRate <= 0 || opts.SampleRate > 1 {
		opts.SampleRate = 1
	}
	prefix := opts.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	return &Converter{
		opts:   opts,
		prefix: prefix,
		start:  pcommon.NewTimestampFromTime(opts.Start),
		state:  map[string]*seriesState{},
	}
}

// Batch is the outcome of one Convert: the entries to send and the state
// to keep once they are sent.
type Batch struct {
	// Entries are formatted lines; an entry may hold two lines that must
	// stay together (a negative gauge).
	Entries []string
	// Points is the number of data points converted.
	Points int
	// Stale counts cumulative points not newer than their series' state.
	Stale int
	// Sampled counts lines left out by sampling.
	Sampled int
	// Dropped counts points that were not sent, by reason.
	Dropped map[string]int

	conv    *Converter
	now     time.Time
	pending map[string]*seriesState
}

func (b *Batch) drop(reason string) {
	if b.Dropped == nil {
		b.Dropped = map[string]int{}
	}
	b.Dropped[reason]++
}

// Commit keeps the state of the batch's cumulative series: call it once
// the entries were sent, so that a failed send converted again gives the
// same increments.
func (b *Batch) Commit() {
	for k, s := range b.pending {
		b.conv.state[k] = s
	}
	b.pending = nil
	b.conv.maybeSweep(b.now)
}

// Series returns the number of cumulative series kept.
func (c *Converter) Series() int { return len(c.state) }

func (c *Converter) maybeSweep(now time.Time) {
	if now.Sub(c.lastSweep) < min(c.opts.Expiration/4, time.Minute) {
		return
	}
	c.lastSweep = now
	for k, s := range c.state {
		if now.Sub(s.seen) > c.opts.Expiration {
			delete(c.state, k)
		}
	}
}

// Convert turns md into entries. State changes wait for Batch.Commit.
func (c *Converter) Convert(md pmetric.Metrics) *Batch {
	b := &Batch{conv: c, now: c.opts.Now(), pending: map[string]*seriesState{}}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		var resTags map[string]string
		if c.opts.ResourceTags {
			resTags = map[string]string{}
			addTags(resTags, rm.Resource().Attributes())
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				c.convertMetric(b, ms.At(k), resTags)
			}
		}
	}
	return b
}

func (c *Converter) convertMetric(b *Batch, m pmetric.Metric, resTags map[string]string) {
	name := c.prefix + SanitizeName(m.Name())
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if v, ok := numberValue(b, dp); ok {
				b.Points++
				c.emit(b, Line{Name: name, Value: v, Type: Gauge, Tags: tags(resTags, dp.Attributes())}, false)
			}
		}
	case pmetric.MetricTypeSum:
		s := m.Sum()
		delta := s.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := s.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			v, ok := numberValue(b, dp)
			if !ok {
				continue
			}
			t := tags(resTags, dp.Attributes())
			switch {
			case !s.IsMonotonic():
				// An up-down counter is a gauge: a delta is a signed change.
				b.Points++
				c.emit(b, Line{Name: name, Value: v, Type: Gauge, Delta: delta, Tags: t}, false)
			case delta:
				b.Points++
				c.emit(b, Line{Name: name, Value: v, Type: Counter, Tags: t}, true)
			default:
				inc, ok := c.counterIncrement(b, "c", name, t, dp.StartTimestamp(), dp.Timestamp(), v)
				if ok {
					c.emit(b, Line{Name: name, Value: inc, Type: Counter, Tags: t}, true)
				}
			}
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				b.drop(ReasonNoValue)
				continue
			}
			c.convertDist(b, name, tags(resTags, dp.Attributes()), distFromHistogram(dp),
				h.AggregationTemporality() == pmetric.AggregationTemporalityDelta, dp.StartTimestamp(), dp.Timestamp())
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				b.drop(ReasonNoValue)
				continue
			}
			c.convertDist(b, name, tags(resTags, dp.Attributes()), distFromExpo(dp),
				h.AggregationTemporality() == pmetric.AggregationTemporalityDelta, dp.StartTimestamp(), dp.Timestamp())
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			c.convertSummary(b, name, tags(resTags, dps.At(i).Attributes()), dps.At(i))
		}
	default:
		b.drop(ReasonUnsupported)
	}
}

func numberValue(b *Batch, dp pmetric.NumberDataPoint) (float64, bool) {
	if dp.Flags().NoRecordedValue() {
		b.drop(ReasonNoValue)
		return 0, false
	}
	v := dp.DoubleValue()
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		v = float64(dp.IntValue())
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		b.drop(ReasonNotFinite)
		return 0, false
	}
	return v, true
}

// lookup returns the state of key, as pending in this batch or committed.
func (b *Batch) lookup(key string) *seriesState {
	if s, ok := b.pending[key]; ok {
		return s
	}
	return b.conv.state[key]
}

// fresh tells what a cumulative point is relative to prev: stale (not newer),
// a reset (a new start time), or a continuation.
func fresh(prev *seriesState, start, ts pcommon.Timestamp) (stale, reset bool) {
	if ts <= prev.last {
		return true, false
	}
	return false, start != 0 && prev.start != 0 && start != prev.start
}

// firstInFull reports whether a cumulative series seen for the first time is
// sent in full: only when it started after the exporter, otherwise its
// earlier increments were (or should have been) reported before.
func (c *Converter) firstInFull(start pcommon.Timestamp) bool {
	return start != 0 && start >= c.start
}

// counterIncrement turns a cumulative value into the increment since the
// previous point of the series. A lower value than before, or a new start
// time, is a reset: the increment is the new value.
func (c *Converter) counterIncrement(b *Batch, kind, name string, t []Tag, start, ts pcommon.Timestamp, v float64) (float64, bool) {
	key := seriesKey(kind, name, t)
	prev := b.lookup(key)
	next := &seriesState{start: start, last: ts, value: v, seen: b.now}
	if prev == nil {
		b.pending[key] = next
		b.Points++
		return v, c.firstInFull(start)
	}
	stale, reset := fresh(prev, start, ts)
	if stale {
		b.Stale++
		return 0, false
	}
	b.pending[key] = next
	b.Points++
	if reset || v < prev.value {
		return v, true
	}
	return v - prev.value, true
}

func (c *Converter) convertDist(b *Batch, name string, t []Tag, d *dist, delta bool, start, ts pcommon.Timestamp) {
	if delta {
		b.Points++
		c.emitDist(b, name, t, d)
		return
	}
	key := seriesKey("h", name, t)
	prev := b.lookup(key)
	next := &seriesState{start: start, last: ts, dist: d, seen: b.now}
	if prev == nil {
		b.pending[key] = next
		b.Points++
		if c.firstInFull(start) {
			c.emitDist(b, name, t, d)
		}
		return
	}
	stale, reset := fresh(prev, start, ts)
	if stale {
		b.Stale++
		return
	}
	b.pending[key] = next
	b.Points++
	if !reset {
		if interval, ok := d.minus(prev.dist); ok {
			c.emitDist(b, name, t, interval)
			return
		}
	}
	c.emitDist(b, name, t, d)
}

// emitDist sends the distribution of one interval.
func (c *Converter) emitDist(b *Batch, name string, t []Tag, d *dist) {
	if d.count == 0 {
		return
	}
	bs := d.buckets()
	if c.opts.HistogramMode == HistogramObservations {
		for _, bk := range bs {
			c.emit(b, Line{Name: name, Value: d.representative(bk), Type: c.opts.ObservationType, Tags: t, Rate: WeightRate(bk.count)}, true)
		}
		return
	}
	if c.sample(b) {
		c.emitSampled(b, Line{Name: name + ".count", Value: float64(d.count), Type: Counter, Tags: t})
		if d.hasSum {
			c.emitSampled(b, Line{Name: name + ".sum", Value: d.sum, Type: Counter, Tags: t})
		}
	}
	if d.hasMin {
		c.emit(b, Line{Name: name + ".min", Value: d.min, Type: Gauge, Tags: t}, false)
	}
	if d.hasMax {
		c.emit(b, Line{Name: name + ".max", Value: d.max, Type: Gauge, Tags: t}, false)
	}
	if len(bs) == 0 {
		return
	}
	for _, q := range c.opts.Quantiles {
		if v := d.quantile(q, bs); !math.IsNaN(v) && !math.IsInf(v, 0) {
			c.emit(b, Line{Name: name + "." + QuantileName(q), Value: v, Type: Gauge, Tags: t}, false)
		}
	}
}

func (c *Converter) convertSummary(b *Batch, name string, t []Tag, dp pmetric.SummaryDataPoint) {
	if dp.Flags().NoRecordedValue() {
		b.drop(ReasonNoValue)
		return
	}
	key := seriesKey("s", name, t)
	prev := b.lookup(key)
	next := &seriesState{start: dp.StartTimestamp(), last: dp.Timestamp(), value: dp.Sum(), count: dp.Count(), seen: b.now}
	send := true
	dCount, dSum := dp.Count(), dp.Sum()
	if prev == nil {
		send = c.firstInFull(dp.StartTimestamp())
	} else {
		stale, reset := fresh(prev, dp.StartTimestamp(), dp.Timestamp())
		if stale {
			b.Stale++
			return
		}
		if !reset && dp.Count() >= prev.count {
			dCount, dSum = dp.Count()-prev.count, dp.Sum()-prev.value
		}
	}
	b.pending[key] = next
	b.Points++
	if send && dCount > 0 && c.sample(b) {
		c.emitSampled(b, Line{Name: name + ".count", Value: float64(dCount), Type: Counter, Tags: t})
		c.emitSampled(b, Line{Name: name + ".sum", Value: dSum, Type: Counter, Tags: t})
	}
	qs := dp.QuantileValues()
	for i := 0; i < qs.Len(); i++ {
		q := qs.At(i)
		if !math.IsNaN(q.Value()) && !math.IsInf(q.Value(), 0) {
			c.emit(b, Line{Name: name + "." + QuantileName(q.Quantile()), Value: q.Value(), Type: Gauge, Tags: t}, false)
		}
	}
}

// sample draws whether a sampled line is sent; it counts the ones left out.
func (c *Converter) sample(b *Batch) bool {
	if c.opts.SampleRate >= 1 {
		return true
	}
	if c.opts.Rand() < c.opts.SampleRate {
		return true
	}
	b.Sampled++
	return false
}

// emitSampled formats a line already drawn by sample, with the sample rate.
func (c *Converter) emitSampled(b *Batch, l Line) {
	if c.opts.SampleRate < 1 {
		l.Rate = c.opts.SampleRate
	}
	b.Entries = append(b.Entries, Format(l, c.opts.TagFormat))
}

// emit formats a line; a sampled line is drawn first and carries the
// product of its own rate and the configured one.
func (c *Converter) emit(b *Batch, l Line, sampled bool) {
	if sampled && c.opts.SampleRate < 1 {
		if !c.sample(b) {
			return
		}
		if l.Rate <= 0 {
			l.Rate = 1
		}
		l.Rate *= c.opts.SampleRate
	}
	b.Entries = append(b.Entries, Format(l, c.opts.TagFormat))
}

// QuantileName returns the name suffix of a quantile: p50, p99, p99_9.
func QuantileName(q float64) string {
	return "p" + strings.ReplaceAll(strconv.FormatFloat(q*100, 'f', -1, 64), ".", "_")
}

// tags returns the tags of a point: resource tags (if any) overridden by
// the point's attributes, sorted by key. Attributes with empty values are
// left out.
func tags(resTags map[string]string, attrs pcommon.Map) []Tag {
	m := make(map[string]string, len(resTags)+attrs.Len())
	for k, v := range resTags {
		m[k] = v
	}
	addTags(m, attrs)
	out := make([]Tag, 0, len(m))
	for k, v := range m {
		out = append(out, Tag{k, v})
	}
	slices.SortFunc(out, func(x, y Tag) int { return strings.Compare(x.Key, y.Key) })
	return out
}

func addTags(m map[string]string, attrs pcommon.Map) {
	for k, v := range attrs.All() {
		key, val := SanitizeTag(k), SanitizeTag(v.AsString())
		if key == "" || val == "" {
			continue
		}
		m[key] = val
	}
}

func seriesKey(kind, name string, t []Tag) string {
	var b strings.Builder
	b.WriteString(kind)
	b.WriteByte(0xff)
	b.WriteString(name)
	for _, tag := range t {
		b.WriteByte(0xff)
		b.WriteString(tag.Key)
		b.WriteByte(0xfe)
		b.WriteString(tag.Value)
	}
	return b.String()
}
