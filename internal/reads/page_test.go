package reads

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// walkPages returns every page of req, read by the store path or by the
// PromQL path (the remote backend's, and the one of earlier versions).
func walkPages(t *testing.T, e *Engine, req *pb.GetMetricsRequest, viaPromQL bool) (pages [][]*pb.Series, total []int64) {
	t.Helper()
	req = proto.Clone(req).(*pb.GetMetricsRequest)
	for range 1000 {
		var resp *pb.GetMetricsResponse
		var err error
		if viaPromQL {
			p, perr := e.getParams(req)
			require.NoError(t, perr)
			resp, err = e.promqlPage(context.Background(), p)
		} else {
			resp, err = e.GetMetrics(context.Background(), req)
		}
		require.NoError(t, err)
		pages = append(pages, resp.GetSeries())
		total = append(total, resp.GetTotalCount())
		if resp.GetNextPageToken() == "" {
			return pages, total
		}
		req.PageToken = resp.GetNextPageToken()
	}
	t.Fatal("more than 1000 pages")
	return nil, nil
}

func flatten(pages [][]*pb.Series) []*pb.Series {
	var out []*pb.Series
	for _, p := range pages {
		out = append(out, p...)
	}
	return out
}

func names(ss []*pb.Series) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = seriesKey(s)
	}
	return out
}

