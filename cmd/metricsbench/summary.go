package main

// "metricsbench summary" times GetMetricsSummary over gRPC against a
// metrics_service receiver with a metrics_store pipeline (in this process)
// that holds -series series: -names metric families (counters and gauges)
// of series/names series each, labels instance (series/names values),
// shard (8 values), pod (series/2 values) and service.name; -samples samples per series, written
// straight to the store pipeline. It reports the first call (cold: any
// cache the answer uses is empty) and the median and maximum of -runs
// further calls, for a plain summary, one with recommendations and one with
// a name glob.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

type summaryBenchConfig struct {
	series, names, samples, runs int
	dir                          string
}

func summaryMain(args []string) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	cfg := &summaryBenchConfig{}
	fs.IntVar(&cfg.series, "series", 200_000, "series in the store")
	fs.IntVar(&cfg.names, "names", 1000, "metric families (half counters, half gauges)")
	fs.IntVar(&cfg.samples, "samples", 30, "samples per series, 10s apart")
	fs.IntVar(&cfg.runs, "runs", 5, "timed calls per variant after the first")
	fs.StringVar(&cfg.dir, "dir", "", "store directory (default: a temporary one, removed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.series < cfg.names || cfg.names < 2 || cfg.samples < 1 || cfg.runs < 1 {
		return fmt.Errorf("summary: need -series >= -names >= 2, -samples >= 1, -runs >= 1")
	}
	return runSummaryBench(os.Stdout, cfg)
}

func runSummaryBench(w io.Writer, cfg *summaryBenchConfig) error {
	ctx := context.Background()
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "metricsbench-summary-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	p, err := storepipeline.Start(ctx, dir, nil, consumertest.NewNop())
	if err != nil {
		return err
	}
	defer func() { _ = p.Stop(ctx) }()
	addr, err := resolveAddr("127.0.0.1:0")
	if err != nil {
		return err
	}
	f := metricsservicereceiver.NewFactory()
	rc := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
	rc.NetAddr.Endpoint = addr
	if err := confmap.Validate(rc); err != nil {
		return err
	}
	rcv, err := f.CreateMetrics(ctx, receivertest.NewNopSettings(f.Type()), rc, p.Next)
	if err != nil {
		return err
	}
	if err := rcv.Start(ctx, p.Host); err != nil {
		return err
	}
	defer func() { _ = rcv.Shutdown(ctx) }()

	start := time.Now()
	if err := loadSummarySeries(ctx, p, cfg); err != nil {
		return err
	}
	fmt.Fprintf(w, "loaded %d series (%d families, %d samples each) in %s\n", cfg.series, cfg.names, cfg.samples, time.Since(start).Round(time.Millisecond))

	conn, err := streamDial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := pb.NewMetricsServiceClient(conn)
	variants := []struct {
		name string
		req  *pb.GetMetricsSummaryRequest
	}{
		{"plain (top_n 10)", &pb.GetMetricsSummaryRequest{TopN: 10}},
		{"with recommendations", &pb.GetMetricsSummaryRequest{TopN: 10, IncludeRecommendations: true}},
		{"filter names bench_1*", &pb.GetMetricsSummaryRequest{TopN: 10, Filter: &pb.MetricFilter{Names: []string{"bench_1*"}}}},
	}
	fmt.Fprintf(w, "%-24s %10s %10s %10s %12s\n", "GetMetricsSummary", "first ms", "median ms", "max ms", "series seen")
	for _, v := range variants {
		var times []time.Duration
		var first time.Duration
		var seen int64
		for i := 0; i <= cfg.runs; i++ {
			t0 := time.Now()
			resp, err := c.GetMetricsSummary(ctx, v.req)
			d := time.Since(t0)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			seen = resp.GetTotals().GetSeries()
			if i == 0 {
				first = d
				continue
			}
			times = append(times, d)
		}
		slices.Sort(times)
		fmt.Fprintf(w, "%-24s %10s %10s %10s %12d\n", v.name, readsMs(first), readsMs(times[len(times)/2]), readsMs(times[len(times)-1]), seen)
	}
	return nil
}

// loadSummarySeries writes the series straight to the store pipeline, 1000
// series per batch, one pass per sample.
func loadSummarySeries(ctx context.Context, p *storepipeline.Pipeline, cfg *summaryBenchConfig) error {
	per := cfg.series / cfg.names
	now := time.Now().Add(-time.Duration(cfg.samples) * 10 * time.Second)
	startTS := pcommon.NewTimestampFromTime(now.Add(-time.Hour))
	for s := range cfg.samples {
		ts := pcommon.NewTimestampFromTime(now.Add(time.Duration(s) * 10 * time.Second))
		for lo := 0; lo < cfg.series; lo += 1000 {
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "bench")
			sm := rm.ScopeMetrics().AppendEmpty()
			var m pmetric.Metric
			last := -1
			for i := lo; i < min(lo+1000, cfg.series); i++ {
				fam := i / per
				if fam >= cfg.names {
					fam = cfg.names - 1
				}
				if fam != last {
					last = fam
					m = sm.Metrics().AppendEmpty()
					if fam%2 == 0 {
						m.SetName("bench_" + strconv.Itoa(fam) + "_total")
						sum := m.SetEmptySum()
						sum.SetIsMonotonic(true)
						sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					} else {
						m.SetName("bench_" + strconv.Itoa(fam))
						m.SetEmptyGauge()
					}
				}
				var dp pmetric.NumberDataPoint
				if m.Type() == pmetric.MetricTypeSum {
					dp = m.Sum().DataPoints().AppendEmpty()
					dp.SetStartTimestamp(startTS)
				} else {
					dp = m.Gauge().DataPoints().AppendEmpty()
				}
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(float64(i + s))
				dp.Attributes().PutStr("instance", strconv.Itoa(i%per))
				dp.Attributes().PutStr("shard", strconv.Itoa(i%8))
				dp.Attributes().PutStr("pod", "pod-"+strconv.Itoa(i/2))
			}
			if err := p.Next.ConsumeMetrics(ctx, md); err != nil {
				return fmt.Errorf("load batch at series %d: %w", lo, err)
			}
		}
	}
	return nil
}
