package metricsservicereceiver

import (
	"context"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func sortedPairs(m map[string]string) func(func(string, string) bool) {
	return func(yield func(string, string) bool) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// TestStoreResumerFindsTheCounterTheAccumulatorStored: the accumulator's
// output, stored, is found again by the resumer under the store's names
// (unit suffix, _total, job from the resource, sanitized label keys).
func TestStoreResumerFindsTheCounterTheAccumulatorStored(t *testing.T) {
	cfg := store.DefaultConfig()
	cfg.Path = t.TempDir()
	st, err := store.Open(cfg, zap.NewNop())
	require.NoError(t, err)
	defer st.Close()

	acc := convert.NewAccumulator(convert.DefaultConfig(), convert.Scope{Name: "test"})
	res := &pb.Resource{Attributes: map[string]string{"service.name": "shop", "host.name": "h1"}}
	labels := map[string]string{"http.route": "/a"}
	rec := func(v float64) *pb.MetricData {
		return &pb.MetricData{Name: "shop.orders", Unit: "s", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Labels: maps.Clone(labels)}
	}
	for _, v := range []float64{3, 4} {
		b := acc.Prepare([]*pb.MetricData{rec(v)}, res, false)
		require.Empty(t, b.Issues)
		_, err := acc.Apply(b, true, func(md pmetric.Metrics) error {
			txn, err := st.Stage(context.Background(), md)
			if err != nil {
				return err
			}
			return txn.Commit()
		})
		require.NoError(t, err)
	}

	r := storeResumer{st: st, logger: zap.NewNop(), warned: new(atomic.Bool)}
	total, last, first, ok := r.ResumeCounter(rec(1), sortedPairs(labels), res.Attributes)
	require.True(t, ok)
	assert.Equal(t, 7.0, total)
	assert.LessOrEqual(t, first, last)
	assert.WithinDuration(t, time.Now(), time.Unix(0, last), time.Minute)

	_, _, _, ok = r.ResumeCounter(rec(1), sortedPairs(map[string]string{"http.route": "/b"}), res.Attributes)
	assert.False(t, ok, "another series")
	_, _, _, ok = r.ResumeCounter(rec(1), sortedPairs(labels), map[string]string{"service.name": "other"})
	assert.False(t, ok, "another job")

	require.NoError(t, st.Close())
	_, _, _, ok = r.ResumeCounter(rec(1), sortedPairs(labels), res.Attributes)
	assert.False(t, ok, "a closed store: the series starts from zero")
	assert.True(t, r.warned.Load(), "and the error is logged once")
}

// TestStoreResumerFindsTheHistogramTheAccumulatorStored: the classic series
// of a stored histogram (buckets, _count, _sum) give back its buckets.
func TestStoreResumerFindsTheHistogramTheAccumulatorStored(t *testing.T) {
	for _, native := range []bool{false, true} {
		t.Run(map[bool]string{false: "classic", true: "native with custom buckets"}[native], func(t *testing.T) {
			cfg := store.DefaultConfig()
			cfg.Path = t.TempDir()
			if native {
				cfg.Histograms = store.HistogramsNative
			}
			st, err := store.Open(cfg, zap.NewNop())
			require.NoError(t, err)
			defer st.Close()

			ccfg := convert.DefaultConfig()
			ccfg.Histogram.Buckets = []float64{0.1, 1}
			acc := convert.NewAccumulator(ccfg, convert.Scope{Name: "test"})
			res := &pb.Resource{Attributes: map[string]string{"service.name": "shop"}}
			labels := map[string]string{"route": "/a"}
			rec := func(obs ...float64) *pb.MetricData {
				return &pb.MetricData{Name: "shop.latency", Type: pb.MetricType_METRIC_TYPE_TIMER, Observations: obs, Labels: maps.Clone(labels)}
			}
			b := acc.Prepare([]*pb.MetricData{rec(0.05, 0.5, 0.7, 3)}, res, false)
			require.Empty(t, b.Issues)
			_, err = acc.Apply(b, true, func(md pmetric.Metrics) error {
				txn, err := st.Stage(context.Background(), md)
				if err != nil {
					return err
				}
				return txn.Commit()
			})
			require.NoError(t, err)

			r := storeResumer{st: st, logger: zap.NewNop(), warned: new(atomic.Bool), refused: newResumeRefusals()}
			counts, sum, last, first, ok := r.ResumeHistogram(rec(1), sortedPairs(labels), res.Attributes, ccfg.Histogram.Buckets)
			require.True(t, ok)
			assert.Equal(t, []uint64{1, 2, 1}, counts)
			assert.InDelta(t, 4.25, sum, 1e-9)
			assert.LessOrEqual(t, first, last)
			_, _, _, _, ok = r.ResumeHistogram(rec(1), sortedPairs(labels), res.Attributes, []float64{0.1, 2})
			assert.False(t, ok, "other bounds")
		})
	}
}

// TestStoreResumerFindsAFleetNodesOwnTotals: in a fleet (shared store) the
// running totals are stored with the node's identity label; after a
// restart the node resumes its own totals (found with the label), not from
// zero, and never another node's.
func TestStoreResumerFindsAFleetNodesOwnTotals(t *testing.T) {
	cfg := store.DefaultConfig()
	cfg.Path = t.TempDir()
	st, err := store.Open(cfg, zap.NewNop())
	require.NoError(t, err)
	defer st.Close()

	ccfg := convert.DefaultConfig()
	ccfg.Histogram.Buckets = []float64{1}
	acc := convert.NewAccumulator(ccfg, convert.Scope{Name: "test"})
	node := nodeIdentity{label: "collector_instance", value: "node-a"}
	res := &pb.Resource{Attributes: map[string]string{"service.name": "shop"}}
	labels := map[string]string{"route": "/a"}
	counter := &pb.MetricData{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: maps.Clone(labels)}
	timer := &pb.MetricData{Name: "latency", Type: pb.MetricType_METRIC_TYPE_TIMER, Observations: []float64{0.5, 2}, Labels: maps.Clone(labels)}
	recordOnNode(t, st, acc, node, res, counter, timer)

	for _, tt := range []struct {
		name string
		node nodeIdentity
		ok   bool
	}{
		{"this node", node, true},
		{"another node", nodeIdentity{label: "collector_instance", value: "node-b"}, false},
		{"without the identity", nodeIdentity{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := storeResumer{st: st, logger: zap.NewNop(), warned: new(atomic.Bool), node: tt.node}
			total, _, _, ok := r.ResumeCounter(counter, sortedPairs(labels), res.Attributes)
			require.Equal(t, tt.ok, ok)
			counts, sum, _, _, hok := r.ResumeHistogram(timer, sortedPairs(labels), res.Attributes, ccfg.Histogram.Buckets)
			require.Equal(t, tt.ok, hok)
			if tt.ok {
				assert.Equal(t, 5.0, total)
				assert.Equal(t, []uint64{1, 1}, counts)
				assert.InDelta(t, 2.5, sum, 1e-9)
			}
			assert.False(t, r.warned.Load())
		})
	}
}

// recordOnNode records ms (in resource res) through acc and stores the
// result stamped with node's identity, as a fleet node's receiver does.
func recordOnNode(t *testing.T, st *store.Store, acc *convert.Accumulator, node nodeIdentity, res *pb.Resource, ms ...*pb.MetricData) {
	t.Helper()
	b := acc.Prepare(ms, res, false)
	require.Empty(t, b.Issues)
	_, err := acc.Apply(b, true, func(md pmetric.Metrics) error {
		node.stamp(md) // as the receiver does before the pipeline
		txn, err := st.Stage(context.Background(), md)
		if err != nil {
			return err
		}
		return txn.Commit()
	})
	require.NoError(t, err)
}

// TestCustomBucketsOfRefusesWhatIsNotTheHistogram: a stored native
// histogram resumes an explicit histogram only when it is exactly one of
// these bounds.
func TestCustomBucketsOfRefusesWhatIsNotTheHistogram(t *testing.T) {
	bounds := []float64{0.1, 1}
	good := func() *histogram.Histogram {
		return &histogram.Histogram{
			Schema: histogram.CustomBucketsSchema, CustomValues: []float64{0.1, 1}, Count: 4, Sum: 4.25,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []int64{1, 1, -1}, // 1, 2, 1
		}
	}
	counts, why := customBucketsOf(good(), bounds)
	require.Empty(t, why)
	require.Equal(t, []uint64{1, 2, 1}, counts)
	for _, tc := range []struct {
		name string
		edit func(h *histogram.Histogram) *histogram.Histogram
		want string
	}{
		{"nothing", func(*histogram.Histogram) *histogram.Histogram { return nil }, "no custom buckets"},
		{"exponential", func(h *histogram.Histogram) *histogram.Histogram { h.Schema, h.CustomValues = 0, nil; return h }, "no custom buckets"},
		{"other bounds", func(h *histogram.Histogram) *histogram.Histogram { h.CustomValues = []float64{0.1, 2}; return h }, "bounds"},
		{"sum not finite", func(h *histogram.Histogram) *histogram.Histogram { h.Sum = math.Inf(1); return h }, "sum"},
		{"counts do not add up", func(h *histogram.Histogram) *histogram.Histogram { h.Count = 5; return h }, "add up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, why := customBucketsOf(tc.edit(good()), bounds)
			require.Contains(t, why, tc.want)
		})
	}
}
