package prometheusremotewritereceiver

import (
	"fmt"
	"strings"

	"github.com/metricsmodule/metricsmodule/internal/nativehist"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The conversion follows the OTel/Prometheus compatibility rules, as the
// inverse of what the store's OTLP translator does on the way in:
//   - __name__ is the metric name; job is service.name (service.namespace/
//     service.name when it holds a '/'), instance is service.instance.id:
//     resource attributes, so the stored series has the same job and
//     instance labels; every other label is a data point attribute.
//   - a counter (by metadata) whose name the store keeps as is (it ends in
//     _total) is a monotonic cumulative Sum; every other series (gauge,
//     unknown, the _bucket/_sum/_count and quantile series of classic
//     histograms and summaries, info, stateset) is a Gauge of its own name.
//   - each sample is one data point at its own timestamp (ms, kept exactly);
//     a stale marker (StaleNaN) is a point flagged NoRecordedValue whose
//     value is StaleNaN, which the store writes back as the stale marker.
//   - an integer native histogram with an exponential schema is an
//     ExponentialHistogram (cumulative; scale = schema, OTel bucket index =
//     Prometheus bucket index - 1); float histograms, custom buckets (NHCB)
//     and gauge histograms are refused.

const (
	labelJob      = "job"
	labelInstance = "instance"
)

// requestError is a request the receiver refuses as a whole (HTTP 400): it
// names the series and the field, and says what to fix.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// sample is one float sample; st is the start (created) time in ms, 0 when
// unknown.
type sample struct {
	t, st int64
	v     float64
}

// builder collects series into pdata: one ResourceMetrics per job/instance,
// one Metric per name and kind, one data point per sample.
type builder struct {
	md        pmetric.Metrics
	resources map[[2]string]*resourceEntry
	n         counts
}

// counts are the float and histogram samples of a request.
type counts struct{ samples, histograms int }

func (c counts) total() int { return c.samples + c.histograms }

type resourceEntry struct {
	sm      pmetric.ScopeMetrics
	metrics map[metricKey]pmetric.Metric
}

type metricKey struct {
	name string
	kind metricKind
}

type metricKind int

const (
	kindGauge metricKind = iota
	kindCounter
	kindExpHistogram
)

// histSample is one native histogram sample.
type histSample struct {
	t, st int64
	h     *histogram.Histogram
}

func newBuilder() *builder {
	return &builder{md: pmetric.NewMetrics(), resources: map[[2]string]*resourceEntry{}}
}

// counterNamer is how the store names a counter with metric suffixes on; a
// counter whose name it would change is kept as a Gauge of its own name.
var counterNamer = otlptranslator.MetricNamer{WithMetricSuffixes: true}

func keepsCounterName(name string) bool {
	n, err := counterNamer.Build(otlptranslator.Metric{Name: name, Type: otlptranslator.MetricTypeMonotonicCounter})
	return err == nil && n == name
}

func checkTimestamp(ls labels.Labels, t int64) error {
	if t < 0 {
		return badRequest("series %s: sample timestamp %d is before 1970-01-01; send timestamps in milliseconds since the Unix epoch", ls, t)
	}
	return nil
}

// metric returns the metric of the series' resource with this name and kind.
func (b *builder) metric(ls labels.Labels, kind metricKind, help string) pmetric.Metric {
	name := ls.Get(model.MetricNameLabel)
	job, instance := ls.Get(labelJob), ls.Get(labelInstance)
	re := b.resources[[2]string{job, instance}]
	if re == nil {
		rm := b.md.ResourceMetrics().AppendEmpty()
		attrs := rm.Resource().Attributes()
		if job != "" {
			if ns, svc, ok := strings.Cut(job, "/"); ok && ns != "" && svc != "" {
				attrs.PutStr("service.namespace", ns)
				attrs.PutStr("service.name", svc)
			} else {
				attrs.PutStr("service.name", job)
			}
		}
		if instance != "" {
			attrs.PutStr("service.instance.id", instance)
		}
		re = &resourceEntry{sm: rm.ScopeMetrics().AppendEmpty(), metrics: map[metricKey]pmetric.Metric{}}
		b.resources[[2]string{job, instance}] = re
	}
	key := metricKey{name: name, kind: kind}
	m, ok := re.metrics[key]
	if !ok {
		m = re.sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetDescription(help)
		switch kind {
		case kindCounter:
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		case kindExpHistogram:
			m.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		default:
			m.SetEmptyGauge()
		}
		re.metrics[key] = m
	}
	return m
}

// putAttributes sets the labels but __name__, job and instance.
func putAttributes(attrs pcommon.Map, ls labels.Labels) {
	ls.Range(func(l labels.Label) {
		switch l.Name {
		case model.MetricNameLabel, labelJob, labelInstance:
		default:
			attrs.PutStr(l.Name, l.Value)
		}
	})
}

// add adds the float samples of one series (labels sorted, valid) of type typ.
func (b *builder) add(ls labels.Labels, typ model.MetricType, help string, samples []sample) error {
	if len(samples) == 0 {
		return nil
	}
	for _, s := range samples {
		if err := checkTimestamp(ls, s.t); err != nil {
			return err
		}
	}
	kind := kindGauge
	if typ == model.MetricTypeCounter && keepsCounterName(ls.Get(model.MetricNameLabel)) {
		kind = kindCounter
	}
	m := b.metric(ls, kind, help)
	var dps pmetric.NumberDataPointSlice
	if kind == kindCounter {
		dps = m.Sum().DataPoints()
	} else {
		dps = m.Gauge().DataPoints()
	}
	for _, s := range samples {
		dp := dps.AppendEmpty()
		putAttributes(dp.Attributes(), ls)
		dp.SetTimestamp(pcommon.Timestamp(s.t * 1e6))
		if s.st > 0 && kind == kindCounter { // a gauge has no start
			dp.SetStartTimestamp(pcommon.Timestamp(s.st * 1e6))
		}
		dp.SetDoubleValue(s.v)
		if value.IsStaleNaN(s.v) {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		}
		b.n.samples++
	}
	return nil
}

// checkLabels refuses a series without a name or with a repeated label name.
func checkLabels(ls labels.Labels) error {
	if ls.Get(model.MetricNameLabel) == "" {
		return badRequest("series %s: label __name__ is missing or empty; every series needs a metric name", ls)
	}
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return badRequest("series %s: label %q appears more than once; send each label name once per series", ls, name)
	}
	return nil
}

