package reads

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// fakeSeries is one series of a fake Prometheus-compatible backend.
type fakeSeries struct {
	labels map[string]string
	values [][2]float64 // unix seconds, value
}

// fakeBackend answers /api/v1/series with every series and /api/v1/query
// with the series of the name the query selects (__name__="x").
type fakeBackend struct {
	series []fakeSeries
	// rangeResult answers /api/v1/query_range (default: no series)
	rangeResult []any

	mu      sync.Mutex
	queries []string
	listed  int
}

var nameRE = regexp.MustCompile(`__name__="([^"]+)"`)

func (f *fakeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	defer f.mu.Unlock()
	type matrixSeries struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	switch r.URL.Path {
	case "/api/v1/series":
		f.listed++
		data := []map[string]string{}
		for _, s := range f.series {
			data = append(data, s.labels)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
	case "/api/v1/query":
		q := r.Form.Get("query")
		f.queries = append(f.queries, q)
		m := nameRE.FindStringSubmatch(q)
		if strings.HasPrefix(q, "last_over_time(") { // the last value at time, without the name
			at, _ := strconv.ParseFloat(r.Form.Get("time"), 64)
			type vectorSample struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			}
			result := []vectorSample{}
			for _, s := range f.series {
				if m == nil || s.labels["__name__"] != m[1] {
					continue
				}
				var last *[2]float64
				for i := range s.values {
					if s.values[i][0] <= at {
						last = &s.values[i]
					}
				}
				if last == nil {
					continue
				}
				ls := map[string]string{}
				for k, v := range s.labels {
					if k != "__name__" {
						ls[k] = v
					}
				}
				result = append(result, vectorSample{Metric: ls, Value: [2]any{at, strconv.FormatFloat(last[1], 'f', -1, 64)}})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
			return
		}
		result := []matrixSeries{}
		for _, s := range f.series {
			if m == nil || s.labels["__name__"] != m[1] {
				continue
			}
			ms := matrixSeries{Metric: s.labels}
			for _, v := range s.values {
				ms.Values = append(ms.Values, [2]any{v[0], strconv.FormatFloat(v[1], 'f', -1, 64)})
			}
			result = append(result, ms)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": result}})
	case "/api/v1/query_range":
		f.queries = append(f.queries, r.Form.Get("query"))
		result := f.rangeResult
		if result == nil {
			result = []any{}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": result}})
	default:
		http.NotFound(w, r)
	}
}

func newRemoteEngine(t *testing.T, f *fakeBackend, opts ...Option) *Engine {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := query.DefaultConfig()
	cfg.Remote.Endpoint = srv.URL
	q, err := query.New(cfg, nil, zap.NewNop())
	require.NoError(t, err)
	return New(q, nil, opts...)
}

// TestRemoteBackendPagesOverTheSeriesIndex: with a remote backend a page
// lists the selection's series from the backend's index and selects the
// samples of its own series only, in key order.
func TestRemoteBackendPagesOverTheSeriesIndex(t *testing.T) {
	f := &fakeBackend{series: []fakeSeries{
		{labels: map[string]string{"__name__": "m", "id": "2"}, values: [][2]float64{{1700000000, 1}, {1700000010, 2}}},
		{labels: map[string]string{"__name__": "m", "id": "1"}, values: [][2]float64{{1700000000, 3}, {1700000010, 4}}},
		{labels: map[string]string{"__name__": "l", "id": "9"}, values: [][2]float64{{1700000010, 5}}},
	}}
	e := newRemoteEngine(t, f)

	tr := &pb.TimeRange{Start: timestamppb.New(time.Unix(1699999990, 0)), End: timestamppb.New(time.Unix(1700000290, 0))}
	pages, totals := walkPages(t, e, &pb.GetMetricsRequest{PageSize: 2, LatestOnly: true, TimeRange: tr, Filter: &pb.MetricFilter{Names: []string{"m", "l"}}}, false)
	require.Len(t, pages, 2)
	assert.Equal(t, []string{"l\xffid\xfe9", "m\xffid\xfe1", "m\xffid\xfe2"}, names(flatten(pages)))
	assert.Equal(t, []int64{3, 3}, totals)
	assert.InDelta(t, 4.0, pages[0][1].Samples[0].Value, 0, "latest_only: the newest sample")
	assert.Len(t, pages[0][1].Samples, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, 2, f.listed, "one index listing per page")
	require.Len(t, f.queries, 3, "per page, one query per metric name of the page")
	assert.Equal(t, `{__name__="l", id="9"}[300000ms]`, f.queries[0])
	assert.Equal(t, `{__name__="m", id="1"}[300000ms]`, f.queries[1])
	assert.Equal(t, `{__name__="m", id="2"}[300000ms]`, f.queries[2], "the second page selects only its series")
}

// TestRemotePagesMergeTheNodesOfAFleet: with a merge label (the shared
// store's node identity) the nodes' series of one counter become one series
// whose samples are the sum of each node's latest running total, reset
// corrected; a gauge's samples interleave in time order.
func TestRemotePagesMergeTheNodesOfAFleet(t *testing.T) {
	f := &fakeBackend{series: []fakeSeries{
		{labels: map[string]string{"__name__": "orders_total", "node": "a"}, values: [][2]float64{{1700000000, 1}, {1700000020, 3}}},
		{labels: map[string]string{"__name__": "orders_total", "node": "b"}, values: [][2]float64{{1700000010, 10}, {1700000030, 12}, {1700000040, 2}}},
		{labels: map[string]string{"__name__": "depth"}, values: [][2]float64{{1700000000, 7}, {1700000040, 9}}},
		{labels: map[string]string{"__name__": "depth", "node": "a"}, values: [][2]float64{{1700000020, 8}}},
	}}
	e := newRemoteEngine(t, f, WithMergeLabel("node"))
	tr := &pb.TimeRange{Start: timestamppb.New(time.Unix(1700000000, 0)), End: timestamppb.New(time.Unix(1700000050, 0))}
	resp, err := e.GetMetrics(t.Context(), &pb.GetMetricsRequest{TimeRange: tr, Filter: &pb.MetricFilter{Names: []string{"orders_total", "depth"}}})
	require.NoError(t, err)
	require.Len(t, resp.Series, 2)
	assert.Equal(t, int64(2), resp.TotalCount)
	values := func(s *pb.Series) []float64 {
		var out []float64
		for _, p := range s.Samples {
			out = append(out, p.Value)
		}
		return out
	}
	assert.Equal(t, "depth", resp.Series[0].Name)
	assert.Equal(t, []float64{7, 8, 9}, values(resp.Series[0]), "a gauge: the nodes' samples in time order")
	assert.Equal(t, "orders_total", resp.Series[1].Name)
	assert.Empty(t, resp.Series[1].Labels, "the node label is aggregated away")
	assert.Equal(t, []float64{1, 11, 13, 15, 17}, values(resp.Series[1]), "running totals add up; node b's reset to 2 counts on top of its 12")
}

// TestRemoteMergeStartsFromEachNodesLastTotalBeforeTheRange: a node whose
// last sample lies before the range still counts with that total.
func TestRemoteMergeStartsFromEachNodesLastTotalBeforeTheRange(t *testing.T) {
	f := &fakeBackend{series: []fakeSeries{
		{labels: map[string]string{"__name__": "orders_total", "node": "a"}, values: [][2]float64{{1700000000, 1}, {1700000020, 3}}},
		{labels: map[string]string{"__name__": "orders_total", "node": "b"}, values: [][2]float64{{1700000010, 10}, {1700000030, 12}, {1700000040, 2}}},
		{labels: map[string]string{"__name__": "orders_total", "node": "c"}, values: [][2]float64{{1699999000, 100}}},
	}}
	e := newRemoteEngine(t, f, WithMergeLabel("node"), WithMergeLookback(time.Hour))
	tr := &pb.TimeRange{Start: timestamppb.New(time.Unix(1700000015, 0)), End: timestamppb.New(time.Unix(1700000050, 0))}
	resp, err := e.GetMetrics(t.Context(), &pb.GetMetricsRequest{TimeRange: tr, Filter: &pb.MetricFilter{Names: []string{"orders_total"}}})
	require.NoError(t, err)
	require.Len(t, resp.Series, 1)
	var got []float64
	for _, p := range resp.Series[0].Samples {
		got = append(got, p.Value)
	}
	assert.Equal(t, []float64{113, 115, 117}, got, "a=1 and b=10 before the range, c=100 long before; then a=3, b=12, b reset to 2")
}

// TestAggregationsOfAFleetAddTheNodesFirst: with a merge label an
// aggregation other than RATE sees each series once, its nodes added up.
func TestAggregationsOfAFleetAddTheNodesFirst(t *testing.T) {
	f := &fakeBackend{}
	e := newRemoteEngine(t, f, WithMergeLabel("node"))
	for _, fn := range []pb.AggregationFunction{pb.AggregationFunction_AGGREGATION_FUNCTION_COUNT, pb.AggregationFunction_AGGREGATION_FUNCTION_RATE} {
		_, err := e.GetMetrics(t.Context(), &pb.GetMetricsRequest{
			Filter:      &pb.MetricFilter{Names: []string{"orders_total"}},
			Aggregation: &pb.Aggregation{Function: fn, GroupBy: []string{"region"}},
		})
		require.NoError(t, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.queries, 2)
	assert.Equal(t, `count by (region) (sum without (node) ({__name__=~"orders_total"}))`, f.queries[0])
	assert.Equal(t, `sum by (region) (rate({__name__=~"orders_total"}[300000ms]))`, f.queries[1])
}

// TestAnAggregationWithoutGroupByIsReturned: its one series has no labels
// (its page key is empty) and is on the first page.
func TestAnAggregationWithoutGroupByIsReturned(t *testing.T) {
	f := &fakeBackend{rangeResult: []any{map[string]any{"metric": map[string]string{}, "values": [][2]any{{1700000040, "3"}}}}}
	e := newRemoteEngine(t, f)
	resp, err := e.GetMetrics(t.Context(), &pb.GetMetricsRequest{
		Filter:      &pb.MetricFilter{Names: []string{"orders_total"}},
		Aggregation: &pb.Aggregation{Function: pb.AggregationFunction_AGGREGATION_FUNCTION_SUM},
	})
	require.NoError(t, err)
	assert.Equal(t, int64(1), resp.TotalCount)
	require.Len(t, resp.Series, 1)
	assert.InDelta(t, 3.0, resp.Series[0].Samples[0].Value, 0)
}
