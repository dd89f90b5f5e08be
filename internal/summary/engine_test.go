package summary

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// fakeStore is a Store with fixed statistics.
type fakeStore struct {
	series   map[string]int64
	matching map[string]int64
	matchErr error
	labels   map[string]int64
	meta     map[string]metadata.Metadata
	head     store.HeadStats
	blocks   []store.BlockInfo
	rejected int64
	stats    *store.IngestStats
	matchers []*labels.Matcher
}

func (f *fakeStore) SeriesPerMetric() map[string]int64 {
	out := map[string]int64{}
	for k, v := range f.series {
		out[k] = v
	}
	return out
}

func (f *fakeStore) SeriesPerMetricMatching(_ context.Context, ms ...*labels.Matcher) (map[string]int64, error) {
	f.matchers = ms
	out := map[string]int64{}
	for k, v := range f.matching {
		out[k] = v
	}
	return out, f.matchErr
}
func (f *fakeStore) LabelCardinality() map[string]int64     { return f.labels }
func (f *fakeStore) Metadata() map[string]metadata.Metadata { return f.meta }
func (f *fakeStore) MetadataOf(n string) (metadata.Metadata, bool) {
	md, ok := f.meta[n]
	return md, ok
}
func (f *fakeStore) HeadStats(int) store.HeadStats { return f.head }
func (f *fakeStore) Blocks() []store.BlockInfo     { return f.blocks }
func (f *fakeStore) DiskBytes() int64              { return 4096 }
func (f *fakeStore) Rejected() int64               { return f.rejected }
func (f *fakeStore) Stats() *store.IngestStats     { return f.stats }

var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// newFake has http_requests_total (counter, 5 series), queue_depth (gauge,
// 2), db_latency_seconds (histogram in seconds: _bucket 8, _count 1) and
// jobs_done_total (counter, 2), 30 minutes of ingest behind them.
func newFake() *fakeStore {
	clock := testNow.Add(-30 * time.Minute)
	stats := store.NewIngestStats(func() time.Time { return clock })
	for range 30 {
		clock = clock.Add(time.Minute)
		stats.Add(map[string]int{"http_requests_total": 50, "queue_depth": 20, "db_latency_seconds": 90, "jobs_done_total": 2}, 162)
	}
	stats.AddResets(map[string]int{"jobs_done_total": 4, "http_requests_total": 1})
	return &fakeStore{
		series: map[string]int64{"http_requests_total": 5, "queue_depth": 2, "db_latency_seconds_bucket": 8, "db_latency_seconds_count": 1, "jobs_done_total": 2},
		labels: map[string]int64{"path": 5, "queue": 2, "le": 8, "__name__": 5},
		meta: map[string]metadata.Metadata{
			"http_requests_total": {Type: model.MetricTypeCounter},
			"queue_depth":         {Type: model.MetricTypeGauge},
			"db_latency_seconds":  {Type: model.MetricTypeHistogram, Unit: "seconds"},
			"jobs_done_total":     {Type: model.MetricTypeCounter},
		},
		head:   store.HeadStats{NumSeries: 18, MinTime: testNow.Add(-time.Hour).UnixMilli(), MaxTime: testNow.UnixMilli()},
		blocks: []store.BlockInfo{{MinTime: testNow.Add(-3 * time.Hour).UnixMilli(), MaxTime: testNow.Add(-time.Hour).UnixMilli(), NumSamples: 1000}},
		stats:  stats,
	}
}

