package main

// "metricsbench pages" measures GetMetrics paging at scale: a receiver with
// its store pipeline in this process (as in the distribution: metrics_store
// extension and processor), -series gauge series stored (-names names of
// series/names series each, labels instance_id and job), then GetMetrics
// pages of -page-size series over gRPC: the first page, the page in the
// middle and the last page (each -runs times, median and max reported), then
// one full walk of every page (-walk) checking that each series comes
// exactly once. The CPU time is this process's (receiver, store and client
// together) per request: on a busy machine it is steadier than wall time.
//
// The middle and last pages are reached with the token of the series just
// before them (base64url("v1:" + key), key = name, then "\xff" label
// "\xfe" value for each other label in name order), so that they can be
// measured without walking there first; the same tokens are what the
// receiver hands out.

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

// pagesConfig holds the flags of "pages".
type pagesConfig struct {
	series   int
	names    int
	samples  int
	interval time.Duration
	pageSize int
	runs     int
	walk     bool
	latest   bool
	dir      string
}

func parsePagesFlags(args []string) (*pagesConfig, error) {
	fs := flag.NewFlagSet("pages", flag.ContinueOnError)
	cfg := &pagesConfig{}
	fs.IntVar(&cfg.series, "series", 200_000, "series stored (a multiple of -names)")
	fs.IntVar(&cfg.names, "names", 100, "metric names the series are spread over")
	fs.IntVar(&cfg.samples, "samples", 10, "samples per series, -interval apart, the newest a few seconds ago")
	fs.DurationVar(&cfg.interval, "interval", 25*time.Second, "time between two samples of a series (the read window is the default 5 minutes)")
	fs.IntVar(&cfg.pageSize, "page-size", 1000, "GetMetrics page_size")
	fs.IntVar(&cfg.runs, "runs", 5, "measured requests of each of the first, middle and last page")
	fs.BoolVar(&cfg.walk, "walk", true, "also walk every page once with next_page_token")
	fs.BoolVar(&cfg.latest, "latest-only", false, "ask for latest_only")
	fs.StringVar(&cfg.dir, "dir", "", "directory of the store (default: a new temporary directory)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.series < 1 || cfg.names < 1 || cfg.series%cfg.names != 0 || cfg.samples < 1 || cfg.interval <= 0 || cfg.pageSize < 1 || cfg.runs < 1 {
		return nil, errors.New("series, names, samples, interval, page-size and runs must be positive, and series a multiple of names")
	}
	if time.Duration(cfg.samples-1)*cfg.interval > 4*time.Minute {
		return nil, errors.New("(samples-1) x interval must stay under 4 minutes: the page reads the default window of 5 minutes")
	}
	return cfg, nil
}

// pagesName and pagesID name the metric and the instance of series i, in
// the order GetMetrics returns them.
func pagesName(cfg *pagesConfig, i int) string {
	return fmt.Sprintf("pages_metric_%04d", i/(cfg.series/cfg.names))
}
func pagesID(cfg *pagesConfig, i int) string { return fmt.Sprintf("%07d", i%(cfg.series/cfg.names)) }

// pagesServer is a receiver with a store pipeline.
type pagesServer struct {
	rcv      receiver.Metrics
	pipeline *storepipeline.Pipeline
	addr     string
}

func startPagesServer(dir string) (*pagesServer, error) {
	s := &pagesServer{}
	var err error
	if s.addr, err = freeAddr(); err != nil {
		return nil, err
	}
	if s.pipeline, err = storepipeline.Start(context.Background(), filepath.Join(dir, "tsdb"), nil, consumer.Metrics(nopMetrics{})); err != nil {
		return nil, err
	}
	f := metricsservicereceiver.NewFactory()
	c := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
	c.NetAddr.Endpoint = s.addr
	if err := confmap.Validate(c); err != nil {
		return nil, errors.Join(err, s.pipeline.Stop(context.Background()))
	}
	s.rcv, err = f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), c, s.pipeline.Next)
	if err != nil {
		return nil, errors.Join(err, s.pipeline.Stop(context.Background()))
	}
	if err := s.rcv.Start(context.Background(), s.pipeline.Host); err != nil {
		return nil, errors.Join(err, s.rcv.Shutdown(context.Background()), s.pipeline.Stop(context.Background()))
	}
	return s, nil
}