// mixedStore holds names that are prefixes of each other, a series without
// labels besides its name, counters, gauges, a histogram family with unit
// seconds (a timer), native histograms, floats and histograms in one series
// and stale markers, over the last 10 minutes at 20 s.
func mixedStore(t *testing.T, now time.Time) *testStore {
	t.Helper()
	s := openStore(t, nil)
	s.md["abc"] = metadata.Metadata{Type: "gauge"}
	s.md["abc_x"] = metadata.Metadata{Type: "counter"}
	s.md["req_seconds"] = metadata.Metadata{Type: "histogram", Unit: "seconds"}
	s.md["native"] = metadata.Metadata{Type: "histogram"}
	var series []labels.Labels
	series = append(series, labels.FromStrings(labels.MetricName, "abc"))
	for i := range 4 {
		series = append(series,
			labels.FromStrings(labels.MetricName, "abc", "k", fmt.Sprint(i)),
			labels.FromStrings(labels.MetricName, "abc", "k", fmt.Sprint(i), "kk", "v"),
			labels.FromStrings(labels.MetricName, "abc_x", "k", fmt.Sprint(i)),
			labels.FromStrings(labels.MetricName, "abc_x", "A", "upper", "k", fmt.Sprint(i)),
			labels.FromStrings(labels.MetricName, "req_seconds_bucket", "le", fmt.Sprint(i)),
		)
	}
	series = append(series, labels.FromStrings(labels.MetricName, "ab", "k", "v"), labels.FromStrings(labels.MetricName, "abcd"))
	start := now.Add(-10 * time.Minute)
	for k := 0; k < 30; k++ {
		ts := start.Add(time.Duration(k) * 20 * time.Second)
		s.add(t, ts, float64(k), series...)
		app := s.db.Appender(context.Background())
		h := tsdbutil.GenerateTestHistogram(int64(k))
		_, err := app.AppendHistogram(0, labels.FromStrings(labels.MetricName, "native", "k", "h"), ts.UnixMilli(), h, nil)
		require.NoError(t, err)
		// a series turning from floats to histograms and back
		mixed := labels.FromStrings(labels.MetricName, "native", "k", "mixed")
		if k%10 < 5 {
			_, err = app.Append(0, mixed, ts.UnixMilli(), float64(k))
		} else {
			_, err = app.AppendHistogram(0, mixed, ts.UnixMilli(), nil, tsdbutil.GenerateTestFloatHistogram(int64(k)))
		}
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	// the "abcd" series ends with a stale marker
	s.add(t, start.Add(30*20*time.Second), math.Float64frombits(value.StaleNaN), labels.FromStrings(labels.MetricName, "abcd"))
	return s
}

// TestPagesMatchThePromQLPath walks the store path and the PromQL path page
// by page: the same series, in the same order, with the same samples.
func TestPagesMatchThePromQLPath(t *testing.T) {
	now := time.Now()
	s := mixedStore(t, now)
	s.backend.indexCount = false // count the series with data in the range, as PromQL does
	for _, headIndex := range []bool{true, false} {
		s.backend.headIndex = headIndex
		t.Run(fmt.Sprintf("head index %v", headIndex), func(t *testing.T) { matchPromQL(t, s, now) })
	}
}

func matchPromQL(t *testing.T, s *testStore, now time.Time) {
	tests := []struct {
		name string
		req  *pb.GetMetricsRequest
	}{
		{"everything", &pb.GetMetricsRequest{PageSize: 3}},
		{"latest only", &pb.GetMetricsRequest{PageSize: 4, LatestOnly: true}},
		{"one page", &pb.GetMetricsRequest{PageSize: 1000}},
		{"glob and labels", &pb.GetMetricsRequest{PageSize: 2, Filter: &pb.MetricFilter{Names: []string{"abc*"},
			LabelMatchers: []*pb.LabelMatcher{{Name: "k", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "[12]"}}}}},
		{"exclusions", &pb.GetMetricsRequest{PageSize: 5, Filter: &pb.MetricFilter{NameRegex: "ab.*", ExcludeNames: []string{"abc_*"}}}},
		{"types", &pb.GetMetricsRequest{PageSize: 2, Filter: &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER, pb.MetricType_METRIC_TYPE_TIMER}}}},
		{"two minutes an hour ago", &pb.GetMetricsRequest{PageSize: 7, TimeRange: &pb.TimeRange{Start: tsOf(now.Add(-8 * time.Minute)), End: tsOf(now.Add(-6 * time.Minute))}}},
		{"a window without samples", &pb.GetMetricsRequest{TimeRange: &pb.TimeRange{Start: tsOf(now.Add(-2 * time.Hour)), End: tsOf(now.Add(-time.Hour))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotTotal := walkPages(t, s.eng, tt.req, false)
			want, wantTotal := walkPages(t, s.eng, tt.req, true)
			require.Equal(t, names(flatten(want)), names(flatten(got)))
			for i := range want {
				require.Len(t, got[i], len(want[i]), "page %d", i)
			}
			assert.Equal(t, wantTotal, gotTotal)
			for i, w := range flatten(want) {
				g := flatten(got)[i]
				assert.True(t, proto.Equal(w, g), "series %d:\nwant %v\n got %v", i, w, g)
			}
			if tt.name == "everything" {
				kinds := map[string]int{}
				for _, ser := range flatten(got) {
					for _, smp := range ser.Samples {
						if smp.Histogram != nil {
							kinds[ser.Name+" histogram"]++
						} else {
							kinds[ser.Name+" float"]++
						}
					}
				}
				assert.Positive(t, kinds["native histogram"], "native histograms are read")
				assert.Positive(t, kinds["native float"], "a series of floats and histograms keeps both")
				assert.Positive(t, kinds["abcd float"])
				// keys: "abc" < "abc_x\xff..." < "abcd" < "abc\xff..." < "ab\xff..."
				var runs []string
				for _, ser := range flatten(got) {
					if len(runs) == 0 || runs[len(runs)-1] != ser.Name {
						runs = append(runs, ser.Name)
					}
				}
				assert.Equal(t, []string{"abc", "abc_x", "abcd", "abc", "ab", "native", "req_seconds_bucket"}, runs)
				assert.Empty(t, flatten(got)[0].Labels, "abc without labels first")
			}
		})
	}
}

