package main

// "metricsbench hostile" measures whether ingest keeps its pace while
// clients send hostile and heavy queries, in one process: a metrics_service
// receiver with the store and the Prometheus HTTP API (default query
// settings unless flags change them), paced ingest generators
// (RecordBatchMetrics) and query clients.
//
// Rounds alternate two phases of -duration each, in alternating order:
// "quiet" (ingest only) and "attacked" (the same ingest plus -query-clients
// looping over the hostile queries of the issue "Safe under hostile
// queries", over gRPC QueryMetrics and over HTTP with timeout=2s, and a few
// heavy legitimate ones). The report gives, per phase, the datapoints the
// pipeline accepted per second, the RecordBatchMetrics latency (p50, p99),
// the outcome of the queries by status, the process's peak RSS, and the
// ratio attacked/quiet of the ingest rate (target: at least 0.9).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

// hostileConfig holds the flags of "hostile".
type hostileConfig struct {
	rate          float64
	clients       int
	requestSize   int
	queryClients  int
	duration      time.Duration
	warmup        time.Duration
	rounds        int
	maxConcurrent int
	maxQueued     int
	queries       string
	dir           string
}

func parseHostileFlags(args []string) (*hostileConfig, error) {
	fs := flag.NewFlagSet("hostile", flag.ContinueOnError)
	c := &hostileConfig{}
	fs.Float64Var(&c.rate, "rate", 10_000, "ingest rate, datapoints per second over all clients (0: as fast as the clients go)")
	fs.IntVar(&c.clients, "clients", 4, "concurrent ingest clients")
	fs.IntVar(&c.requestSize, "request-size", 1000, "datapoints per RecordBatchMetrics")
	fs.IntVar(&c.queryClients, "query-clients", 4, "concurrent query clients in the attacked phase")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "time of one phase")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "ingest before the first round (data for the queries)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds of both phases")
	fs.IntVar(&c.maxConcurrent, "max-concurrent", 0, "query.max_concurrent (0: the default)")
	fs.IntVar(&c.maxQueued, "max-queued", -1, "query.max_queued (-1: the default)")
	fs.StringVar(&c.queries, "queries", "all", "queries of the attacked phase: all, hostile (only the two of the issue) or legit (only the heavy legitimate ones)")
	fs.StringVar(&c.dir, "dir", "", "store directory (default: a temporary directory, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.queries != "all" && c.queries != "hostile" && c.queries != "legit" {
		return nil, fmt.Errorf("-queries: %q is not one of all, hostile, legit", c.queries)
	}
	if c.clients < 1 || c.requestSize < 1 || c.queryClients < 1 || c.rounds < 1 || c.rate < 0 || c.duration <= 0 {
		return nil, errors.New("hostile: -clients, -request-size, -query-clients, -rounds and -duration must be positive, -rate not negative")
	}
	return c, nil
}

// hostileQuery is one query the attackers loop over.
type hostileQuery struct {
	name    string
	query   string
	http    bool          // over the HTTP API (timeout=2s) instead of gRPC
	rng     time.Duration // range query over the last rng at step, or instant
	step    time.Duration
	hostile bool
}

var hostileQueries = []hostileQuery{
	{name: "grpc sum_over_time(vector(1)[30d:1ms])", query: `sum_over_time(vector(1)[30d:1ms])`, hostile: true},
	{name: "http count_over_time(vector(1)[6h:1ms]) timeout=2s", query: `count_over_time(vector(1)[6h:1ms])`, http: true, hostile: true},
	{name: "grpc rate by path, 15m at 1s", query: `sum by (path) (rate(bench_metric_0_total[1m]))`, rng: 15 * time.Minute, step: time.Second},
	{name: "http quantile_over_time subquery [10m:1s]", query: `quantile_over_time(0.99, sum by (host) (bench_metric_5)[10m:1s])`, http: true},
	{name: "grpc all series, last_over_time [5m]", query: `count(last_over_time({__name__=~"bench_metric_.*"}[5m]))`},
	{name: "http max_over_time(rate[1m])[15m:1s], 15m at 10s", query: `max_over_time(sum(rate(bench_metric_1_total[1m]))[15m:1s])`, http: true, rng: 15 * time.Minute, step: 10 * time.Second},
}

