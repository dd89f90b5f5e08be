package store

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// The benchmarks below stage and commit batches shaped like those of
// "metricsbench reads": one resource (job) per batch with 400 cumulative
// counters, 20 classic histograms of 11 buckets and 40 gauges, that is 460
// datapoints and 700 Prometheus samples. They report ns/sample (wall time
// of Stage+Commit; the generation of the batches is outside the timer).
//
//	go test ./internal/store -run '^$' -bench StageCommit -benchmem

const benchSamplesPerBatch = 400 + 20*13 + 40

var (
	benchPaths    = benchNames("/api/v1/items/%d", 20)
	benchMethods  = []string{"GET", "POST", "PUT", "DELETE"}
	benchStatuses = []string{"200", "201", "404", "500", "503"}
	benchQueues   = benchNames("q%d", 40)
	benchBounds   = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
)

func benchNames(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// benchBatch returns the samples of job svc-<res> at step (15s apart).
func benchBatch(res, step int, start time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	job := "svc-" + strconv.Itoa(res)
	rm.Resource().Attributes().PutStr("service.name", job)
	rm.Resource().Attributes().PutStr("service.instance.id", job+"-0")
	sm := rm.ScopeMetrics().AppendEmpty()
	ts := pcommon.NewTimestampFromTime(start.Add(time.Duration(step) * 15 * time.Second))
	st := pcommon.NewTimestampFromTime(start.Add(-15 * time.Second))

	m := sm.Metrics().AppendEmpty()
	m.SetName("http_requests")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	i := 0
	for _, p := range benchPaths {
		for _, me := range benchMethods {
			for _, s := range benchStatuses {
				dp := sum.DataPoints().AppendEmpty()
				dp.SetStartTimestamp(st)
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(float64((step + 1) * (1 + i%10)))
				dp.Attributes().PutStr("path", p)
				dp.Attributes().PutStr("method", me)
				dp.Attributes().PutStr("status", s)
				i++
			}
		}
	}

	m = sm.Metrics().AppendEmpty()
	m.SetName("request_duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for pi, p := range benchPaths {
		dp := h.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(st)
		dp.SetTimestamp(ts)
		dp.ExplicitBounds().FromRaw(benchBounds)
		counts := make([]uint64, len(benchBounds)+1)
		var total uint64
		for b := range counts {
			counts[b] = uint64((step + 1) * (1 + (b+pi)%4))
			total += counts[b]
		}
		dp.BucketCounts().FromRaw(counts)
		dp.SetCount(total)
		dp.SetSum(float64(total) * 0.1)
		dp.Attributes().PutStr("path", p)
	}

	m = sm.Metrics().AppendEmpty()
	m.SetName("queue_depth")
	g := m.SetEmptyGauge()
	for q, name := range benchQueues {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(float64((step*7 + q) % 100))
		dp.Attributes().PutStr("queue", name)
	}
	return md
}

func openBenchStore(b *testing.B) *Store {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Path = b.TempDir()
	cfg.MaxFuture = 365 * 24 * time.Hour // batches step 15s ahead per op
	s, err := Open(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

func stageCommit(b *testing.B, s *Store, md pmetric.Metrics) {
	txn, err := s.Stage(context.Background(), md)
	if err != nil {
		b.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		b.Fatal(err)
	}
}

func reportPerSample(b *testing.B, samples int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(samples)
	b.ReportMetric(ns, "ns/sample")
	b.ReportMetric(1e9/ns, "samples/s")
}

// BenchmarkStageCommit appends to existing series (the steady state):
// every operation is one batch of 700 samples at the next timestamp of one
// of the jobs.
func BenchmarkStageCommit(b *testing.B) {
	for _, jobs := range []int{1, 10} {
		b.Run(fmt.Sprintf("series=%d", jobs*benchSamplesPerBatch), func(b *testing.B) {
			s := openBenchStore(b)
			start := time.Now().Add(-time.Hour)
			for r := range jobs { // create the series
				stageCommit(b, s, benchBatch(r, 0, start))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				md := benchBatch(i%jobs, 1+i/jobs, start)
				b.StartTimer()
				stageCommit(b, s, md)
			}
			reportPerSample(b, b.N*benchSamplesPerBatch)
		})
	}
}

// BenchmarkStageCommitNewSeries creates the series of a new job in every
// operation (700 new series and samples).
func BenchmarkStageCommitNewSeries(b *testing.B) {
	s := openBenchStore(b)
	start := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		md := benchBatch(i, 0, start)
		b.StartTimer()
		stageCommit(b, s, md)
	}
	reportPerSample(b, b.N*benchSamplesPerBatch)
}

// nopAppender takes samples and does nothing: the translator alone.
type nopAppender struct{}

func (nopAppender) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AppendV2Options) (storage.SeriesRef, error) {
	return 1, nil
}
func (nopAppender) Commit() error   { return nil }
func (nopAppender) Rollback() error { return nil }

// BenchmarkTranslateOnly is Prometheus' OTLP translator into an appender
// that does nothing, with the store's settings: the share of Stage that is
// translation, not TSDB.
func BenchmarkTranslateOnly(b *testing.B) {
	conv := otlptranslator.NewPrometheusConverter(nopAppender{})
	settings := otlptranslator.Settings{AddMetricSuffixes: true}
	start := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		md := benchBatch(0, i, start)
		b.StartTimer()
		conv.Reset(nopAppender{})
		if _, err := conv.FromMetrics(context.Background(), md, settings); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSample(b, b.N*benchSamplesPerBatch)
}