// TestWalkReturnsEachSeriesOnce: every page is full but the last and the
// walk returns every series once, in key order.
func TestWalkReturnsEachSeriesOnce(t *testing.T) {
	now := time.Now()
	s := openStore(t, nil)
	var all []labels.Labels
	for n := range 7 {
		all = append(all, gauges(fmt.Sprintf("m%d", n), 13)...)
	}
	s.add(t, now.Add(-time.Minute), 1, all...)
	for _, size := range []int32{1, 5, 13, 14, 90, 91, 100} {
		pages, totals := walkPages(t, s.eng, &pb.GetMetricsRequest{PageSize: size}, false)
		got := names(flatten(pages))
		assert.Len(t, got, 91, "page size %d", size)
		assert.True(t, sort.StringsAreSorted(got), "page size %d", size)
		seen := map[string]bool{}
		for _, k := range got {
			assert.False(t, seen[k], "page size %d: %q twice", size, k)
			seen[k] = true
		}
		for i, p := range pages[:len(pages)-1] {
			assert.Len(t, p, int(size), "page size %d, page %d", size, i)
		}
		for _, n := range totals {
			assert.Equal(t, int64(91), n)
		}
	}
}

// TestPagesAreStableWhenSeriesAreAdded: a page token is a position in key
// order, not an offset: series added before it do not shift the next page,
// series added after it appear.
func TestPagesAreStableWhenSeriesAreAdded(t *testing.T) {
	now := time.Now()
	s := openStore(t, nil)
	s.add(t, now.Add(-time.Minute), 1, gauges("b", 6)...)
	resp, err := s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{PageSize: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"000000", "000001", "000002"}, ids(resp.Series))
	assert.Equal(t, int64(6), resp.TotalCount)

	// series before the cursor (another name, lower ids) and after it
	s.add(t, now.Add(-time.Minute), 1, gauges("a", 3)...)
	s.add(t, now.Add(-time.Minute), 1, labels.FromStrings(labels.MetricName, "b", "id", "0000025"), labels.FromStrings(labels.MetricName, "c", "id", "x"))
	next, err := s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{PageSize: 3, PageToken: resp.NextPageToken})
	require.NoError(t, err)
	assert.Equal(t, []string{"0000025", "000003", "000004"}, ids(next.Series))
	assert.Equal(t, int64(6), next.TotalCount, "counted when the walk began")
	last, err := s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{PageSize: 3, PageToken: next.NextPageToken})
	require.NoError(t, err)
	assert.Equal(t, []string{"000005", "x"}, ids(last.Series))
	assert.Empty(t, last.NextPageToken)
}

func ids(ss []*pb.Series) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Labels["id"]
	}
	return out
}

// TestTypeFilterAcrossPages: the type filter (and the timer rule) applies
// while walking, so pages are full and total_count counts only the kept
// series.
func TestTypeFilterAcrossPages(t *testing.T) {
	now := time.Now()
	for _, indexCount := range []bool{true, false} {
		t.Run(fmt.Sprintf("index count %v", indexCount), func(t *testing.T) {
			s := openStore(t, nil)
			s.backend.indexCount = indexCount
			s.md["c1_total"] = metadata.Metadata{Type: "counter"}
			s.md["g1"] = metadata.Metadata{Type: "gauge"}
			s.md["lat_seconds"] = metadata.Metadata{Type: "histogram", Unit: "seconds"}
			s.md["size_bytes"] = metadata.Metadata{Type: "histogram", Unit: "bytes"}
			for _, n := range []string{"c1_total", "g1", "lat_seconds_bucket", "lat_seconds_count", "size_bytes_bucket", "z_untyped"} {
				s.add(t, now.Add(-time.Minute), 1, gauges(n, 5)...)
			}
			for _, tc := range []struct {
				types []pb.MetricType
				want  []string
			}{
				{[]pb.MetricType{pb.MetricType_METRIC_TYPE_TIMER}, []string{"lat_seconds_bucket", "lat_seconds_count"}},
				{[]pb.MetricType{pb.MetricType_METRIC_TYPE_HISTOGRAM}, []string{"lat_seconds_bucket", "lat_seconds_count", "size_bytes_bucket"}},
				{[]pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER, pb.MetricType_METRIC_TYPE_GAUGE}, []string{"c1_total", "g1"}},
			} {
				pages, totals := walkPages(t, s.eng, &pb.GetMetricsRequest{PageSize: 3, Filter: &pb.MetricFilter{Types: tc.types}}, false)
				var got []string
				for _, ser := range flatten(pages) {
					if len(got) == 0 || got[len(got)-1] != ser.Name {
						got = append(got, ser.Name)
					}
				}
				assert.Equal(t, tc.want, got, "%v", tc.types)
				assert.Len(t, flatten(pages), 5*len(tc.want))
				assert.Equal(t, int64(5*len(tc.want)), totals[0])
				for _, p := range pages[:len(pages)-1] {
					assert.Len(t, p, 3)
				}
			}
		})
	}
}

