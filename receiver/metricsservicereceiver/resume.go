package metricsservicereceiver

import (
	"context"
	"iter"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// storeResumer gives the accumulator the stored state of a counter or
// histogram series it starts (after a restart, or after its idle state was
// dropped), so their totals survive both. It asks the store for the series the
// record's point becomes, with the store's own name translation.
type storeResumer struct {
	st     *store.Store
	logger *zap.Logger
	warned *atomic.Bool // a read error was logged (once: not per series)
	// node is the identity the receiver stamps on running totals in a
	// fleet (shared store): the stored series carry it, so the lookup does.
	node nodeIdentity
}

var _ convert.Resumer = storeResumer{}

// ResumeCounter implements convert.Resumer.
func (r storeResumer) ResumeCounter(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (total float64, last, first int64, ok bool) {
	md, pm := lookupMetric(m, res)
	sum := pm.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	putPairs(dp.Attributes(), labels)
	r.node.put(dp.Attributes())
	smp, ok, err := r.st.LastSample(context.Background(), md)
	if err != nil {
		r.readFailed(m, err)
		return 0, 0, 0, false
	}
	if !ok {
		return 0, 0, 0, false
	}
	return smp.Value, smp.Last * msNanos, smp.First * msNanos, true
}

// ResumeHistogram implements convert.Resumer. It reads the classic series
// of the histogram (each bucket, _count, _sum) and resumes only when all of
// them are stored at the same time and agree (the store writes them in one
// commit); a histogram stored as a native histogram (store.histograms:
// native) is not resumed.
func (r storeResumer) ResumeHistogram(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string, bounds []float64) (counts []uint64, sum float64, last, first int64, ok bool) {
	md, pm := lookupMetric(m, res)
	h := pm.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(make([]uint64, len(bounds)+1))
	dp.SetSum(0)
	putPairs(dp.Attributes(), labels)
	r.node.put(dp.Attributes())
	got, err := r.st.LastSamples(context.Background(), md)
	if err != nil {
		r.readFailed(m, err)
		return nil, 0, 0, 0, false
	}
	if len(got) != len(bounds)+3 {
		return nil, 0, 0, 0, false // not stored, or not all of it
	}
	cum := make([]float64, len(bounds)+1)
	seen := make([]bool, len(bounds)+1)
	var count float64
	last, first = got[0].Last, got[0].First
	for _, s := range got {
		if s.Last != last {
			return nil, 0, 0, 0, false // not one commit
		}
		first = min(first, s.First)
		name := s.Labels.Get(pmodelName)
		switch le := s.Labels.Get(pmodelBucket); {
		case le != "":
			i := bucketIndex(le, bounds)
			if i < 0 || seen[i] {
				return nil, 0, 0, 0, false
			}
			cum[i], seen[i] = s.Value, true
		case strings.HasSuffix(name, "_count"):
			count = s.Value
		case strings.HasSuffix(name, "_sum"):
			sum = s.Value
		}
	}
	counts = make([]uint64, len(cum))
	prev := 0.0
	for i, c := range cum {
		if !seen[i] || c < prev || c != math.Trunc(c) {
			return nil, 0, 0, 0, false
		}
		counts[i] = uint64(c - prev)
		prev = c
	}
	if prev != count {
		return nil, 0, 0, 0, false
	}
	return counts, sum, last * msNanos, first * msNanos, true
}

const (
	msNanos      = int64(time.Millisecond)
	pmodelName   = "__name__"
	pmodelBucket = "le"
)

// bucketIndex is the index of the bucket whose le label is le, or -1.
func bucketIndex(le string, bounds []float64) int {
	v, err := strconv.ParseFloat(le, 64)
	if err != nil {
		return -1
	}
	if math.IsInf(v, 1) {
		return len(bounds)
	}
	for i, b := range bounds {
		if b == v {
			return i
		}
	}
	return -1
}

// lookupMetric returns metrics of one resource (res) and one metric named
// and with the unit records like m become.
func lookupMetric(m *pb.MetricData, res map[string]string) (pmetric.Metrics, pmetric.Metric) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rattrs := rm.Resource().Attributes()
	for k, v := range res {
		rattrs.PutStr(k, v)
	}
	pm := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	pm.SetName(m.Name)
	pm.SetUnit(convert.PdataUnit(m))
	return md, pm
}

func putPairs(attrs pcommon.Map, labels iter.Seq2[string, string]) {
	for k, v := range labels {
		attrs.PutStr(k, v)
	}
}

// readFailed logs a store read error once: the series starts from zero, as
// without a store.
func (r storeResumer) readFailed(m *pb.MetricData, err error) {
	if r.warned.CompareAndSwap(false, true) {
		r.logger.Warn("Could not read the stored state of a series; it starts from zero (logged once)",
			zap.String("metric", m.Name), zap.Error(err))
	}
}