func names(rs []*pb.MetricRanking) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name  string
		req   *pb.GetMetricsSummaryRequest
		fake  func(*fakeStore)
		check func(t *testing.T, f *fakeStore, r *pb.GetMetricsSummaryResponse)
	}{
		{name: "totals and rankings of everything", req: &pb.GetMetricsSummaryRequest{TopN: 2},
			check: func(t *testing.T, _ *fakeStore, r *pb.GetMetricsSummaryResponse) {
				assert.Equal(t, int64(18), r.Totals.Series)
				assert.Equal(t, int64(5), r.Totals.MetricNames)
				assert.Equal(t, int64(1000+30*162), r.Totals.Samples)
				assert.Equal(t, map[string]int64{"counter": 2, "gauge": 1, "histogram": 1}, r.Totals.MetricsByType)
				assert.Equal(t, []string{"db_latency_seconds_bucket", "http_requests_total"}, names(r.TopBySeries))
				assert.Equal(t, pb.MetricType_METRIC_TYPE_HISTOGRAM, r.TopBySeries[0].Type, "by the family's metadata")
				assert.Equal(t, []string{"db_latency_seconds", "http_requests_total"}, names(r.TopByRate))
				assert.Len(t, r.LabelCardinality, 4, "5 x top_n labels at most")
				assert.Equal(t, "le", r.LabelCardinality[0].Label)
				assert.Equal(t, int64(18), r.Storage.HeadSeries)
				assert.Equal(t, int64(1), r.Storage.Blocks)
				assert.Equal(t, testNow.Add(-3*time.Hour).Unix(), r.Storage.MinTime.AsTime().Unix(), "oldest block")
				assert.Equal(t, "*", r.Trends[0].Name)
				assert.Empty(t, r.Recommendations, "only on request")
			}},
		{name: "names glob", req: &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{Names: []string{"*_total"}}},
			check: func(t *testing.T, _ *fakeStore, r *pb.GetMetricsSummaryResponse) {
				assert.Equal(t, int64(7), r.Totals.Series)
				assert.Equal(t, []string{"http_requests_total", "jobs_done_total"}, names(r.TopBySeries))
				assert.Equal(t, map[string]int64{"counter": 2}, r.Totals.MetricsByType)
			}},
		{name: "exclude_names", req: &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{ExcludeNames: []string{"db_*", "queue_depth"}}},
			check: func(t *testing.T, _ *fakeStore, r *pb.GetMetricsSummaryResponse) {
				assert.Equal(t, []string{"http_requests_total", "jobs_done_total"}, names(r.TopBySeries))
			}},
		{name: "types: a histogram in seconds is a timer", req: &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_TIMER}}},
			check: func(t *testing.T, _ *fakeStore, r *pb.GetMetricsSummaryResponse) {
				assert.Equal(t, []string{"db_latency_seconds_bucket", "db_latency_seconds_count"}, names(r.TopBySeries))
				assert.Equal(t, []string{"db_latency_seconds"}, names(r.TopByRate))
			}},
		{name: "label matchers count the matching series", req: &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{
			LabelMatchers: []*pb.LabelMatcher{{Name: "path", Value: "/a"}}}},
			fake: func(f *fakeStore) { f.matching = map[string]int64{"http_requests_total": 1} },
			check: func(t *testing.T, f *fakeStore, r *pb.GetMetricsSummaryResponse) {
				assert.Equal(t, int64(1), r.Totals.Series)
				assert.Equal(t, []string{"http_requests_total"}, names(r.TopBySeries))
				assert.Equal(t, []string{"http_requests_total"}, names(r.TopByRate))
				require.NotEmpty(t, f.matchers)
				assert.Equal(t, `path="/a"`, f.matchers[len(f.matchers)-1].String())
			}},
		{name: "recommendations from kept statistics", req: &pb.GetMetricsSummaryRequest{IncludeRecommendations: true, TrendWindow: durationpb.New(10 * time.Minute)},
			fake: func(f *fakeStore) { f.rejected = 3 },
			check: func(t *testing.T, _ *fakeStore, r *pb.GetMetricsSummaryResponse) {
				rules := map[string]string{}
				for _, rec := range r.Recommendations {
					rules[rec.Rule] = rec.Subject
				}
				assert.Equal(t, "jobs_done_total", rules["counter_resets"], "4 resets; http_requests_total's one is below the rule")
				assert.Equal(t, "store", rules["samples_rejected"])
				assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_DEGRADED, r.Health[1].Status)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			if tt.fake != nil {
				tt.fake(f)
			}
			e := New(f, Config{Now: func() time.Time { return testNow }})
			r, err := e.Summarize(context.Background(), tt.req)
			require.NoError(t, err)
			tt.check(t, f, r)
		})
	}
}

