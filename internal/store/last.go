package store

import (
	"context"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// StoredSample is what the store holds of one series: its newest float
// sample and the time of its oldest kept sample.
type StoredSample struct {
	// Value is the newest sample's value.
	Value float64
	// Last is the newest sample's time (unix ms).
	Last int64
	// First is the oldest kept sample's time (unix ms): within the
	// retention, in the head or a block.
	First int64
	// Histogram is the newest sample when it is an integer native
	// histogram (LastHistogram only; Value is then 0).
	Histogram *histogram.Histogram
}

// LastSample returns the newest float sample of the series that the first
// data point of md's first metric becomes in the store (translated with the
// store's own OTLP translation, like Stage: Prometheus name and suffixes,
// sanitized labels, job and instance from the resource). ok is false when
// the store has no sample of that series. It reads the series index and
// the series' chunk list, and decodes only its newest chunk.
func (s *Store) LastSample(ctx context.Context, md pmetric.Metrics) (smp StoredSample, ok bool, err error) {
	got, err := s.lastSamples(ctx, md, true, chunkenc.ValFloat)
	if err != nil || len(got) == 0 {
		return StoredSample{}, false, err
	}
	return got[0].StoredSample, true, nil
}

// StoredSeries is a stored series and what LastSamples read of it.
type StoredSeries struct {
	// Labels are the series' labels, __name__ included.
	Labels labels.Labels
	StoredSample
}

// LastSamples is LastSample for every series the first data point of md's
// first metric becomes (a classic histogram: its buckets, _count and _sum;
// not target_info), in the translator's order; series without a stored
// float sample are left out.
func (s *Store) LastSamples(ctx context.Context, md pmetric.Metrics) ([]StoredSeries, error) {
	return s.lastSamples(ctx, md, false, chunkenc.ValFloat)
}

// LastHistogram is LastSample for a series stored as an integer native
// histogram (an exponential histogram): its newest histogram sample, in
// smp.Histogram. ok is false when the series has none (nothing stored, or
// only float histograms).
func (s *Store) LastHistogram(ctx context.Context, md pmetric.Metrics) (smp StoredSample, ok bool, err error) {
	got, err := s.lastSamples(ctx, md, true, chunkenc.ValHistogram)
	if err != nil || len(got) == 0 {
		return StoredSample{}, false, err
	}
	return got[0].StoredSample, true, nil
}

func (s *Store) lastSamples(ctx context.Context, md pmetric.Metrics, firstOnly bool, want chunkenc.ValueType) ([]StoredSeries, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	capt := &labelCapture{firstOnly: firstOnly}
	conv := s.convs.Get().(*otlptranslator.PrometheusConverter)
	conv.Reset(capt)
	_, terr := conv.FromMetrics(ctx, md, s.settings)
	conv.Reset(nil)
	s.convs.Put(conv)
	if len(capt.ls) == 0 {
		if terr != nil {
			return nil, fmt.Errorf("translate series: %w", terr)
		}
		return nil, nil
	}
	q, err := s.db.ChunkQuerier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("open store querier: %w", err)
	}
	defer q.Close()
	var out []StoredSeries
	var it chunks.Iterator
	for _, ls := range capt.ls {
		smp, ok, err := lastOf(ctx, q, ls, &it, want)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, StoredSeries{Labels: ls, StoredSample: smp})
		}
	}
	return out, nil
}

// lastOf reads the newest sample of type want (float or integer
// histogram) of the series ls (exactly) and the time of its oldest chunk.
func lastOf(ctx context.Context, q storage.ChunkQuerier, ls labels.Labels, it *chunks.Iterator, want chunkenc.ValueType) (smp StoredSample, ok bool, err error) {
	matchers := make([]*labels.Matcher, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		matchers = append(matchers, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	})
	set := q.Select(ctx, false, nil, matchers...)
	for set.Next() {
		ser := set.At()
		if labels.Compare(ser.Labels(), ls) != 0 {
			continue // (a series with more labels)
		}
		*it = ser.Iterator(*it)
		var newest chunks.Meta
		have := false
		for (*it).Next() {
			m := (*it).At()
			if !have || m.MinTime < smp.First {
				smp.First = m.MinTime
			}
			if !have || m.MaxTime >= newest.MaxTime {
				newest = m
			}
			have = true
		}
		if err := (*it).Err(); err != nil {
			return StoredSample{}, false, fmt.Errorf("read series %s: %w", ls.String(), err)
		}
		if !have || newest.Chunk == nil {
			continue
		}
		ci := newest.Chunk.Iterator(nil)
		found := false
		for vt := ci.Next(); vt != chunkenc.ValNone; vt = ci.Next() {
			if vt != want {
				continue
			}
			if want == chunkenc.ValHistogram {
				if t := ci.AtT(); !found || t >= smp.Last {
					smp.Last, smp.Histogram = ci.AtHistogram(nil)
					found = true
				}
				continue
			}
			t, v := ci.At()
			if !found || t >= smp.Last {
				smp.Last, smp.Value, found = t, v, true
			}
		}
		if err := ci.Err(); err != nil {
			return StoredSample{}, false, fmt.Errorf("read series %s: %w", ls.String(), err)
		}
		if found {
			return smp, true, nil
		}
	}
	if err := set.Err(); err != nil {
		return StoredSample{}, false, fmt.Errorf("select series %s: %w", ls.String(), err)
	}
	return StoredSample{}, false, nil
}

// labelCapture is an appender that keeps the labels of the samples
// appended that are not target_info (with firstOnly, of the first), and
// stores nothing.
type labelCapture struct {
	ls        []labels.Labels
	firstOnly bool
}

var _ storage.AppenderV2 = (*labelCapture)(nil)

func (c *labelCapture) Append(_ storage.SeriesRef, ls labels.Labels, _, _ int64, _ float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if (!c.firstOnly || len(c.ls) == 0) && ls.Get(labels.MetricName) != targetInfoName {
		c.ls = append(c.ls, ls.Copy())
	}
	return 0, nil
}

func (*labelCapture) Commit() error   { return nil }
func (*labelCapture) Rollback() error { return nil }
