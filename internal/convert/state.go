package convert

import (
	"math"
	"sort"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/lightstep/go-expohisto/structure"
)

// explicitHist is a histogram with fixed bucket bounds.
type explicitHist struct {
	counts   []uint64 // len(bounds)+1
	count    uint64
	sum      float64
	min, max float64
	// noMinMax says min and max are unknown: the histogram resumed from
	// the store, which keeps no min and max.
	noMinMax bool
}

func newExplicitHist(nBounds int) *explicitHist {
	return &explicitHist{counts: make([]uint64, nBounds+1), min: math.Inf(1), max: math.Inf(-1)}
}

func (h *explicitHist) clone() *explicitHist {
	c := *h
	c.counts = append([]uint64(nil), h.counts...)
	return &c
}

func (h *explicitHist) observe(bounds []float64, v float64, n uint64) {
	// bucket i holds (bounds[i-1], bounds[i]]
	i := sort.SearchFloat64s(bounds, v)
	h.counts[i] += n
	h.count += n
	h.sum += v * float64(n)
	h.min = math.Min(h.min, v)
	h.max = math.Max(h.max, v)
}

// expoHist wraps the exponential histogram of go-expohisto.
type expoHist struct {
	h       structure.Histogram[float64]
	maxSize int32
	// base is the stored histogram this one resumed from (nil if none,
	// shared by clones: never written); h then holds the observations
	// since, and sum the sum of both (see resume.go).
	base *expoBase
	sum  float64
}

// observe adds n observations of v.
func (e *expoHist) observe(v float64, n uint64) {
	e.h.UpdateByIncr(v, n)
	if e.base != nil && v != 0 {
		e.sum += v * float64(n) // as h adds it to its own sum
	}
}

func newExpoHist(maxSize int32) *expoHist {
	e := &expoHist{maxSize: maxSize}
	e.h.Init(structure.NewConfig(structure.WithMaxSize(maxSize)))
	return e
}

// clone returns a copy of e. (The copy must be initialised with e's size:
// CopyInto into a zero histogram, of size 0, never ends.)
func (e *expoHist) clone() *expoHist {
	c := newExpoHist(e.maxSize)
	e.h.CopyInto(&c.h)
	c.base, c.sum = e.base, e.sum
	return c
}

// summaryState is a quantile sketch with exact count and sum.
type summaryState struct {
	sketch *ddsketch.DDSketch
	count  uint64
	sum    float64
}

func newSummaryState(relAcc float64) *summaryState {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(relAcc, 2048)
	if err != nil {
		// relAcc is validated by Config.Validate; this cannot happen
		panic("convert: bad summary relative accuracy: " + err.Error())
	}
	return &summaryState{sketch: s}
}

func (s *summaryState) clone() *summaryState {
	return &summaryState{sketch: s.sketch.Copy(), count: s.count, sum: s.sum}
}

func (s *summaryState) observe(v float64, n uint64) {
	_ = s.sketch.AddWithCount(v, float64(n))
	s.count += n
	s.sum += v * float64(n)
}

// series is the state the accumulator keeps for one stateful series.
type series struct {
	name     *nameInfo
	start    int64 // start time of the cumulative totals (unix ns)
	last     int64 // timestamp of the last emitted point (unix ns)
	lastSeen int64 // receive time of the last record (unix ns), for expiry
	weight   int64 // stored series it counts for (limits.max_series_per_metric)
	total    float64
	hist     *explicitHist
	expo     *expoHist
	summary  *summaryState
	// dead says Sweep dropped the series (the series cache may still
	// point to it).
	dead bool
}

type structureBuckets = structure.Buckets
