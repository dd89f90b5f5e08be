package promapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/proto"
)

// FederationLookback is how far back /federate looks for the latest
// sample of a series (Prometheus' default lookback delta).
const FederationLookback = 5 * time.Minute

// federate serves /federate as Prometheus' web/federate.go does: the latest
// sample within FederationLookback of every series selected by one or more
// match[] selectors, in the negotiated exposition format, labels as stored
// plus an empty instance label (so a scraper with honor_labels adds none).
func (a *api) federate(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	if err := req.ParseForm(); err != nil {
		http.Error(w, fmt.Sprintf("error parsing form values: %v", err), http.StatusBadRequest)
		return
	}
	if len(req.Form["match[]"]) == 0 {
		http.Error(w, "no match[] parameter provided; add one or more series selectors, e.g. match[]={job=\"x\"}", http.StatusBadRequest)
		return
	}
	matcherSets, err := selectorParser.ParseMetricSelectors(req.Form["match[]"])
	if err != nil {
		http.Error(w, fmt.Sprintf("invalid parameter \"match[]\": %v", err), http.StatusBadRequest)
		return
	}

	now := time.Now()
	var (
		mint   = timestamp.FromTime(now.Add(-FederationLookback))
		maxt   = timestamp.FromTime(now)
		format = expfmt.NegotiateAccept(req.Header, expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeProtoText), expfmt.NewFormat(expfmt.TypeProtoCompact), expfmt.NewFormat(expfmt.TypeTextPlain))
	)

	q, err := a.queryable().Querier(mint, maxt)
	if err != nil {
		if errors.Is(err, tsdb.ErrNotReady) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer q.Close()

	hints := &storage.SelectHints{Start: mint, End: maxt}
	var sets []storage.SeriesSet
	for _, mset := range matcherSets {
		sets = append(sets, q.Select(ctx, true, hints, mset...))
	}
	set := storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	it := storage.NewBuffer(FederationLookback.Milliseconds())
	var chkIter chunkenc.Iterator
	var vec promql.Vector
Loop:
	for set.Next() {
		s := set.At()
		chkIter = s.Iterator(chkIter)
		it.Reset(chkIter)
		var (
			t  int64
			f  float64
			fh *histogram.FloatHistogram
		)
		switch it.Seek(maxt) {
		case chunkenc.ValFloat:
			t, f = it.At()
		case chunkenc.ValFloatHistogram, chunkenc.ValHistogram:
			t, fh = it.AtFloatHistogram(nil)
		default:
			sample, ok := it.PeekBack(1)
			if !ok {
				continue Loop
			}
			t = sample.T()
			switch sample.Type() {
			case chunkenc.ValFloat:
				f = sample.F()
			case chunkenc.ValHistogram:
				fh = sample.H().ToFloat(nil)
			case chunkenc.ValFloatHistogram:
				fh = sample.FH().Copy()
			default:
				continue Loop
			}
		}
		// exposition formats carry no stale markers: drop them
		if value.IsStaleNaN(f) || (fh != nil && value.IsStaleNaN(fh.Sum)) {
			continue
		}
		vec = append(vec, promql.Sample{Metric: s.Labels(), T: t, F: f, H: fh})
	}
	if set.Err() != nil {
		http.Error(w, set.Err().Error(), http.StatusInternalServerError)
		return
	}
	slices.SortStableFunc(vec, func(a, b promql.Sample) int {
		return strings.Compare(a.Metric.Get(labels.MetricName), b.Metric.Get(labels.MetricName))
	})

	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	if err := encodeFederation(enc, format, vec); err != nil {
		// the status is sent; the scraper sees a truncated body
		return
	}
}