func (s *pagesServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(s.rcv.Shutdown(ctx), s.pipeline.Stop(ctx))
}

// nopMetrics accepts everything.
type nopMetrics struct{}

func (nopMetrics) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (nopMetrics) ConsumeMetrics(context.Context, pmetric.Metrics) error {
	return nil
}

// pagesIngest stores the series through the store processor, one batch per
// timestamp and metric name.
func pagesIngest(ctx context.Context, cfg *pagesConfig, next consumer.Metrics, newest time.Time) error {
	per := cfg.series / cfg.names
	for k := range cfg.samples {
		ts := pcommon.NewTimestampFromTime(newest.Add(-time.Duration(cfg.samples-1-k) * cfg.interval))
		for n := range cfg.names {
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "pages")
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName(pagesName(cfg, n*per))
			dps := m.SetEmptyGauge().DataPoints()
			dps.EnsureCapacity(per)
			for j := range per {
				dp := dps.AppendEmpty()
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(float64(k*per + j))
				dp.Attributes().PutStr("instance_id", pagesID(cfg, n*per+j))
			}
			if err := next.ConsumeMetrics(ctx, md); err != nil {
				return fmt.Errorf("store samples of %s: %w", m.Name(), err)
			}
		}
	}
	return nil
}

// pagesKey is the page cursor of a series: its name, then each other label
// as "\xff" name "\xfe" value, in label name order.
func pagesKey(s *pb.Series) string {
	names := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(s.Name)
	for _, k := range names {
		b.WriteString("\xff" + k + "\xfe" + s.Labels[k])
	}
	return b.String()
}

// pagesToken is the token of the page after series i: the template series
// (any stored series) with the name and instance_id of series i.
func pagesToken(cfg *pagesConfig, tmpl *pb.Series, i int) string {
	if i < 0 {
		return ""
	}
	s := &pb.Series{Name: pagesName(cfg, i), Labels: map[string]string{}}
	for k, v := range tmpl.Labels {
		s.Labels[k] = v
	}
	s.Labels["instance_id"] = pagesID(cfg, i)
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + pagesKey(s)))
}

func pagesMain(args []string) error {
	cfg, err := parsePagesFlags(args)
	if err != nil {
		return err
	}
	dir := cfg.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "metricsbench-pages-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	s, err := startPagesServer(dir)
	if err != nil {
		return fmt.Errorf("start receiver: %w", err)
	}
	defer func() { _ = s.stop() }()
	w := os.Stdout
	n, model := cpuInfo()
	fmt.Fprintf(w, "machine: %d CPUs (%s), GOMAXPROCS=%d, %s\n", n, model, runtime.GOMAXPROCS(0), runtime.Version())

	ctx := context.Background()
	start := time.Now()
	if err := pagesIngest(ctx, cfg, s.pipeline.Next, start.Add(-5*time.Second)); err != nil {
		return err
	}
	fmt.Fprintf(w, "stored %d series x %d samples (%d names) in %s\n", cfg.series, cfg.samples, cfg.names, time.Since(start).Round(time.Millisecond))

	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := pb.NewMetricsServiceClient(conn)
	return pagesRun(ctx, w, cfg, c)
}