// TestLatestOnly returns the newest sample in the range with its own
// timestamp, skipping a stale marker.
func TestLatestOnly(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	s := openStore(t, nil)
	ls := labels.FromStrings(labels.MetricName, "g", "id", "1")
	gone := labels.FromStrings(labels.MetricName, "g", "id", "2")
	s.add(t, now.Add(-3*time.Minute), 1, ls, gone)
	s.add(t, now.Add(-2*time.Minute), 2, ls, gone)
	s.add(t, now.Add(-time.Minute), math.Float64frombits(value.StaleNaN), gone)
	s.add(t, now.Add(time.Minute), 9, ls) // after the range
	resp, err := s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{LatestOnly: true, TimeRange: &pb.TimeRange{End: tsOf(now)}})
	require.NoError(t, err)
	require.Len(t, resp.Series, 2)
	for _, ser := range resp.Series {
		require.Len(t, ser.Samples, 1)
		assert.InDelta(t, 2.0, ser.Samples[0].Value, 0)
		assert.Equal(t, now.Add(-2*time.Minute), ser.Samples[0].Timestamp.AsTime().Local())
	}
	assert.Equal(t, int64(2), resp.Stats.SeriesReturned)
}

// TestSeriesWithoutSamplesInTheRangeAreSkipped: series whose chunks span the
// range without a sample in it, and series of the head that have no chunk
// in the range at all, do not leave holes in a page, however many.
func TestSeriesWithoutSamplesInTheRangeAreSkipped(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	for _, headIndex := range []bool{true, false} {
		t.Run(fmt.Sprintf("head index %v", headIndex), func(t *testing.T) {
			s := openStore(t, nil)
			s.backend.indexCount = false
			s.backend.headIndex = headIndex
			gap := gauges("a_gap", 40) // samples before and after the range only
			old := gauges("a_old", 40) // samples before the range only
			full := gauges("b_full", 5)
			s.add(t, now.Add(-4*time.Minute), 1, slices.Concat(gap, old, full)...)
			s.add(t, now.Add(-2*time.Minute), 2, full...)
			s.add(t, now.Add(-30*time.Second), 3, slices.Concat(gap, full)...)
			req := &pb.GetMetricsRequest{PageSize: 2, TimeRange: &pb.TimeRange{Start: tsOf(now.Add(-3 * time.Minute)), End: tsOf(now.Add(-time.Minute))}}
			pages, _ := walkPages(t, s.eng, req, false)
			got := flatten(pages)
			require.Len(t, got, 5)
			assert.Len(t, pages[0], 2)
			for _, ser := range got {
				assert.Equal(t, "b_full", ser.Name)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	s := openStore(t, func(c *query.Config) { c.MaxSamples = 10 })
	now := time.Now()
	s.add(t, now.Add(-2*time.Minute), 1, gauges("g", 6)...)
	s.add(t, now.Add(-time.Minute), 1, gauges("g", 6)...)
	for _, tc := range []struct {
		name  string
		req   *pb.GetMetricsRequest
		kind  Kind
		field string
	}{
		{"not base64", &pb.GetMetricsRequest{PageToken: "garbage!"}, KindInvalid, "page_token"},
		{"not ours", &pb.GetMetricsRequest{PageToken: "djM6eA"}, KindInvalid, "page_token"},
		{"bad count", &pb.GetMetricsRequest{PageToken: encodePageToken(-1, "x")}, KindInvalid, "page_token"},
		{"page size", &pb.GetMetricsRequest{PageSize: MaxPageSize + 1}, KindInvalid, "page_size"},
		{"filter", &pb.GetMetricsRequest{Filter: &pb.MetricFilter{NameRegex: "("}}, KindInvalid, "filter.name_regex"},
		{"range", &pb.GetMetricsRequest{TimeRange: &pb.TimeRange{Start: tsOf(now), End: tsOf(now.Add(-time.Second))}}, KindInvalid, "time_range"},
		{"group by", &pb.GetMetricsRequest{Aggregation: &pb.Aggregation{Function: pb.AggregationFunction_AGGREGATION_FUNCTION_SUM, GroupBy: []string{"a-b"}}}, KindInvalid, "aggregation.group_by[0]"},
		{"samples", &pb.GetMetricsRequest{PageSize: 6}, KindTooLarge, "query.max_samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.eng.GetMetrics(context.Background(), tc.req)
			var re *Error
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tc.kind, re.Kind)
			assert.Equal(t, tc.field, re.Field)
			assert.Contains(t, err.Error(), tc.field+": ")
		})
	}
	// five series of two samples stay under max_samples
	resp, err := s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{PageSize: 5})
	require.NoError(t, err)
	assert.Len(t, resp.Series, 5)
	assert.Equal(t, int64(10), resp.Stats.SamplesRead)
}

// TestOldTokensStillRead: a "v1:" token (earlier versions, no count) goes
// on from its position and counts again.
func TestOldTokensStillRead(t *testing.T) {
	s := openStore(t, nil)
	s.add(t, time.Now().Add(-time.Minute), 1, gauges("g", 4)...)
	old := base64Token("v1:" + "g\xffid\xfe000001")
	resp, err := s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{PageToken: old})
	require.NoError(t, err)
	assert.Equal(t, []string{"000002", "000003"}, ids(resp.Series))
	assert.Equal(t, int64(4), resp.TotalCount)
}

