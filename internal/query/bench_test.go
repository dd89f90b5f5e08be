package query

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"go.uber.org/zap"
)

// The benchmarks below run dashboard range queries (1h at 15s step, 241
// steps) through Engine.Do over a TSDB holding 10 jobs x (100 counters, 11
// histogram buckets, 40 gauges), 75 minutes at 15s, with the results cache
// disabled and enabled (repeated query, every step cached).
//
//	go test ./internal/query -run '^$' -bench RangeQuery -benchmem

var benchQueries = []struct{ name, q string }{
	{"rate", `sum by (job) (rate(http_requests_total[5m]))`},
	{"histogram_quantile", `histogram_quantile(0.9, sum by (le, job) (rate(request_duration_seconds_bucket[5m])))`},
	{"selector", `queue_depth{job="svc-1"}`},
}

// benchDB returns a TSDB whose last sample is at end (7s after the step grid).
func benchDB(b *testing.B, end time.Time) *tsdb.DB {
	b.Helper()
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"}
	var series []labels.Labels
	for j := range 10 {
		job := "svc-" + strconv.Itoa(j)
		for p := range 100 {
			series = append(series, labels.FromStrings(labels.MetricName, "http_requests_total", "job", job, "path", "/p"+strconv.Itoa(p)))
		}
		for _, le := range les {
			series = append(series, labels.FromStrings(labels.MetricName, "request_duration_seconds_bucket", "job", job, "le", le))
		}
		for q := range 40 {
			series = append(series, labels.FromStrings(labels.MetricName, "queue_depth", "job", job, "queue", "q"+strconv.Itoa(q)))
		}
	}
	const steps = 300
	start := end.Add(-(steps - 1) * 15 * time.Second)
	for s := range steps {
		app := db.Appender(context.Background())
		t := start.Add(time.Duration(s) * 15 * time.Second).UnixMilli()
		for i, ls := range series {
			v := float64((s + 1) * (1 + i%10))
			switch ls.Get(labels.MetricName) {
			case "queue_depth":
				v = float64((s*7 + i) % 100)
			case "request_duration_seconds_bucket": // cumulative over le
				v = float64((s + 1) * (1 + slices.Index(les, ls.Get("le"))))
			}
			if _, err := app.Append(0, ls, t, v); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

func BenchmarkRangeQuery(b *testing.B) {
	qEnd := time.Now().Truncate(15 * time.Second).Add(-10 * time.Minute)
	db := benchDB(b, qEnd.Add(7*time.Second))
	for _, cached := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Cache.Enabled = cached
		e, err := New(cfg, db, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		for _, bq := range benchQueries {
			name := "uncached"
			if cached {
				name = "cached"
			}
			b.Run(fmt.Sprintf("%s/%s", bq.name, name), func(b *testing.B) {
				req := Request{Query: bq.q, Start: qEnd.Add(-time.Hour), End: qEnd, Step: 15 * time.Second}
				res, err := e.Do(context.Background(), req) // fills the cache
				if err != nil {
					b.Fatal(err)
				}
				if res.Stats.Series == 0 {
					b.Fatal("no series")
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					res, err := e.Do(context.Background(), req)
					if err != nil {
						b.Fatal(err)
					}
					if res.Stats.CacheHit != cached {
						b.Fatalf("cache hit %v, want %v", res.Stats.CacheHit, cached)
					}
				}
			})
		}
	}
}