// pagesRun measures the pages and the walk, and checks what they return.
func pagesRun(ctx context.Context, w io.Writer, cfg *pagesConfig, c pb.MetricsServiceClient) error {
	end := time.Now()
	req := func(token string) *pb.GetMetricsRequest {
		return &pb.GetMetricsRequest{
			Filter:     &pb.MetricFilter{Names: []string{"pages_metric_*"}},
			TimeRange:  &pb.TimeRange{Start: timestamppb.New(end.Add(-5 * time.Minute)), End: timestamppb.New(end)},
			PageSize:   int32(cfg.pageSize),
			PageToken:  token,
			LatestOnly: cfg.latest,
		}
	}
	first, err := c.GetMetrics(ctx, req(""))
	if err != nil {
		return fmt.Errorf("first page: %w", err)
	}
	if len(first.Series) == 0 {
		return errors.New("first page: no series")
	}
	tmpl := first.Series[0]
	pages := (cfg.series + cfg.pageSize - 1) / cfg.pageSize
	mid := pages / 2
	type point struct {
		name  string
		first int // index of the page's first series
	}
	points := []point{{"first", 0}, {fmt.Sprintf("middle (page %d)", mid+1), mid * cfg.pageSize}, {fmt.Sprintf("last (page %d)", pages), (pages - 1) * cfg.pageSize}}
	fmt.Fprintf(w, "GetMetrics page_size %d over %d series (%d pages), latest_only %v, %d runs each:\n", cfg.pageSize, cfg.series, pages, cfg.latest, cfg.runs)
	for _, p := range points {
		var ds []time.Duration
		var resp *pb.GetMetricsResponse
		cpu0 := streamProcCPU()
		for range cfg.runs {
			t0 := time.Now()
			resp, err = c.GetMetrics(ctx, req(pagesToken(cfg, tmpl, p.first-1)))
			ds = append(ds, time.Since(t0))
			if err != nil {
				return fmt.Errorf("%s page: %w", p.name, err)
			}
		}
		cpu := (streamProcCPU() - cpu0) / time.Duration(cfg.runs)
		want := min(cfg.pageSize, cfg.series-p.first)
		if len(resp.Series) != want || resp.Series[0].Name != pagesName(cfg, p.first) || resp.Series[0].Labels["instance_id"] != pagesID(cfg, p.first) {
			return fmt.Errorf("%s page: %d series starting at %s %v, want %d starting at %s %s", p.name, len(resp.Series),
				resp.Series[0].Name, resp.Series[0].Labels, want, pagesName(cfg, p.first), pagesID(cfg, p.first))
		}
		slices.Sort(ds)
		fmt.Fprintf(w, "  %-18s median %8.1f ms  max %8.1f ms  CPU %8.1f ms/page  (%d series, %d samples, total_count %d)\n",
			p.name, ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), ms(cpu), len(resp.Series), resp.Stats.GetSamplesRead(), resp.TotalCount)
	}
	if !cfg.walk {
		return nil
	}
	seen := make(map[string]bool, cfg.series)
	var ds []time.Duration
	token := ""
	t0, cpu0 := time.Now(), streamProcCPU()
	for {
		t := time.Now()
		resp, err := c.GetMetrics(ctx, req(token))
		ds = append(ds, time.Since(t))
		if err != nil {
			return fmt.Errorf("walk, page %d: %w", len(ds), err)
		}
		for _, s := range resp.Series {
			k := pagesKey(s)
			if seen[k] {
				return fmt.Errorf("walk, page %d: series %s %v a second time", len(ds), s.Name, s.Labels)
			}
			seen[k] = true
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	total, cpu := time.Since(t0), streamProcCPU()-cpu0
	if len(seen) != cfg.series {
		return fmt.Errorf("walk: %d series, want %d", len(seen), cfg.series)
	}
	slices.Sort(ds)
	fmt.Fprintf(w, "  full walk: %d pages in %.2f s (CPU %.2f s), per page median %.1f ms, p90 %.1f ms, max %.1f ms; each series exactly once\n",
		len(ds), total.Seconds(), cpu.Seconds(), ms(ds[len(ds)/2]), ms(ds[len(ds)*9/10]), ms(ds[len(ds)-1]))
	return nil
}