// addHistograms adds the native histogram samples of one series.
func (b *builder) addHistograms(ls labels.Labels, help string, hs []histSample) error {
	if len(hs) == 0 {
		return nil
	}
	for _, s := range hs {
		if err := checkTimestamp(ls, s.t); err != nil {
			return err
		}
		if err := checkHistogram(ls, s.h); err != nil {
			return err
		}
	}
	dps := b.metric(ls, kindExpHistogram, help).ExponentialHistogram().DataPoints()
	for _, s := range hs {
		dp := dps.AppendEmpty()
		putAttributes(dp.Attributes(), ls)
		dp.SetTimestamp(pcommon.Timestamp(s.t * 1e6))
		if s.st > 0 {
			dp.SetStartTimestamp(pcommon.Timestamp(s.st * 1e6))
		}
		if value.IsStaleNaN(s.h.Sum) {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			b.n.histograms++
			continue
		}
		h := s.h
		scale, pos, neg := nativehist.ToExponential(h.Schema, h.PositiveBucketIterator(), h.NegativeBucketIterator(), maxExponentialBuckets)
		dp.SetScale(scale)
		dp.SetZeroThreshold(h.ZeroThreshold)
		dp.SetZeroCount(h.ZeroCount)
		dp.SetCount(h.Count)
		dp.SetSum(h.Sum)
		setBuckets(dp.Positive(), pos)
		setBuckets(dp.Negative(), neg)
		b.n.histograms++
	}
	return nil
}

// maxExponentialBuckets bounds the dense buckets of each sign of a native
// histogram converted to OTel's form (sparse buckets far apart would take
// that many zero buckets): one whose buckets lie further apart is kept at a
// lower scale (see nativehist), as an OTel SDK does at its size limit.
const maxExponentialBuckets = 4096

// setBuckets sets dense OTel buckets (see nativehist.ToExponential).
func setBuckets(dst pmetric.ExponentialHistogramDataPointBuckets, b nativehist.Buckets[uint64]) {
	if len(b.Counts) == 0 {
		return
	}
	dst.SetOffset(b.Offset)
	dst.BucketCounts().FromRaw(b.Counts)
}

// checkHistogram refuses what has no exact ExponentialHistogram form.
func checkHistogram(ls labels.Labels, h *histogram.Histogram) error {
	switch {
	case h == nil:
		return badRequest("series %s: float native histograms are not accepted; send integer native histograms (as scraped) or classic histograms", ls)
	case h.UsesCustomBuckets():
		return badRequest("series %s: native histograms with custom buckets (schema %d) are not accepted; send classic histograms (_bucket, _sum, _count series) or exponential native histograms", ls, h.Schema)
	case h.CounterResetHint == histogram.GaugeType:
		return badRequest("series %s: gauge native histograms are not accepted; send counter histograms", ls)
	case value.IsStaleNaN(h.Sum):
		return nil
	}
	if err := h.Validate(); err != nil {
		return badRequest("series %s: invalid native histogram: %v", ls, err)
	}
	return nil
}