func TestSummarizeRefusals(t *testing.T) {
	tests := []struct {
		name  string
		req   *pb.GetMetricsSummaryRequest
		fake  func(*fakeStore)
		kind  Kind
		field string
	}{
		{name: "window too short", req: &pb.GetMetricsSummaryRequest{TrendWindow: durationpb.New(time.Second)}, kind: KindInvalid, field: "trend_window"},
		{name: "window too long", req: &pb.GetMetricsSummaryRequest{TrendWindow: durationpb.New(2 * time.Hour)}, kind: KindInvalid, field: "trend_window"},
		{name: "store read fails", req: &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a", Value: "b"}}}},
			fake: func(f *fakeStore) { f.matchErr = errors.New("disk gone") }, kind: KindUnavailable, field: "filter.label_matchers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			if tt.fake != nil {
				tt.fake(f)
			}
			_, err := New(f, Config{}).Summarize(context.Background(), tt.req)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.kind, e.Kind)
			assert.Equal(t, tt.field, e.Field)
			assert.Contains(t, err.Error(), tt.field+": ")
		})
	}
	_, err := New(newFake(), Config{}).Summarize(context.Background(), &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{Names: []string{"[]"}}})
	var fe *metricfilter.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "filter.names[0]", fe.Field)
}

func TestLabelGrowthComparesWithTheSampleAWindowAgo(t *testing.T) {
	f := newFake()
	now := testNow
	e := New(f, Config{Now: func() time.Time { return now }})
	f.labels = map[string]int64{"path": 2}
	e.SampleCardinality(now.Add(-20 * time.Minute))
	f.labels = map[string]int64{"path": 400}
	e.SampleCardinality(now.Add(-5 * time.Minute)) // newer than the window: not used
	f.labels = map[string]int64{"path": 500}
	r, err := e.Summarize(context.Background(), &pb.GetMetricsSummaryRequest{TrendWindow: durationpb.New(15 * time.Minute), IncludeRecommendations: true})
	require.NoError(t, err)
	require.Len(t, r.LabelCardinality, 1)
	assert.InDelta(t, 250, r.LabelCardinality[0].Growth, 1e-9)
	var explosion bool
	for _, rec := range r.Recommendations {
		explosion = explosion || rec.Rule == "label_cardinality_explosion"
	}
	assert.True(t, explosion)
}

func TestPipelineHealth(t *testing.T) {
	e := New(newFake(), Config{PipelineHealth: func(time.Time) (bool, string) { return true, "2 batches refused" }})
	r, err := e.Summarize(context.Background(), &pb.GetMetricsSummaryRequest{})
	require.NoError(t, err)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_DEGRADED, r.Health[0].Status)
	assert.Equal(t, "2 batches refused", r.Health[0].Message)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, r.Health[1].Status)
}

// BenchmarkSummarize answers from the statistics a store of 200,000 series
// keeps: 1,000 metric names of 200 series, labels with up to 100,000
// values, 1,000 families ingesting for an hour.
func BenchmarkSummarize(b *testing.B) {
	f := newFake()
	f.series, f.meta = map[string]int64{}, map[string]metadata.Metadata{}
	fams := map[string]int{}
	for i := range 1000 {
		n := fmt.Sprintf("bench_%d_total", i)
		f.series[n] = 200
		f.meta[n] = metadata.Metadata{Type: model.MetricTypeCounter}
		fams[n] = 10
	}
	f.labels = map[string]int64{"__name__": 1000, "instance": 200, "shard": 8, "pod": 100_000, "service_name": 1}
	clock := testNow.Add(-time.Hour)
	f.stats = store.NewIngestStats(func() time.Time { return clock })
	for range 60 {
		clock = clock.Add(time.Minute)
		f.stats.Add(fams, 10_000)
	}
	for _, req := range []struct {
		name string
		r    *pb.GetMetricsSummaryRequest
	}{
		{"plain", &pb.GetMetricsSummaryRequest{}},
		{"recommendations", &pb.GetMetricsSummaryRequest{IncludeRecommendations: true}},
		{"names", &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{Names: []string{"bench_1*"}}}},
	} {
		b.Run(req.name, func(b *testing.B) {
			e := New(f, Config{Now: func() time.Time { return testNow }})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Summarize(context.Background(), req.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
