package reads

import (
	"encoding/base64"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/metricsmodule/metricsmodule/internal/nativehist"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// appendKey appends the page key of a series: its metric name, then for
// each other label, in label name order, 0xff, the name, 0xfe and the
// value. Series are paged in the byte order of their keys; neither byte
// occurs in UTF-8, so keys of different series differ.
func appendKey(b []byte, ls labels.Labels) []byte {
	b = append(b, ls.Get(labels.MetricName)...)
	ls.Range(func(l labels.Label) {
		if l.Name == labels.MetricName {
			return
		}
		b = append(b, 0xff)
		b = append(b, l.Name...)
		b = append(b, 0xfe)
		b = append(b, l.Value...)
	})
	return b
}

// seriesKey is appendKey of an API series.
func seriesKey(s *pb.Series) string {
	names := make([]string, 0, len(s.GetLabels()))
	for k := range s.GetLabels() {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(s.GetName())
	for _, k := range names {
		b.WriteByte(0xff)
		b.WriteString(k)
		b.WriteByte(0xfe)
		b.WriteString(s.GetLabels()[k])
	}
	return b.String()
}

// Page tokens are base64url of "v2:" + total_count + ":" + the key of the
// last series of the previous page. "v1:" + key (tokens of earlier
// versions, without the count) is still read; the count is then made again.
const (
	tokenV1 = "v1:"
	tokenV2 = "v2:"
)

func encodePageToken(total int64, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenV2 + strconv.FormatInt(total, 10) + ":" + after))
}

// decodePageToken returns the cursor of a token and the total count it
// carries (-1 when it carries none).
func decodePageToken(tok string) (after string, total int64, err error) {
	if tok == "" {
		return "", -1, nil
	}
	bad := invalid("page_token", "pass next_page_token of the previous response unchanged, or none for the first page", "is not a token of this API")
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", 0, bad
	}
	s := string(b)
	switch {
	case strings.HasPrefix(s, tokenV1):
		return strings.TrimPrefix(s, tokenV1), -1, nil
	case strings.HasPrefix(s, tokenV2):
		n, key, ok := strings.Cut(strings.TrimPrefix(s, tokenV2), ":")
		if !ok {
			return "", 0, bad
		}
		total, err := strconv.ParseInt(n, 10, 64)
		if err != nil || total < 0 {
			return "", 0, bad
		}
		return key, total, nil
	}
	return "", 0, bad
}

// newSeries returns an API series with the labels of ls and the stored
// type of its name, without samples.
func (e *Engine) newSeries(ls labels.Labels) *pb.Series {
	out := &pb.Series{Labels: make(map[string]string, ls.Len())}
	ls.Range(func(l labels.Label) {
		if l.Name == labels.MetricName {
			out.Name = l.Value
			return
		}
		out.Labels[l.Name] = l.Value
	})
	out.Type, _ = e.typeOf(out.Name)
	return out
}

// hasFractionalHistogram reports whether a histogram sample of v has a
// count that is not a whole number (rate(), increase() or avg() give them):
// a HistogramValue carries whole counts, so such an answer is refused, not
// truncated.
func hasFractionalHistogram(v parser.Value) bool {
	fractional := func(h *histogram.FloatHistogram) bool {
		if h == nil {
			return false
		}
		if !whole(h.Count) || !whole(h.ZeroCount) {
			return true
		}
		for _, c := range h.PositiveBuckets {
			if !whole(c) {
				return true
			}
		}
		for _, c := range h.NegativeBuckets {
			if !whole(c) {
				return true
			}
		}
		return false
	}
	switch v := v.(type) {
	case promql.Vector:
		for _, smp := range v {
			if fractional(smp.H) {
				return true
			}
		}
	case promql.Matrix:
		for _, ser := range v {
			for _, p := range ser.Histograms {
				if fractional(p.H) {
					return true
				}
			}
		}
	}
	return false
}

func whole(f float64) bool { return f == math.Trunc(f) }

