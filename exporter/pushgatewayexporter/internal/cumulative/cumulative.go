// Package cumulative keeps the cumulative Prometheus view of OpenTelemetry
// metrics, grouped by Pushgateway grouping key: cumulative points replace the
// state of their series, delta points are added to it, and series that
// receive nothing for a while are forgotten.
package cumulative // import "github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter/internal/cumulative"

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Label is one label name and value.
type Label struct {
	Name, Value string
}

// Options configure a State.
type Options struct {
	// Namespace is prefixed to metric names.
	Namespace string
	// AddMetricSuffixes adds unit and type suffixes (_seconds, _total, ...).
	AddMetricSuffixes bool
	// GroupingLabels are fixed grouping labels (valid Prometheus label names).
	GroupingLabels map[string]string
	// GroupingFromResource names resource attributes that become grouping labels.
	GroupingFromResource []string
	// ResourceLabels copies all resource attributes into series labels.
	ResourceLabels bool
	// Expiration is how long an idle series is kept.
	Expiration time.Duration
	// Now returns the wall clock (default time.Now).
	Now func() time.Time
}

// Result tells what one Update did.
type Result struct {
	// Groups are the grouping keys that the metrics touched, in order of
	// first appearance.
	Groups []*Group
	// Points is the number of data points applied.
	Points int
	// Stale is the number of points skipped because they were not newer than
	// the state of their series (duplicates, retries, out of order).
	Stale int
	// Dropped counts points that were refused, by reason.
	Dropped map[string]int
}

func (r *Result) drop(reason string, n int) {
	if n == 0 {
		return
	}
	if r.Dropped == nil {
		r.Dropped = map[string]int{}
	}
	r.Dropped[reason] += n
}

// Reasons of dropped points.
const (
	ReasonTypeConflict = "type_conflict"
	ReasonBadName      = "invalid_name"
	ReasonNoValue      = "no_recorded_value"
	ReasonUnsupported  = "unsupported_type"
)

// State is the cumulative view per grouping key. It is not safe for concurrent use.
type State struct {
	opts        Options
	namer       otlptranslator.MetricNamer
	static      []Label
	fromRes     []resourceGrouping
	reserved    map[string]bool // label names set by the grouping key
	groups      map[string]*Group
	lastSweep   time.Time
	sweepPeriod time.Duration
}

type resourceGrouping struct {
	attr, label string
}

// Group is the state of one grouping key.
type Group struct {
	key      string
	labels   []Label
	families map[string]*family
}

// Labels returns the grouping labels (without job), sorted by name.
func (g *Group) Labels() []Label { return g.labels }

// Key returns a canonical form of the grouping labels.
func (g *Group) Key() string { return g.key }

type family struct {
	name, help string
	typ        dto.MetricType
	series     map[string]*series
}

type series struct {
	labels []*dto.LabelPair
	lastTS pcommon.Timestamp
	seen   time.Time

	value   float64
	hist    *explicitHistogram
	expo    *expoHistogram
	summary *summaryValue
}

type explicitHistogram struct {
	bounds []float64
	counts []uint64 // per bucket, len(bounds)+1
	count  uint64
	sum    float64
}

type summaryValue struct {
	count     uint64
	sum       float64
	quantiles []*dto.Quantile
}

// New returns an empty State.
func New(opts Options) *State {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &State{
		opts:     opts,
		namer:    otlptranslator.MetricNamer{Namespace: opts.Namespace, WithMetricSuffixes: opts.AddMetricSuffixes},
		reserved: map[string]bool{"job": true},
		groups:   map[string]*Group{},
	}
	for name, value := range opts.GroupingLabels {
		a.static = append(a.static, Label{name, value})
		a.reserved[name] = true
	}
	for _, attr := range opts.GroupingFromResource {
		name, err := LabelName(attr)
		if err != nil {
			continue // refused by config validation
		}
		a.fromRes = append(a.fromRes, resourceGrouping{attr: attr, label: name})
		a.reserved[name] = true
	}
	a.sweepPeriod = min(opts.Expiration/4, time.Minute)
	return a
}

// LabelName returns the Prometheus label name of an attribute name.
func LabelName(attr string) (string, error) {
	var ln otlptranslator.LabelNamer
	return ln.Build(attr)
}