// fromV1 converts a remote write 1.0 request. Metadata is taken from the
// same request only (Prometheus sends it in separate requests).
func fromV1(req *prompb.WriteRequest) (pmetric.Metrics, counts, error) {
	meta := make(map[string]prompb.MetricMetadata, len(req.Metadata))
	for _, m := range req.Metadata {
		meta[m.MetricFamilyName] = m
	}
	b := newBuilder()
	var sb labels.ScratchBuilder
	var samples []sample
	var hs []histSample
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		sb.Reset()
		for _, l := range ts.Labels {
			if l.Value != "" { // an empty label is an absent label
				sb.Add(l.Name, l.Value)
			}
		}
		sb.Sort()
		ls := sb.Labels()
		if err := checkLabels(ls); err != nil {
			return pmetric.Metrics{}, counts{}, err
		}
		name := ls.Get(model.MetricNameLabel)
		md, ok := meta[name]
		if !ok {
			md, ok = meta[strings.TrimSuffix(name, "_total")]
		}
		typ, help := model.MetricTypeUnknown, ""
		if ok {
			typ, help = v1Type(md.Type), md.Help
		}
		samples = samples[:0]
		for _, s := range ts.Samples {
			samples = append(samples, sample{t: s.Timestamp, v: s.Value})
		}
		if err := b.add(ls, typ, help, samples); err != nil {
			return pmetric.Metrics{}, counts{}, err
		}
		hs = hs[:0]
		for _, h := range ts.Histograms {
			hs = append(hs, histSample{t: h.Timestamp, h: h.ToIntHistogram()})
		}
		if err := b.addHistograms(ls, help, hs); err != nil {
			return pmetric.Metrics{}, counts{}, err
		}
	}
	return b.md, b.n, nil
}

func v1Type(t prompb.MetricMetadata_MetricType) model.MetricType {
	switch t {
	case prompb.MetricMetadata_COUNTER:
		return model.MetricTypeCounter
	case prompb.MetricMetadata_GAUGE:
		return model.MetricTypeGauge
	case prompb.MetricMetadata_HISTOGRAM:
		return model.MetricTypeHistogram
	case prompb.MetricMetadata_GAUGEHISTOGRAM:
		return model.MetricTypeGaugeHistogram
	case prompb.MetricMetadata_SUMMARY:
		return model.MetricTypeSummary
	case prompb.MetricMetadata_INFO:
		return model.MetricTypeInfo
	case prompb.MetricMetadata_STATESET:
		return model.MetricTypeStateset
	}
	return model.MetricTypeUnknown
}

// fromV2 converts a remote write 2.0 request, with each series' metadata.
// Exemplars are not converted (the 2.0 answer reports 0 written).
func fromV2(req *writev2.Request) (pmetric.Metrics, counts, error) {
	b := newBuilder()
	var sb labels.ScratchBuilder
	var samples []sample
	var hs []histSample
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		ls, err := ts.ToLabels(&sb, req.Symbols)
		if err != nil {
			return pmetric.Metrics{}, counts{}, badRequest("timeseries[%d]: labels_refs: %v; every reference must index the request's symbols", i, err)
		}
		if err := checkLabels(ls); err != nil {
			return pmetric.Metrics{}, counts{}, err
		}
		md, err := ts.ToMetadata(req.Symbols)
		if err != nil {
			return pmetric.Metrics{}, counts{}, badRequest("series %s: metadata: %v; every reference must index the request's symbols", ls, err)
		}
		samples = samples[:0]
		for _, s := range ts.Samples {
			samples = append(samples, sample{t: s.Timestamp, st: s.StartTimestamp, v: s.Value})
		}
		if err := b.add(ls, md.Type, md.Help, samples); err != nil {
			return pmetric.Metrics{}, counts{}, err
		}
		hs = hs[:0]
		for _, h := range ts.Histograms {
			hs = append(hs, histSample{t: h.Timestamp, st: h.StartTimestamp, h: h.ToIntHistogram()})
		}
		if err := b.addHistograms(ls, md.Help, hs); err != nil {
			return pmetric.Metrics{}, counts{}, err
		}
	}
	return b.md, b.n, nil
}