// encodeFederation writes vec (sorted by metric name) as metric families.
func encodeFederation(enc expfmt.Encoder, format expfmt.Format, vec promql.Vector) error {
	var (
		lastMetricName                          string
		lastWasHistogram, lastHistogramWasGauge bool
		fam                                     *dto.MetricFamily
	)
	ft := format.FormatType()
	protoFormat := ft == expfmt.TypeProtoDelim || ft == expfmt.TypeProtoText || ft == expfmt.TypeProtoCompact
	for _, s := range vec {
		isHistogram := s.H != nil
		if isHistogram && !s.H.UsesCustomBuckets() && !protoFormat {
			continue // a native histogram needs a protobuf format
		}
		nameSeen, instanceSeen := false, false
		m := &dto.Metric{}
		err := s.Metric.Validate(func(l labels.Label) error {
			if l.Value == "" {
				return nil
			}
			if l.Name == labels.MetricName {
				nameSeen = true
				if l.Value == lastMetricName && lastWasHistogram == isHistogram &&
					(!isHistogram || lastHistogramWasGauge == (s.H.CounterResetHint == histogram.GaugeType)) {
					return nil
				}
				if fam != nil {
					if err := enc.Encode(fam); err != nil {
						return err
					}
				}
				fam = &dto.MetricFamily{Type: dto.MetricType_UNTYPED.Enum(), Name: proto.String(l.Value)}
				if isHistogram {
					if s.H.CounterResetHint == histogram.GaugeType {
						fam.Type = dto.MetricType_GAUGE_HISTOGRAM.Enum()
					} else {
						fam.Type = dto.MetricType_HISTOGRAM.Enum()
					}
				}
				lastMetricName = l.Value
				return nil
			}
			if l.Name == model.InstanceLabel {
				instanceSeen = true
			}
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
			return nil
		})
		if err != nil {
			return err
		}
		if !nameSeen {
			continue
		}
		if !instanceSeen {
			// as Prometheus: an empty instance keeps the scraper's own off
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(model.InstanceLabel), Value: proto.String("")})
		}
		m.TimestampMs = proto.Int64(s.T)
		if !isHistogram {
			lastHistogramWasGauge = false
			m.Untyped = &dto.Untyped{Value: proto.Float64(s.F)}
		} else {
			lastHistogramWasGauge = s.H.CounterResetHint == histogram.GaugeType
			if s.H.UsesCustomBuckets() {
				m.Histogram = classicHistogram(s.H)
			} else {
				m.Histogram = nativeHistogram(s.H)
			}
		}
		lastWasHistogram = isHistogram
		fam.Metric = append(fam.Metric, m)
	}
	if fam != nil {
		return enc.Encode(fam)
	}
	return nil
}

// nativeHistogram is a dto.Histogram of an exponential-schema histogram.
func nativeHistogram(h *histogram.FloatHistogram) *dto.Histogram {
	out := &dto.Histogram{
		SampleCountFloat: proto.Float64(h.Count),
		SampleSum:        proto.Float64(h.Sum),
		Schema:           proto.Int32(h.Schema),
		ZeroThreshold:    proto.Float64(h.ZeroThreshold),
		ZeroCountFloat:   proto.Float64(h.ZeroCount),
		NegativeCount:    h.NegativeBuckets,
		PositiveCount:    h.PositiveBuckets,
	}
	for _, sp := range h.PositiveSpans {
		out.PositiveSpan = append(out.PositiveSpan, &dto.BucketSpan{Offset: proto.Int32(sp.Offset), Length: proto.Uint32(sp.Length)})
	}
	for _, sp := range h.NegativeSpans {
		out.NegativeSpan = append(out.NegativeSpan, &dto.BucketSpan{Offset: proto.Int32(sp.Offset), Length: proto.Uint32(sp.Length)})
	}
	return out
}

// classicHistogram is a dto.Histogram of a custom-buckets (NHCB) histogram.
func classicHistogram(h *histogram.FloatHistogram) *dto.Histogram {
	out := &dto.Histogram{SampleCountFloat: proto.Float64(h.Count), SampleSum: proto.Float64(h.Sum)}
	out.Bucket = make([]*dto.Bucket, len(h.CustomValues))
	var (
		cum   float64
		iter  = h.PositiveBucketIterator()
		avail = iter.Next()
	)
	for i, le := range h.CustomValues {
		for avail && int(iter.At().Index) < i {
			avail = iter.Next()
		}
		if avail && int(iter.At().Index) == i {
			cum += iter.At().Count
		}
		out.Bucket[i] = &dto.Bucket{UpperBound: proto.Float64(le), CumulativeCountFloat: proto.Float64(cum)}
	}
	return out
}
