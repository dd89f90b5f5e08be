package reads

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// BenchmarkGetMetricsPage reads a GetMetrics page of 1,000 series (10
// samples each) at the first, middle and last position among 200,000
// series (100 names x 2,000), straight from the engine (no gRPC), with the
// page tokens the engine hands out (the first page counts the series):
//
//	go test ./internal/reads -run '^$' -bench GetMetricsPage -benchtime 20x
func BenchmarkGetMetricsPage(b *testing.B) {
	benchPages(b, 100, 2000)
}

// BenchmarkGetMetricsPageOneName is BenchmarkGetMetricsPage with the
// 200,000 series under one metric name: every page walks the name's series.
func BenchmarkGetMetricsPageOneName(b *testing.B) {
	benchPages(b, 1, 200_000)
}

func benchPages(b *testing.B, names, per int) {
	const samples, pageSize = 10, 1000
	s := openStore(b, nil)
	end := time.Now()
	var all []labels.Labels
	for n := range names {
		all = append(all, gauges(fmt.Sprintf("bench_metric_%03d", n), per)...)
	}
	for k := range samples {
		s.add(b, end.Add(-time.Duration(samples-k)*20*time.Second), float64(k), all...)
	}
	total := names * per
	key := func(i int) string {
		if i < 0 {
			return ""
		}
		return encodePageToken(int64(total), string(appendKey(nil, all[i])))
	}
	for _, pos := range []struct {
		name  string
		first int
	}{{"first", 0}, {"middle", total / 2}, {"last", total - pageSize}} {
		b.Run(pos.name, func(b *testing.B) {
			req := &pb.GetMetricsRequest{
				Filter:    &pb.MetricFilter{Names: []string{"bench_metric_*"}},
				TimeRange: &pb.TimeRange{Start: tsOf(end.Add(-5 * time.Minute)), End: tsOf(end)},
				PageSize:  pageSize, PageToken: key(pos.first - 1),
			}
			for b.Loop() {
				resp, err := s.eng.GetMetrics(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.Series) != pageSize || len(resp.Series[0].Samples) != samples {
					b.Fatalf("%d series, %d samples", len(resp.Series), len(resp.Series[0].Samples))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
		})
	}
}
