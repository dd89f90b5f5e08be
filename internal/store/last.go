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
}

// LastSample returns the newest float sample of the series that the first
// data point of md's first metric becomes in the store (translated with the
// store's own OTLP translation, like Stage: Prometheus name and suffixes,
// sanitized labels, job and instance from the resource). ok is false when
// the store has no sample of that series. It reads the series index and
// the series' chunk list, and decodes only its newest chunk.
func (s *Store) LastSample(ctx context.Context, md pmetric.Metrics) (smp StoredSample, ok bool, err error) {
	if s.closed.Load() {
		return StoredSample{}, false, ErrClosed
	}
	capt := &labelCapture{}
	conv := s.convs.Get().(*otlptranslator.PrometheusConverter)
	conv.Reset(capt)
	_, terr := conv.FromMetrics(ctx, md, s.settings)
	conv.Reset(nil)
	s.convs.Put(conv)
	if !capt.found {
		if terr != nil {
			return StoredSample{}, false, fmt.Errorf("translate series: %w", terr)
		}
		return StoredSample{}, false, nil
	}
	matchers := make([]*labels.Matcher, 0, capt.ls.Len())
	capt.ls.Range(func(l labels.Label) {
		matchers = append(matchers, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	})
	q, err := s.db.ChunkQuerier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return StoredSample{}, false, fmt.Errorf("open store querier: %w", err)
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, matchers...)
	var it chunks.Iterator
	for set.Next() {
		ser := set.At()
		if labels.Compare(ser.Labels(), capt.ls) != 0 {
			continue // (a series with more labels)
		}
		it = ser.Iterator(it)
		var newest chunks.Meta
		have := false
		for it.Next() {
			m := it.At()
			if !have || m.MinTime < smp.First {
				smp.First = m.MinTime
			}
			if !have || m.MaxTime >= newest.MaxTime {
				newest = m
			}
			have = true
		}
		if err := it.Err(); err != nil {
			return StoredSample{}, false, fmt.Errorf("read series %s: %w", capt.ls.String(), err)
		}
		if !have || newest.Chunk == nil {
			continue
		}
		ci := newest.Chunk.Iterator(nil)
		found := false
		for vt := ci.Next(); vt != chunkenc.ValNone; vt = ci.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := ci.At()
			if !found || t >= smp.Last {
				smp.Last, smp.Value, found = t, v, true
			}
		}
		if err := ci.Err(); err != nil {
			return StoredSample{}, false, fmt.Errorf("read series %s: %w", capt.ls.String(), err)
		}
		if found {
			return smp, true, nil
		}
	}
	if err := set.Err(); err != nil {
		return StoredSample{}, false, fmt.Errorf("select series %s: %w", capt.ls.String(), err)
	}
	return StoredSample{}, false, nil
}

// labelCapture is an appender that keeps the labels of the first sample
// appended that is not target_info, and stores nothing.
type labelCapture struct {
	ls    labels.Labels
	found bool
}

var _ storage.AppenderV2 = (*labelCapture)(nil)

func (c *labelCapture) Append(_ storage.SeriesRef, ls labels.Labels, _, _ int64, _ float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if !c.found && ls.Get(labels.MetricName) != targetInfoName {
		c.ls, c.found = ls.Copy(), true
	}
	return 0, nil
}

func (*labelCapture) Commit() error   { return nil }
func (*labelCapture) Rollback() error { return nil }