// fractionalHistogramError refuses an answer with fractional histogram
// counts; field is the request field that asked for them.
func fractionalHistogramError(field, fix string) *Error {
	return &Error{
		Kind: KindInvalid, Field: field,
		Message: "the answer holds histogram samples with fractional counts (rate(), increase() and avg() of histograms give them), and a HistogramValue carries whole counts",
		Fix:     fix,
	}
}

// matrixSeries converts a range query's answer, samples in time order.
func (e *Engine) matrixSeries(m promql.Matrix) []*pb.Series {
	out := make([]*pb.Series, 0, len(m))
	for _, ser := range m {
		s := e.newSeries(ser.Metric)
		s.Samples = make([]*pb.Sample, 0, len(ser.Floats)+len(ser.Histograms))
		for _, p := range ser.Floats {
			s.Samples = append(s.Samples, floatSample(p.T, p.F))
		}
		for _, p := range ser.Histograms {
			s.Samples = append(s.Samples, histogramSample(p.T, p.H))
		}
		if len(ser.Histograms) > 0 && len(ser.Floats) > 0 {
			sort.SliceStable(s.Samples, func(i, j int) bool {
				return s.Samples[i].GetTimestamp().AsTime().Before(s.Samples[j].GetTimestamp().AsTime())
			})
		}
		out = append(out, s)
	}
	return out
}

// vectorSeries converts an instant query's answer.
func (e *Engine) vectorSeries(v promql.Vector) []*pb.Series {
	out := make([]*pb.Series, 0, len(v))
	for _, smp := range v {
		s := e.newSeries(smp.Metric)
		if smp.H != nil {
			s.Samples = []*pb.Sample{histogramSample(smp.T, smp.H)}
		} else {
			s.Samples = []*pb.Sample{floatSample(smp.T, smp.F)}
		}
		out = append(out, s)
	}
	return out
}

func floatSample(t int64, v float64) *pb.Sample {
	return &pb.Sample{Timestamp: timestamppb.New(time.UnixMilli(t)), Value: v}
}

func histogramSample(t int64, h *histogram.FloatHistogram) *pb.Sample {
	return &pb.Sample{Timestamp: timestamppb.New(time.UnixMilli(t)), Histogram: toHistogramValue(h)}
}

// maxExponentialBuckets bounds the buckets of each sign of an exponential
// histogram in an answer: a histogram whose buckets lie further apart is
// answered at a lower scale (see nativehist).
const maxExponentialBuckets = 4096

// wholeCounts converts bucket counts (whole numbers for stored samples).
func wholeCounts(cs []float64) []uint64 {
	if len(cs) == 0 {
		return nil
	}
	out := make([]uint64, len(cs))
	for i, c := range cs {
		out[i] = uint64(c)
	}
	return out
}

// toHistogramValue converts a native histogram: custom-bucket histograms to
// explicit buckets, exponential ones to exponential buckets.
func toHistogramValue(h *histogram.FloatHistogram) *pb.HistogramValue {
	out := &pb.HistogramValue{Count: uint64(h.Count), Sum: h.Sum}
	if h.UsesCustomBuckets() {
		out.ExplicitBounds = append(out.ExplicitBounds, h.CustomValues...)
		counts := make([]uint64, len(h.CustomValues)+1)
		it := h.PositiveBucketIterator()
		i := 0
		for it.Next() {
			b := it.At()
			for i < len(h.CustomValues) && h.CustomValues[i] < b.Upper {
				i++
			}
			counts[i] = uint64(b.Count)
		}
		out.BucketCounts = counts
		return out
	}
	scale, pos, neg := nativehist.ToExponential(h.Schema, h.PositiveBucketIterator(), h.NegativeBucketIterator(), maxExponentialBuckets)
	e := &pb.ExponentialBuckets{
		Scale: scale, ZeroCount: uint64(h.ZeroCount), ZeroThreshold: h.ZeroThreshold,
		PositiveOffset: pos.Offset, PositiveBucketCounts: wholeCounts(pos.Counts),
		NegativeOffset: neg.Offset, NegativeBucketCounts: wholeCounts(neg.Counts),
	}
	out.Exponential = e
	return out
}