// Update applies md to the state.
func (a *State) Update(md pmetric.Metrics) Result {
	var res Result
	now := a.opts.Now()
	touched := map[string]bool{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		g := a.group(rm.Resource())
		if !touched[g.key] {
			touched[g.key] = true
			res.Groups = append(res.Groups, g)
		}
		var resLabels []Label
		if a.opts.ResourceLabels {
			resLabels = a.attrLabels(rm.Resource().Attributes(), nil)
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				a.updateMetric(g, ms.At(k), resLabels, now, &res)
			}
		}
	}
	a.maybeSweep(now)
	return res
}

// group returns (creating) the group of a resource.
func (a *State) group(res pcommon.Resource) *Group {
	labels := slices.Clone(a.static)
	for _, rg := range a.fromRes {
		if v, ok := res.Attributes().Get(rg.attr); ok {
			labels = append(labels, Label{rg.label, v.AsString()})
		}
	}
	slices.SortFunc(labels, func(x, y Label) int { return strings.Compare(x.Name, y.Name) })
	key := labelsKey(labels)
	g, ok := a.groups[key]
	if !ok {
		g = &Group{key: key, labels: labels, families: map[string]*family{}}
		a.groups[key] = g
	}
	return g
}

func labelsKey(labels []Label) string {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(l.Name)
		b.WriteByte(0xfe)
		b.WriteString(l.Value)
		b.WriteByte(0xff)
	}
	return b.String()
}

func (a *State) updateMetric(g *Group, m pmetric.Metric, resLabels []Label, now time.Time, res *Result) {
	var (
		typ     dto.MetricType
		mtype   otlptranslator.MetricType
		npoints int
	)
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		typ, mtype, npoints = dto.MetricType_GAUGE, otlptranslator.MetricTypeGauge, m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		npoints = m.Sum().DataPoints().Len()
		if m.Sum().IsMonotonic() {
			typ, mtype = dto.MetricType_COUNTER, otlptranslator.MetricTypeMonotonicCounter
		} else {
			typ, mtype = dto.MetricType_GAUGE, otlptranslator.MetricTypeNonMonotonicCounter
		}
	case pmetric.MetricTypeHistogram:
		typ, mtype, npoints = dto.MetricType_HISTOGRAM, otlptranslator.MetricTypeHistogram, m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		// Pushed as a classic histogram: the text format has no native histograms.
		typ, mtype, npoints = dto.MetricType_HISTOGRAM, otlptranslator.MetricTypeHistogram, m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		typ, mtype, npoints = dto.MetricType_SUMMARY, otlptranslator.MetricTypeSummary, m.Summary().DataPoints().Len()
	default:
		res.drop(ReasonUnsupported, 1)
		return
	}
	name, err := a.namer.Build(otlptranslator.Metric{Name: m.Name(), Unit: m.Unit(), Type: mtype})
	if err != nil {
		res.drop(ReasonBadName, npoints)
		return
	}
	fam, ok := g.families[name]
	if !ok {
		fam = &family{name: name, help: m.Description(), typ: typ, series: map[string]*series{}}
		g.families[name] = fam
	} else if fam.typ != typ {
		res.drop(ReasonTypeConflict, npoints)
		return
	}
	if m.Description() != "" {
		fam.help = m.Description()
	}

	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			a.applyNumber(fam, dps.At(i), false, resLabels, now, res)
		}
	case pmetric.MetricTypeSum:
		delta := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := m.Sum().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			a.applyNumber(fam, dps.At(i), delta, resLabels, now, res)
		}
	case pmetric.MetricTypeHistogram:
		delta := m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			a.applyHistogram(fam, dps.At(i), delta, resLabels, now, res)
		}
	case pmetric.MetricTypeExponentialHistogram:
		delta := m.ExponentialHistogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			a.applyExpo(fam, dps.At(i), delta, resLabels, now, res)
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			a.applySummary(fam, dps.At(i), resLabels, now, res)
		}
	}
	if len(fam.series) == 0 {
		delete(g.families, name)
	}
}

