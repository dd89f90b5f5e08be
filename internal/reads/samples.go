package reads

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// sampleReader reads the samples of candidates in (lo, hi], refusing to
// read more than budget samples in all (query.max_samples).
type sampleReader struct {
	lo, hi int64
	latest bool
	budget int
	count  int64
	it     chunkenc.Iterator
}

// read returns the API series of c with its samples in the window (only the
// newest with latest), or nil when it has none there. Stale markers are
// skipped, as PromQL's range selectors skip them.
func (r *sampleReader) read(c candidate) (*pb.Series, error) {
	if c.series == nil {
		return nil, nil
	}
	r.it = c.series.Iterator(r.it)
	var samples []*pb.Sample
	var lastT int64
	var lastV float64
	var lastH *histogram.FloatHistogram
	found := false
	for vt := r.it.Seek(r.lo + 1); vt != chunkenc.ValNone; vt = r.it.Next() {
		t := r.it.AtT()
		if t <= r.lo {
			continue
		}
		if t > r.hi {
			break
		}
		var v float64
		var h *histogram.FloatHistogram
		switch vt {
		case chunkenc.ValFloat:
			if _, v = r.it.At(); value.IsStaleNaN(v) {
				continue
			}
		case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
			if _, h = r.it.AtFloatHistogram(nil); value.IsStaleNaN(h.Sum) {
				continue
			}
		default:
			continue
		}
		if r.count++; r.count > int64(r.budget) {
			return nil, &Error{Kind: KindTooLarge, Field: "query.max_samples",
				Message: fmt.Sprintf("the page reads more than %d samples", r.budget),
				Fix:     "ask for a smaller page_size or time_range, or latest_only, or raise query.max_samples"}
		}
		found = true
		if r.latest {
			lastT, lastV, lastH = t, v, h
			continue
		}
		samples = append(samples, newSample(t, v, h))
	}
	if err := r.it.Err(); err != nil {
		return nil, storeError("read the samples of "+c.series.Labels().String(), err)
	}
	if !found {
		return nil, nil
	}
	if r.latest {
		samples = []*pb.Sample{newSample(lastT, lastV, lastH)}
	}
	s := &pb.Series{Labels: make(map[string]string, c.series.Labels().Len()), Samples: samples}
	c.series.Labels().Range(func(l labels.Label) {
		if l.Name == labels.MetricName {
			s.Name = l.Value
			return
		}
		s.Labels[l.Name] = l.Value
	})
	return s, nil
}

func newSample(t int64, v float64, h *histogram.FloatHistogram) *pb.Sample {
	if h != nil {
		return histogramSample(t, h)
	}
	return floatSample(t, v)
}