// TestRawPagesHoldAQuerySlot: a page waits for, and is refused without, one
// of query.max_concurrent's slots.
func TestRawPagesHoldAQuerySlot(t *testing.T) {
	s := openStore(t, func(c *query.Config) { c.MaxConcurrent, c.MaxQueued = 1, 0 })
	s.add(t, time.Now().Add(-time.Minute), 1, gauges("g", 2)...)
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := s.eng.q.Run(context.Background(), func(context.Context) error {
			close(held)
			<-release
			return nil
		})
		done <- err
	}()
	<-held
	_, err := s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{})
	var qe *query.Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, query.KindOverloaded, qe.Kind)
	assert.Contains(t, qe.Error(), "query.max_concurrent")
	close(release)
	require.NoError(t, <-done)
	_, err = s.eng.GetMetrics(context.Background(), &pb.GetMetricsRequest{})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.eng.GetMetrics(ctx, &pb.GetMetricsRequest{})
	require.ErrorAs(t, err, &qe)
	assert.True(t, errors.Is(err, context.Canceled) || qe.Kind == query.KindCanceled, "%v", err)
}

// TestIndexWalkFetchesAnyLabelValues: the series found in the index are
// fetched by their label values, whatever characters they hold, and a
// series without the fetching label is fetched too.
func TestIndexWalkFetchesAnyLabelValues(t *testing.T) {
	now := time.Now()
	s := openStore(t, nil)
	s.backend.indexCount = false
	var series []labels.Labels
	for _, v := range []string{"a.b", "a|b", "(x)", `\d`, "ü*", "a", "ab", "a+"} {
		series = append(series, labels.FromStrings(labels.MetricName, "m", "id", v), labels.FromStrings(labels.MetricName, "m", "id", v, "z", "1"))
	}
	series = append(series, labels.FromStrings(labels.MetricName, "m", "other", "x"), labels.FromStrings(labels.MetricName, "m"))
	s.add(t, now.Add(-time.Minute), 1, series...)
	for _, size := range []int32{1, 3, 100} {
		got, _ := walkPages(t, s.eng, &pb.GetMetricsRequest{PageSize: size}, false)
		want, _ := walkPages(t, s.eng, &pb.GetMetricsRequest{PageSize: size}, true)
		assert.Equal(t, names(flatten(want)), names(flatten(got)), "page size %d", size)
		assert.Len(t, flatten(got), len(series))
	}
}