// seriesFor returns the series of a point and whether the point is newer
// than its state (a new series accepts any point). Delta points must be
// strictly newer, so that a retried or duplicated batch is not added twice;
// cumulative points may repeat their timestamp.
func (a *State) seriesFor(fam *family, attrs pcommon.Map, ts pcommon.Timestamp, delta bool,
	resLabels []Label, now time.Time, res *Result,
) (s *series, isNew, ok bool) {
	labels := a.attrLabels(attrs, resLabels)
	key := labelsKey(labels)
	s, found := fam.series[key]
	if found {
		if ts < s.lastTS || (delta && ts == s.lastTS) {
			res.Stale++
			return s, false, false
		}
	} else {
		s = &series{labels: toLabelPairs(labels)}
		fam.series[key] = s
	}
	s.lastTS = ts
	s.seen = now
	res.Points++
	return s, !found, true
}

func (a *State) applyNumber(fam *family, dp pmetric.NumberDataPoint, delta bool, resLabels []Label, now time.Time, res *Result) {
	if dp.Flags().NoRecordedValue() {
		res.drop(ReasonNoValue, 1)
		return
	}
	s, isNew, ok := a.seriesFor(fam, dp.Attributes(), dp.Timestamp(), delta, resLabels, now, res)
	if !ok {
		return
	}
	v := dp.DoubleValue()
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		v = float64(dp.IntValue())
	}
	if delta && !isNew {
		s.value += v
		return
	}
	s.value = v
}

func (a *State) applyHistogram(fam *family, dp pmetric.HistogramDataPoint, delta bool, resLabels []Label, now time.Time, res *Result) {
	if dp.Flags().NoRecordedValue() {
		res.drop(ReasonNoValue, 1)
		return
	}
	s, isNew, ok := a.seriesFor(fam, dp.Attributes(), dp.Timestamp(), delta, resLabels, now, res)
	if !ok {
		return
	}
	bounds := dp.ExplicitBounds().AsRaw()
	counts := make([]uint64, len(bounds)+1)
	copy(counts, dp.BucketCounts().AsRaw())
	sum := 0.0
	if dp.HasSum() {
		sum = dp.Sum()
	}
	s.expo = nil
	h := s.hist
	if !delta || isNew || h == nil || !slices.Equal(h.bounds, bounds) {
		// Cumulative input, a new series, or new bounds (a reset): replace.
		s.hist = &explicitHistogram{bounds: bounds, counts: counts, count: dp.Count(), sum: sum}
		return
	}
	for i := range counts {
		h.counts[i] += counts[i]
	}
	h.count += dp.Count()
	h.sum += sum
}

func (a *State) applyExpo(fam *family, dp pmetric.ExponentialHistogramDataPoint, delta bool, resLabels []Label, now time.Time, res *Result) {
	if dp.Flags().NoRecordedValue() {
		res.drop(ReasonNoValue, 1)
		return
	}
	s, isNew, ok := a.seriesFor(fam, dp.Attributes(), dp.Timestamp(), delta, resLabels, now, res)
	if !ok {
		return
	}
	s.hist = nil
	p := expoFromPoint(dp)
	if !delta || isNew || s.expo == nil {
		s.expo = p
		return
	}
	s.expo.merge(p)
}

func (a *State) applySummary(fam *family, dp pmetric.SummaryDataPoint, resLabels []Label, now time.Time, res *Result) {
	if dp.Flags().NoRecordedValue() {
		res.drop(ReasonNoValue, 1)
		return
	}
	s, _, ok := a.seriesFor(fam, dp.Attributes(), dp.Timestamp(), false, resLabels, now, res)
	if !ok {
		return
	}
	sv := &summaryValue{count: dp.Count(), sum: dp.Sum()}
	qs := dp.QuantileValues()
	for i := 0; i < qs.Len(); i++ {
		q := qs.At(i)
		sv.quantiles = append(sv.quantiles, &dto.Quantile{Quantile: ptr(q.Quantile()), Value: ptr(q.Value())})
	}
	slices.SortFunc(sv.quantiles, func(x, y *dto.Quantile) int {
		return compareFloat(x.GetQuantile(), y.GetQuantile())
	})
	s.summary = sv
}

