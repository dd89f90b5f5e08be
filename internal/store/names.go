package store

import (
	"fmt"
	"iter"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The store keeps Prometheus names: OTel metric names and attribute keys are
// translated the way Prometheus' OTLP translator does it ('.' becomes '_',
// counters get '_total', units a suffix). Distinct OTel names can then map
// to one stored name; the first metric to use a stored name claims it and
// later different metrics (another name, or the same name with another type)
// are refused instead of being merged into the same series.

const targetInfoName = "target_info"

// metricKey identifies an OTel metric for the name cache.
type metricKey struct {
	name, unit, kind string
}

// metricEntry is the translation of one OTel metric and its claim.
type metricEntry struct {
	family    string   // metric family name (metadata key)
	series    []string // stored __name__ values (and the family)
	owner     claim
	persisted atomic.Bool // its claims are in the journal/snapshot
}

// kindOf names an OTel metric type as the store tells it apart.
func kindOf(typ pmetric.MetricType, monotonic bool) string {
	switch typ {
	case pmetric.MetricTypeGauge:
		return "gauge"
	case pmetric.MetricTypeSum:
		if monotonic {
			return "counter"
		}
		return "updowncounter"
	case pmetric.MetricTypeHistogram:
		return "histogram"
	case pmetric.MetricTypeExponentialHistogram:
		return "exponential_histogram"
	case pmetric.MetricTypeSummary:
		return "summary"
	}
	return "empty"
}

func translatorType(typ pmetric.MetricType, monotonic bool) otlptranslator.MetricType {
	switch typ {
	case pmetric.MetricTypeGauge:
		return otlptranslator.MetricTypeGauge
	case pmetric.MetricTypeSum:
		if monotonic {
			return otlptranslator.MetricTypeMonotonicCounter
		}
		return otlptranslator.MetricTypeNonMonotonicCounter
	case pmetric.MetricTypeHistogram:
		return otlptranslator.MetricTypeHistogram
	case pmetric.MetricTypeExponentialHistogram:
		return otlptranslator.MetricTypeExponentialHistogram
	case pmetric.MetricTypeSummary:
		return otlptranslator.MetricTypeSummary
	}
	return otlptranslator.MetricTypeUnknown
}

// stored reports whether the translator stores a metric of this type and
// temporality (delta sums and histograms are not translated: the store
// keeps cumulative series).
func (s *Store) stored(typ pmetric.MetricType, temporality pmetric.AggregationTemporality) bool {
	switch typ {
	case pmetric.MetricTypeGauge, pmetric.MetricTypeSummary:
		return true
	case pmetric.MetricTypeSum, pmetric.MetricTypeHistogram, pmetric.MetricTypeExponentialHistogram:
		return temporality == pmetric.AggregationTemporalityCumulative ||
			(s.settings.AllowDeltaTemporality && temporality == pmetric.AggregationTemporalityDelta)
	}
	return false
}

// translate returns the family and stored series names of a metric, as the
// translator names them with the store's settings.
func (s *Store) translate(name, unit string, typ pmetric.MetricType, monotonic bool) (*metricEntry, *RefusedError) {
	namer := otlptranslator.MetricNamer{WithMetricSuffixes: s.settings.AddMetricSuffixes, UTF8Allowed: s.settings.AllowUTF8}
	family, err := namer.Build(otlptranslator.Metric{Name: name, Unit: unit, Type: translatorType(typ, monotonic)})
	if err != nil {
		return nil, &RefusedError{
			Reason: ReasonInvalid, Metric: name, Field: "name",
			Message: fmt.Sprintf("metric name %q has no Prometheus name (%v).", name, err),
			Fix:     "give the metric a name with at least one letter or digit.",
		}
	}
	e := &metricEntry{family: family, owner: claim{Name: name, Kind: kindOf(typ, monotonic), Unit: unit}}
	switch typ {
	case pmetric.MetricTypeHistogram:
		if s.settings.ConvertHistogramsToNHCB {
			e.series = []string{family}
		} else {
			e.series = []string{family, family + "_bucket", family + "_count", family + "_sum"}
		}
	case pmetric.MetricTypeSummary:
		e.series = []string{family, family + "_count", family + "_sum"}
	default:
		e.series = []string{family}
	}
	return e, nil
}

// lookup returns the cached entry of a metric, if any.
func (s *Store) lookup(k metricKey) *metricEntry {
	s.meta.mu.RLock()
	e := s.meta.cache[k]
	s.meta.mu.RUnlock()
	return e
}

// collision returns the refusal of e against the claim c of series name sn.
func collision(e *metricEntry, sn string, c claim) *RefusedError {
	other := fmt.Sprintf("metric %q (%s)", c.Name, c.Kind)
	if c.Kind == "resource" {
		other = "the resource attributes (target_info, one series per resource)"
	}
	return &RefusedError{
		Reason: ReasonNameCollision, Metric: e.owner.Name, Field: "name",
		Message: fmt.Sprintf("metric %q (%s) would be stored as %q, which %s already uses.",
			e.owner.Name, e.owner.Kind, sn, other),
		Fix: "rename one of them; the store keeps Prometheus names, where '.' and '_' are the same, counters end in '_total' and units add a suffix.",
	}
}

// checkClaims checks e against the stored claims and overlay (claims of
// this batch not yet made). Call with s.meta.mu held.
func (s *Store) checkClaims(e *metricEntry, overlay map[string]claim) *RefusedError {
	for _, sn := range e.series {
		c, ok := s.meta.claims[sn]
		if !ok && sn == targetInfoName && !s.settings.DisableTargetInfo {
			c, ok = claim{Name: targetInfoName, Kind: "resource"}, true
		}
		if !ok {
			c, ok = overlay[sn]
		}
		if ok && (c.Name != e.owner.Name || c.Kind != e.owner.Kind) {
			return collision(e, sn, c)
		}
	}
	return nil
}

// ClaimsGeneration returns a counter that changes whenever the stored name
// claims change. CheckMetric's refusals are final, but a pass may turn into
// a name collision once another metric claims a name; a caller may keep a
// pass of CheckMetric while ClaimsGeneration, read before the check, still
// returns the same value.
func (s *Store) ClaimsGeneration() uint64 { return s.meta.gen.Load() }

// CheckMetric returns the refusal of a metric that would collide with a
// different metric already stored (or in this process's claims), or whose
// label keys (labelKeys, the point's attribute keys) collide after
// translation. It claims nothing; Stage does.
func (s *Store) CheckMetric(name, unit string, typ pmetric.MetricType, temporality pmetric.AggregationTemporality, monotonic bool, labelKeys iter.Seq[string]) *RefusedError {
	if r := checkUTF8(name, name, "name"); r != nil {
		return r
	}
	if r := checkUTF8(name, unit, "unit"); r != nil {
		return r
	}
	if !s.stored(typ, temporality) {
		return nil
	}
	k := metricKey{name: name, unit: unit, kind: kindOf(typ, monotonic)}
	e := s.lookup(k)
	if e == nil {
		var r *RefusedError
		if e, r = s.translate(name, unit, typ, monotonic); r != nil {
			return r
		}
		s.meta.mu.RLock()
		r = s.checkClaims(e, nil)
		s.meta.mu.RUnlock()
		if r != nil {
			return r
		}
	}
	if labelKeys == nil {
		return nil
	}
	lc := newLabelChecker(s)
	ex := extrasFor(typ, s.settings.ConvertHistogramsToNHCB)
	for key := range labelKeys {
		if r := checkAttrUTF8(name, "attributes", key, key); r != nil {
			return r
		}
		lc.add(key, "attributes")
	}
	return lc.finish(name, ex, resourceLabels{})
}

// checkUTF8 refuses a string that is not valid UTF-8.
func checkUTF8(metric, v, field string) *RefusedError {
	if utf8.ValidString(v) {
		return nil
	}
	return utf8Refusal(metric, v, field)
}

// checkAttrUTF8 refuses an attribute key or value that is not valid UTF-8;
// where is the field prefix ("attributes").
func checkAttrUTF8(metric, where, key, v string) *RefusedError {
	if utf8.ValidString(v) {
		return nil
	}
	return utf8Refusal(metric, v, field(where, key))
}

func utf8Refusal(metric, v, field string) *RefusedError {
	return &RefusedError{
		Reason: ReasonInvalidUTF8, Metric: metric, Field: field,
		Message: fmt.Sprintf("%s is not valid UTF-8 (%q); the store could not read it back.", field, v),
		Fix:     "send UTF-8 text (convert or drop the bytes at the source).",
	}
}

// canonicalLabel reports whether the translator keeps key as it is: the
// fast path of label checks (two such keys never collide).
func canonicalLabel(key string) bool {
	if key == "" || (key[0] >= '0' && key[0] <= '9') {
		return false
	}
	prevUnderscore, alnum := false, false
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_':
			if prevUnderscore {
				return false
			}
			prevUnderscore = true
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'):
			prevUnderscore, alnum = false, true
		default:
			return false
		}
	}
	return alnum
}