// hostileServer is the receiver under test with a counting pipeline.
type hostileServer struct {
	rcv      receiver.Metrics
	pipeline *storepipeline.Pipeline
	grpcAddr string
	httpAddr string
	points   atomic.Int64
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startHostileServer(cfg *hostileConfig, dir string) (*hostileServer, error) {
	s := &hostileServer{}
	var err error
	if s.grpcAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	if s.httpAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	sink, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		s.points.Add(int64(md.DataPointCount()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	// the store as in the distribution: metrics_store extension and processor
	if s.pipeline, err = storepipeline.Start(context.Background(), filepath.Join(dir, "tsdb"), nil, sink); err != nil {
		return nil, err
	}
	f := metricsservicereceiver.NewFactory()
	c := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
	c.NetAddr.Endpoint = s.grpcAddr
	hc := confighttp.NewDefaultServerConfig()
	hc.NetAddr.Endpoint = s.httpAddr
	c.PrometheusAPI = configoptional.Some(hc)
	if cfg.maxConcurrent > 0 {
		c.Query.MaxConcurrent = cfg.maxConcurrent
	}
	if cfg.maxQueued >= 0 {
		c.Query.MaxQueued = cfg.maxQueued
	}
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

// stop shuts down the receiver, then the store pipeline.
func (s *hostileServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(s.rcv.Shutdown(ctx), s.pipeline.Stop(ctx))
}

// hostilePhase is the measurement of one phase.
type hostilePhase struct {
	round    int
	attacked bool
	wall     time.Duration
	points   int64
	errors   int64
	lat      []time.Duration
	peakRSS  int64 // KiB, sampled
	queries  map[string]map[string]int
	qlat     map[string][]time.Duration
}

func (p *hostilePhase) rate() float64 { return float64(p.points) / p.wall.Seconds() }

// ingester sends paced RecordBatchMetrics from several clients.
type ingester struct {
	cfg    *hostileConfig
	conns  []*grpc.ClientConn
	reqs   []*pb.RecordBatchMetricsRequest
	mu     sync.Mutex
	lat    []time.Duration
	errs   atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startIngest(cfg *hostileConfig, addr string) (*ingester, error) {
	in := &ingester{cfg: cfg}
	for i := range cfg.clients {
		conn, err := streamDial(addr)
		if err != nil {
			return nil, err
		}
		in.conns = append(in.conns, conn)
		in.reqs = append(in.reqs, streamRequest(i, cfg.requestSize))
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	// each client sends one request every interval; late requests are sent
	// at once (the schedule is kept, so a stall is caught up afterwards)
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.requestSize*cfg.clients) / cfg.rate)
	}
	for i := range cfg.clients {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			c := pb.NewMetricsServiceClient(in.conns[i])
			next := time.Now().Add(interval * time.Duration(i) / time.Duration(cfg.clients))
			for ctx.Err() == nil {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
					next = next.Add(interval)
				}
				start := time.Now()
				_, err := c.RecordBatchMetrics(ctx, in.reqs[i])
				d := time.Since(start)
				if err != nil {
					if ctx.Err() == nil {
						in.errs.Add(1)
					}
					continue
				}
				in.mu.Lock()
				in.lat = append(in.lat, d)
				in.mu.Unlock()
			}
		}()
	}
	return in, nil
}

// take returns and resets the latencies and errors since the last call.
func (in *ingester) take() ([]time.Duration, int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	lat := in.lat
	in.lat = nil
	return lat, in.errs.Swap(0)
}

func (in *ingester) stop() {
	in.cancel()
	in.wg.Wait()
	for _, c := range in.conns {
		_ = c.Close()
	}
}

// attack loops the query clients over hostileQueries until ctx ends.
func attack(ctx context.Context, cfg *hostileConfig, s *hostileServer, record func(q hostileQuery, outcome string, d time.Duration)) *sync.WaitGroup {
	var wg sync.WaitGroup
	var queries []hostileQuery
	for _, q := range hostileQueries {
		if cfg.queries == "all" || (cfg.queries == "hostile") == q.hostile {
			queries = append(queries, q)
		}
	}
	httpClient := &http.Client{Timeout: time.Minute}
	for i := range cfg.queryClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := streamDial(s.grpcAddr)
			if err != nil {
				record(hostileQuery{name: "dial"}, err.Error(), 0)
				return
			}
			defer conn.Close()
			c := pb.NewMetricsServiceClient(conn)
			for n := i; ctx.Err() == nil; n++ {
				q := queries[n%len(queries)]
				start := time.Now()
				var outcome string
				if q.http {
					outcome = hostileHTTP(ctx, httpClient, s.httpAddr, q)
				} else {
					outcome = hostileGRPC(ctx, c, q)
				}
				if ctx.Err() != nil {
					return // cut by the end of the phase
				}
				record(q, outcome, time.Since(start))
			}
		}()
	}
	return &wg
}

func hostileGRPC(ctx context.Context, c pb.MetricsServiceClient, q hostileQuery) string {
	req := &pb.QueryMetricsRequest{Query: q.query}
	if q.rng > 0 {
		now := time.Now()
		req.Start, req.End, req.Step = timestamppb.New(now.Add(-q.rng)), timestamppb.New(now), durationpb.New(q.step)
	}
	_, err := c.QueryMetrics(ctx, req)
	st := status.Convert(err)
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		return st.Code().String() + " (" + st.Message() + ")"
	}
	return st.Code().String()
}