// attrLabels turns attributes into sorted labels, on top of base. Names
// that sanitize to the same label join their values with ";" (as the
// OpenTelemetry to Prometheus translation does); names of the grouping key
// are left out, the Pushgateway sets them.
func (a *State) attrLabels(attrs pcommon.Map, base []Label) []Label {
	byName := map[string]string{}
	for _, l := range base {
		byName[l.Name] = l.Value
	}
	keys := make([]string, 0, attrs.Len())
	for k := range attrs.All() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fromAttrs := map[string]bool{}
	for _, k := range keys {
		name, err := LabelName(k)
		if err != nil {
			continue
		}
		v, _ := attrs.Get(k)
		if prev, ok := byName[name]; ok && fromAttrs[name] {
			byName[name] = prev + ";" + v.AsString()
			continue
		}
		byName[name] = v.AsString()
		fromAttrs[name] = true
	}
	labels := make([]Label, 0, len(byName))
	for _, name := range sortedNames(byName) {
		if a.reserved[name] {
			continue
		}
		labels = append(labels, Label{name, byName[name]})
	}
	return labels
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func toLabelPairs(labels []Label) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(labels))
	for i, l := range labels {
		out[i] = &dto.LabelPair{Name: ptr(l.Name), Value: ptr(l.Value)}
	}
	return out
}

// Families returns the exposition of a group: every family, sorted by name,
// with its series sorted by labels.
func (a *State) Families(g *Group) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(g.families))
	for _, name := range sortedKeys(g.families) {
		fam := g.families[name]
		mf := &dto.MetricFamily{Name: ptr(fam.name), Type: fam.typ.Enum()}
		if fam.help != "" {
			mf.Help = ptr(fam.help)
		}
		for _, key := range sortedKeys(fam.series) {
			mf.Metric = append(mf.Metric, fam.series[key].metric(fam.typ))
		}
		out = append(out, mf)
	}
	return out
}

func (s *series) metric(typ dto.MetricType) *dto.Metric {
	m := &dto.Metric{Label: s.labels}
	switch typ {
	case dto.MetricType_COUNTER:
		m.Counter = &dto.Counter{Value: ptr(s.value)}
	case dto.MetricType_GAUGE:
		m.Gauge = &dto.Gauge{Value: ptr(s.value)}
	case dto.MetricType_HISTOGRAM:
		switch {
		case s.hist != nil:
			m.Histogram = s.hist.dto()
		case s.expo != nil:
			m.Histogram = s.expo.dto()
		}
	case dto.MetricType_SUMMARY:
		m.Summary = &dto.Summary{
			SampleCount: ptr(s.summary.count),
			SampleSum:   ptr(s.summary.sum),
			Quantile:    s.summary.quantiles,
		}
	}
	return m
}

func (h *explicitHistogram) dto() *dto.Histogram {
	out := &dto.Histogram{SampleCount: ptr(h.count), SampleSum: ptr(h.sum)}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		out.Bucket = append(out.Bucket, &dto.Bucket{UpperBound: ptr(b), CumulativeCount: ptr(cum)})
	}
	return out
}

// maybeSweep forgets series idle for longer than the expiration, and
// families and groups left empty.
func (a *State) maybeSweep(now time.Time) {
	if now.Sub(a.lastSweep) < a.sweepPeriod {
		return
	}
	a.lastSweep = now
	a.Sweep(now)
}

// Sweep forgets what was idle for longer than the expiration at now.
func (a *State) Sweep(now time.Time) {
	for gk, g := range a.groups {
		for name, fam := range g.families {
			for key, s := range fam.series {
				if now.Sub(s.seen) > a.opts.Expiration {
					delete(fam.series, key)
				}
			}
			if len(fam.series) == 0 {
				delete(g.families, name)
			}
		}
		if len(g.families) == 0 {
			delete(a.groups, gk)
		}
	}
}

// Series returns the number of series kept.
func (a *State) Series() int {
	n := 0
	for _, g := range a.groups {
		for _, fam := range g.families {
			n += len(fam.series)
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }

func compareFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	case math.IsNaN(x) && !math.IsNaN(y):
		return -1
	}
	return 0
}

// String describes a dropped-points map for logs.
func (r Result) String() string {
	parts := make([]string, 0, len(r.Dropped))
	for _, reason := range sortedKeys(r.Dropped) {
		parts = append(parts, fmt.Sprintf("%s=%d", reason, r.Dropped[reason]))
	}
	return strings.Join(parts, ",")
}