// extraLabels are label names the translator sets itself for a metric type.
type extraLabels struct {
	le, quantile bool
}

func extrasFor(typ pmetric.MetricType, nhcb bool) extraLabels {
	return extraLabels{le: typ == pmetric.MetricTypeHistogram && !nhcb, quantile: typ == pmetric.MetricTypeSummary}
}

// resourceLabels are the labels the translator derives from the resource.
type resourceLabels struct {
	job, instance string // the resource attributes they come from, "" if none
}

// labelChecker finds attribute keys of one point (or resource) that become
// the same label name.
type labelChecker struct {
	s     *Store
	keys  []string // original keys, with their field prefix
	raw   []string
	names []string // translated label names (slow path only)
	slow  bool
}

func newLabelChecker(s *Store) *labelChecker { return &labelChecker{s: s} }

func (lc *labelChecker) reset() {
	lc.keys, lc.raw, lc.names, lc.slow = lc.keys[:0], lc.raw[:0], lc.names[:0], false
}

// add records one attribute key; where is its field prefix ("attributes").
// It reports whether the key is canonical (kept as is by the translator).
func (lc *labelChecker) add(key, where string) bool {
	canonical := canonicalLabel(key)
	lc.slow = lc.slow || !canonical
	lc.raw = append(lc.raw, key)
	lc.keys = append(lc.keys, where)
	return canonical
}