func hostileHTTP(ctx context.Context, c *http.Client, addr string, q hostileQuery) string {
	v := url.Values{"query": {q.query}, "timeout": {"2s"}}
	path := "/api/v1/query"
	if q.rng > 0 {
		now := time.Now()
		path = "/api/v1/query_range"
		v.Set("start", fmt.Sprint(now.Add(-q.rng).Unix()))
		v.Set("end", fmt.Sprint(now.Unix()))
		v.Set("step", q.step.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path+"?"+v.Encode(), http.NoBody)
	if err != nil {
		return err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return "transport error"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Sprintf("HTTP %d", resp.StatusCode)
}

// rssSampler records the largest RSS seen since the last take.
type rssSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startRSS() *rssSampler {
	r := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kib, err := procStatusKiB(os.Getpid(), "VmRSS"); err == nil && kib > r.peak.Load() {
				r.peak.Store(kib)
			}
			select {
			case <-t.C:
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

func (r *rssSampler) take() int64 {
	kib, _ := procStatusKiB(os.Getpid(), "VmRSS")
	return max(r.peak.Swap(kib), kib)
}

func (r *rssSampler) close() { close(r.stop); <-r.done }

func hostileMain(args []string) error {
	cfg, err := parseHostileFlags(args)
	if err != nil {
		return err
	}
	dir := cfg.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "metricsbench-hostile-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	s, err := startHostileServer(cfg, dir)
	if err != nil {
		return fmt.Errorf("start receiver: %w", err)
	}
	defer func() { _ = s.stop() }()
	in, err := startIngest(cfg, s.grpcAddr)
	if err != nil {
		return err
	}
	defer in.stop()
	rss := startRSS()
	defer rss.close()

	w := os.Stdout
	n, model := cpuInfo()
	fmt.Fprintf(w, "machine: %d CPUs (%s), GOMAXPROCS=%d, %s\n", n, model, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(w, "ingest: %d clients x %d datapoints per RecordBatchMetrics, target %s dp/s; %d query clients (%s queries); %d rounds of 2 x %s\n\n",
		cfg.clients, cfg.requestSize, rateString(cfg.rate), cfg.queryClients, cfg.queries, cfg.rounds, cfg.duration)
	time.Sleep(cfg.warmup)
	_, _ = in.take()

	var phases []*hostilePhase
	for round := range cfg.rounds {
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		for _, attacked := range order {
			p := &hostilePhase{round: round + 1, attacked: attacked, queries: map[string]map[string]int{}, qlat: map[string][]time.Duration{}}
			var mu sync.Mutex
			record := func(q hostileQuery, outcome string, d time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				if p.queries[q.name] == nil {
					p.queries[q.name] = map[string]int{}
				}
				p.queries[q.name][outcome]++
				p.qlat[q.name] = append(p.qlat[q.name], d)
			}
			_, _ = in.take()
			_ = rss.take()
			ctx, cancel := context.WithCancel(context.Background())
			var wg *sync.WaitGroup
			before, start := s.points.Load(), time.Now()
			if attacked {
				wg = attack(ctx, cfg, s, record)
			}
			time.Sleep(cfg.duration)
			p.points, p.wall = s.points.Load()-before, time.Since(start)
			p.lat, p.errors = in.take()
			cancel()
			if wg != nil {
				wg.Wait()
			}
			p.peakRSS = rss.take()
			phases = append(phases, p)
			fmt.Fprintf(w, "round %d %-8s %10.0f dp/s  RecordBatchMetrics p50 %6.2f ms p99 %7.2f ms  errors %d  peak RSS %d MiB\n",
				p.round, phaseName(attacked), p.rate(), ms(pct(p.lat, 0.5)), ms(pct(p.lat, 0.99)), p.errors, p.peakRSS>>10)
		}
	}
	hostileReport(w, phases)
	return nil
}

func phaseName(attacked bool) string {
	if attacked {
		return "attacked"
	}
	return "quiet"
}

func rateString(r float64) string {
	if r == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f", r)
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

func hostileReport(w io.Writer, phases []*hostilePhase) {
	var quiet, attacked []float64
	var peak int64
	queries := map[string]map[string]int{}
	qlat := map[string][]time.Duration{}
	for _, p := range phases {
		if p.attacked {
			attacked = append(attacked, p.rate())
		} else {
			quiet = append(quiet, p.rate())
		}
		peak = max(peak, p.peakRSS)
		for q, outcomes := range p.queries {
			if queries[q] == nil {
				queries[q] = map[string]int{}
			}
			for o, n := range outcomes {
				queries[q][o] += n
			}
			qlat[q] = append(qlat[q], p.qlat[q]...)
		}
	}
	fmt.Fprintf(w, "\nqueries in the attacked phases (outcome: count; latency median / max):\n")
	names := make([]string, 0, len(queries))
	for q := range queries {
		names = append(names, q)
	}
	sort.Strings(names)
	for _, q := range names {
		var parts []string
		for o, n := range queries[q] {
			parts = append(parts, fmt.Sprintf("%s: %d", o, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "  %-52s %-34s %8.1f / %8.1f ms\n", q, strings.Join(parts, ", "), ms(pct(qlat[q], 0.5)), ms(pct(qlat[q], 1)))
	}
	mq, ma := medianOf(quiet), medianOf(attacked)
	ratio := ma / mq
	verdict := "OK"
	if ratio < 0.9 {
		verdict = "BELOW TARGET"
	}
	fmt.Fprintf(w, "\ningest median: quiet %.0f dp/s, attacked %.0f dp/s: ratio %.3f (target >= 0.9: %s); peak RSS %d MiB\n",
		mq, ma, ratio, verdict, peak>>10)
}