// finish checks the keys added since reset.
func (lc *labelChecker) finish(metric string, ex extraLabels, rl resourceLabels) *RefusedError {
	reserved := func(i int, ln string) *RefusedError {
		var owner string
		switch {
		case ln == "__name__":
			owner = "the metric name"
		case ln == "job" && rl.job != "":
			owner = fmt.Sprintf("resource.attributes[%q]", rl.job)
		case ln == "instance" && rl.instance != "":
			owner = fmt.Sprintf("resource.attributes[%q]", rl.instance)
		case ln == "le" && ex.le:
			owner = "the histogram bucket bounds"
		case ln == "quantile" && ex.quantile:
			owner = "the summary quantiles"
		default:
			return nil
		}
		return &RefusedError{
			Reason: ReasonLabelCollision, Metric: metric, Field: field(lc.keys[i], lc.raw[i]),
			Message: fmt.Sprintf("attribute key %q becomes label %q, which the store sets from %s.", lc.raw[i], ln, owner),
			Fix:     fmt.Sprintf("rename the attribute %q; the store keeps Prometheus label names, where '.' and '_' are the same.", lc.raw[i]),
		}
	}
	if !lc.slow {
		for i, k := range lc.raw {
			if r := reserved(i, k); r != nil {
				return r
			}
		}
		return nil
	}
	namer := otlptranslator.LabelNamer{
		UTF8Allowed:                 lc.s.settings.AllowUTF8,
		UnderscoreLabelSanitization: lc.s.settings.LabelNameUnderscoreSanitization, //nolint:staticcheck // as the translator
		PreserveMultipleUnderscores: lc.s.settings.LabelNamePreserveMultipleUnderscores,
	}
	lc.names = lc.names[:0]
	for i, k := range lc.raw {
		ln, err := namer.Build(k)
		if err != nil {
			return &RefusedError{
				Reason: ReasonInvalid, Metric: metric, Field: field(lc.keys[i], k),
				Message: fmt.Sprintf("attribute key %q has no Prometheus label name (%v).", k, err),
				Fix:     "give the attribute a key with at least one letter or digit.",
			}
		}
		if r := reserved(i, ln); r != nil {
			return r
		}
		for j, other := range lc.names {
			if other == ln {
				return &RefusedError{
					Reason: ReasonLabelCollision, Metric: metric, Field: field(lc.keys[i], k),
					Message: fmt.Sprintf("attribute keys %q (%s) and %q (%s) both become label %q.",
						lc.raw[j], field(lc.keys[j], lc.raw[j]), k, field(lc.keys[i], k), ln),
					Fix: "rename one of the keys; the store keeps Prometheus label names, where '.' and '_' are the same.",
				}
			}
		}
		lc.names = append(lc.names, ln)
	}
	return nil
}

func field(where, key string) string { return fmt.Sprintf("%s[%q]", where, key) }
