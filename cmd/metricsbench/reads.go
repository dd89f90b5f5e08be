package main

// "metricsbench reads" measures the read side of the collector against a
// real Prometheus fed the same samples, each in one run against a baseline
// measured in the same run:
//
//	(a) ingest: samples per CPU-second of our store (Store.Stage + Txn.Commit
//	    of pdata batches, Prometheus' OTLP translator included) vs Prometheus
//	    receiving the same samples by remote write (snappy + protobuf decode
//	    included). Both servers run on the same CPU (taskset), the sender on
//	    another; Prometheus' CPU is read from /proc/PID/stat, ours with
//	    getrusage around the Stage+Commit calls only (the generation of the
//	    pdata batches is outside the measured windows).
//	(b) memory per active series: Go heap in use after a forced GC (and RSS)
//	    before and after ingesting the same series, in a fresh store process
//	    and a fresh Prometheus (forced GC through /debug/pprof/heap?gc=1).
//	(c) range-query latency through each HTTP API (promapi over our store
//	    with the results cache disabled vs Prometheus' /api/v1/query_range),
//	    median and p90 of N alternating runs, and the same repeated query on
//	    our side with the cache enabled vs disabled.
//
// The data: R resources (job svc-R) of 700 series each: 400 counters
// http_requests_total{path,method,status}, 20 classic histograms
// request_duration_seconds{path} of 11 buckets (260 series) and 40 gauges
// queue_depth{queue}; one pdata batch (and one remote-write request) per
// resource and timestamp, in time order. Samples sit 7s after the query
// step grid, so no sample lies on a range boundary (where Prometheus 2 and 3
// differ by design) and both answers can be compared.
//
// The store side runs in a child process ("metricsbench reads -child=...").

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/promapi"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/store"
)

// readsPinnedEnv marks a "reads" parent that already runs under taskset.
const readsPinnedEnv = "METRICSBENCH_READS_PINNED"

// Line prefixes of the child's answers on its stdout.
const (
	readsResultPrefix = "READS-RESULT "
	readsReadyPrefix  = "READS-READY "
)

// readsSeriesPerResource is the number of series of one resource (see
// readsDataset.batch): 400 counters + 20 histograms x 13 + 40 gauges.
const readsSeriesPerResource = 400 + 20*13 + 40

// readsQueries are the dashboard queries of (c).
var readsQueries = []string{
	`sum by (job) (rate(http_requests_total[5m]))`,
	`histogram_quantile(0.9, sum by (le, job) (rate(request_duration_seconds_bucket[5m])))`,
	`queue_depth{job="svc-1"}`,
	`sum by (status) (increase(http_requests_total{method="GET"}[10m]))`,
}

// readsConfig holds the flags of "reads".
type readsConfig struct {
	series      int
	samples     int
	interval    time.Duration
	memSeries   int
	memSamples  int
	runs        int
	queryRange  time.Duration
	queryStep   time.Duration
	senders     int
	pin         bool
	serverCPUs  string
	clientCPUs  string
	prometheus  string
	cpuprofile  string
	skipIngest  bool
	skipMemory  bool
	dir         string
	keepDir     bool
	child       string
	startMillis int64
}

func parseReadsFlags(args []string) (*readsConfig, error) {
	fs := flag.NewFlagSet("reads", flag.ContinueOnError)
	cfg := &readsConfig{}
	fs.IntVar(&cfg.series, "series", 10_000, "series of (a) and (c), rounded to whole resources of 700 series")
	fs.IntVar(&cfg.samples, "samples", 300, "samples per series of (a) and (c); (c) needs range+10m of data")
	fs.DurationVar(&cfg.interval, "interval", 15*time.Second, "time between two samples of a series")
	fs.IntVar(&cfg.memSeries, "mem-series", 100_000, "series of (b); 0 skips (b)")
	fs.IntVar(&cfg.memSamples, "mem-samples", 10, "samples per series of (b)")
	fs.IntVar(&cfg.runs, "runs", 21, "measured runs of each query and side in (c)")
	fs.DurationVar(&cfg.queryRange, "range", time.Hour, "range of the queries of (c)")
	fs.DurationVar(&cfg.queryStep, "step", 15*time.Second, "step of the queries of (c)")
	fs.IntVar(&cfg.senders, "senders", 4, "concurrent remote-write requests to Prometheus (within one timestamp)")
	fs.BoolVar(&cfg.pin, "pin", true, "pin the servers (store child, Prometheus) and this process to different CPUs with taskset")
	fs.StringVar(&cfg.serverCPUs, "server-cpus", "0", "taskset CPU list of the servers")
	fs.StringVar(&cfg.clientCPUs, "client-cpus", "1", "taskset CPU list of this process (generator, sender, query client)")
	fs.StringVar(&cfg.prometheus, "prometheus", "prometheus", "Prometheus binary (2.x or 3.x, with --web.enable-remote-write-receiver)")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "save a CPU profile of the store child's ingest to this file (phases labelled phase=generate|decode|stage+commit)")
	fs.BoolVar(&cfg.skipIngest, "skip-ingest-query", false, "skip (a) and (c)")
	fs.BoolVar(&cfg.skipMemory, "skip-memory", false, "skip (b)")
	fs.StringVar(&cfg.dir, "dir", "", "directory of the TSDBs (default: a new temporary directory)")
	fs.BoolVar(&cfg.keepDir, "keep", false, "keep the TSDB directories")
	fs.StringVar(&cfg.child, "child", "", "internal: run the store side (ingest-serve or memory)")
	fs.Int64Var(&cfg.startMillis, "start-ms", 0, "internal: time of the first sample (Unix ms)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.series < 1 || cfg.samples < 2 || cfg.interval <= 0 || cfg.memSeries < 0 || cfg.memSamples < 1 ||
		cfg.runs < 1 || cfg.queryRange <= 0 || cfg.queryStep <= 0 || cfg.senders < 1 {
		return nil, errors.New("series, samples, interval, mem-samples, runs, range, step and senders must be positive")
	}
	return cfg, nil
}

// readsMain is the "reads" subcommand.
func readsMain(args []string) error {
	cfg, err := parseReadsFlags(args)
	if err != nil {
		return err
	}
	switch cfg.child {
	case "":
	case "ingest-serve", "memory":
		return readsChild(cfg)
	default:
		return fmt.Errorf("unknown -child %q", cfg.child)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	taskset, _ := exec.LookPath("taskset")
	if cfg.pin && (taskset == "" || runtime.NumCPU() < 2) && os.Getenv(readsPinnedEnv) == "" {
		fmt.Fprintln(os.Stderr, "metricsbench reads: taskset missing or fewer than 2 CPUs; running unpinned")
		cfg.pin = false
	}
	if cfg.pin && os.Getenv(readsPinnedEnv) == "" {
		cmd := exec.Command(taskset, append([]string{"-c", cfg.clientCPUs, exe, "reads"}, args...)...)
		cmd.Env = append(os.Environ(), readsPinnedEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return exitError(ee.ExitCode())
			}
			return err
		}
		return nil
	}
	promBin, err := exec.LookPath(cfg.prometheus)
	if err != nil {
		return fmt.Errorf("prometheus binary: %w", err)
	}
	dir := cfg.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "metricsbench-reads-"); err != nil {
			return err
		}
	}
	if !cfg.keepDir {
		defer os.RemoveAll(dir)
	}
	b := &readsBench{cfg: cfg, exe: exe, taskset: taskset, promBin: promBin, dir: dir, out: os.Stdout}
	return b.run()
}

// ---------------------------------------------------------------------------
// The data set

// readsDataset is R resources x 700 series, samples every interval from start.
type readsDataset struct {
	resources int
	samples   int
	start     time.Time // time of the first sample
	interval  time.Duration
}

func newReadsDataset(series, samples int, start time.Time, interval time.Duration) readsDataset {
	r := max(1, (series+readsSeriesPerResource/2)/readsSeriesPerResource)
	return readsDataset{resources: r, samples: samples, start: start, interval: interval}
}

func (d readsDataset) series() int        { return d.resources * readsSeriesPerResource }
func (d readsDataset) totalSamples() int  { return d.series() * d.samples }
func (d readsDataset) at(s int) time.Time { return d.start.Add(time.Duration(s) * d.interval) }

var (
	readsPaths    = func() []string { return readsNames("/api/v1/items/%d", 20) }()
	readsMethods  = []string{"GET", "POST", "PUT", "DELETE"}
	readsStatuses = []string{"200", "201", "404", "500", "503"}
	readsQueues   = func() []string { return readsNames("q%d", 40) }()
	readsBounds   = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
)

func readsNames(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// readsHash is splitmix64 of the position of a value: deterministic data on
// both sides without shared state.
func readsHash(a, b, c, d int) uint64 {
	x := uint64(a)*0x9E3779B97F4A7C15 ^ uint64(b)*0xBF58476D1CE4E5B9 ^ uint64(c)*0x94D049BB133111EB ^ uint64(d)*0x2545F4914F6CDD1D
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	return x ^ x>>31
}

// readsMonotonic is a cumulative count at step s that grows by 1..2w-1 per step.
func readsMonotonic(w uint64, h uint64, s int) uint64 { return uint64(s+1)*w + h%w }

// batch returns the samples of resource r at step s: 460 datapoints, 700
// Prometheus samples. Counters and histograms are cumulative.
func (d readsDataset) batch(r, s int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	job := "svc-" + strconv.Itoa(r)
	rm.Resource().Attributes().PutStr("service.name", job)
	rm.Resource().Attributes().PutStr("service.instance.id", job+"-0")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("metricsbench")
	ts := pcommon.NewTimestampFromTime(d.at(s))
	st := pcommon.NewTimestampFromTime(d.start.Add(-d.interval))

	m := sm.Metrics().AppendEmpty()
	m.SetName("http_requests")
	m.SetDescription("Requests served.")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dps := sum.DataPoints()
	dps.EnsureCapacity(len(readsPaths) * len(readsMethods) * len(readsStatuses))
	i := 0
	for _, p := range readsPaths {
		for _, me := range readsMethods {
			for _, stt := range readsStatuses {
				dp := dps.AppendEmpty()
				dp.SetStartTimestamp(st)
				dp.SetTimestamp(ts)
				w := uint64(1 + i%10)
				dp.SetDoubleValue(float64(readsMonotonic(w, readsHash(r, s, i, 1), s)))
				a := dp.Attributes()
				a.EnsureCapacity(3)
				a.PutStr("path", p)
				a.PutStr("method", me)
				a.PutStr("status", stt)
				i++
			}
		}
	}

	m = sm.Metrics().AppendEmpty()
	m.SetName("request_duration")
	m.SetUnit("s")
	m.SetDescription("Request latency.")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hdps := h.DataPoints()
	hdps.EnsureCapacity(len(readsPaths))
	for pi, p := range readsPaths {
		dp := hdps.AppendEmpty()
		dp.SetStartTimestamp(st)
		dp.SetTimestamp(ts)
		dp.ExplicitBounds().FromRaw(readsBounds)
		counts := make([]uint64, len(readsBounds)+1)
		var total uint64
		var sumV float64
		for b := range counts {
			w := uint64(1 + (b+pi)%4)
			counts[b] = readsMonotonic(w, readsHash(r, s, pi, 100+b), s)
			total += counts[b]
			upper := 10.0
			if b < len(readsBounds) {
				upper = readsBounds[b]
			}
			sumV += float64(counts[b]) * upper * 0.7
		}
		dp.BucketCounts().FromRaw(counts)
		dp.SetCount(total)
		dp.SetSum(sumV)
		dp.Attributes().PutStr("path", p)
	}

	m = sm.Metrics().AppendEmpty()
	m.SetName("queue_depth")
	m.SetDescription("Items waiting.")
	gdps := m.SetEmptyGauge().DataPoints()
	gdps.EnsureCapacity(len(readsQueues))
	for q, name := range readsQueues {
		dp := gdps.AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(math.Round(50 + 40*math.Sin(float64(s)/20+float64(q)) + float64(readsHash(r, s, q, 2)%10)))
		dp.Attributes().PutStr("queue", name)
	}
	return md
}

// ---------------------------------------------------------------------------
// Remote write: pdata -> Prometheus' translator -> prompb -> snappy

// readsCollector collects the samples Prometheus' translator appends.
type readsCollector struct {
	series map[string]*prompb.TimeSeries
	order  []string
	n      int
}

var _ storage.AppenderV2 = (*readsCollector)(nil)

func (c *readsCollector) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return 0, errors.New("native histograms are not used by this benchmark")
	}
	key := ls.String()
	ts := c.series[key]
	if ts == nil {
		ts = &prompb.TimeSeries{}
		ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		c.series[key] = ts
		c.order = append(c.order, key)
	}
	ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
	c.n++
	return 1, nil
}
func (c *readsCollector) Commit() error   { return nil }
func (c *readsCollector) Rollback() error { return nil }

// readsWriteRequest translates md as Prometheus' OTLP endpoint and our store
// do, and encodes it as a remote-write 1.0 request body.
func readsWriteRequest(md pmetric.Metrics) (body []byte, samples int, err error) {
	c := &readsCollector{series: map[string]*prompb.TimeSeries{}}
	conv := otlptranslator.NewPrometheusConverter(c)
	if _, err := conv.FromMetrics(context.Background(), md, otlptranslator.Settings{AddMetricSuffixes: true}); err != nil {
		return nil, 0, err
	}
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(c.order))}
	for _, k := range c.order {
		req.Timeseries = append(req.Timeseries, *c.series[k])
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, 0, err
	}
	return snappy.Encode(nil, raw), c.n, nil
}

// readsRequests are the encoded requests of a data set, per step.
type readsRequests struct {
	bodies  [][][]byte // [step][resource]
	samples int
	bytes   int
}

func buildReadsRequests(d readsDataset) (*readsRequests, error) {
	rr := &readsRequests{bodies: make([][][]byte, d.samples)}
	for s := range d.samples {
		rr.bodies[s] = make([][]byte, d.resources)
		for r := range d.resources {
			b, n, err := readsWriteRequest(d.batch(r, s))
			if err != nil {
				return nil, err
			}
			rr.bodies[s][r] = b
			rr.samples += n
			rr.bytes += len(b)
		}
	}
	return rr, nil
}

// ---------------------------------------------------------------------------
// Prometheus

type readsProm struct {
	cmd  *exec.Cmd
	pid  int
	url  string
	out  *bytes.Buffer
	done chan struct{}
}

func (b *readsBench) startPrometheus(name string) (*readsProm, error) {
	dir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte("global: {}\n"), 0o600); err != nil {
		return nil, err
	}
	addr, err := readsFreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{b.promBin,
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	}
	if b.cfg.pin {
		args = append([]string{b.taskset, "-c", b.cfg.serverCPUs}, args...)
	}
	p := &readsProm{url: "http://" + addr, out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.pid = p.cmd.Process.Pid // taskset execs prometheus: same PID
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("prometheus exited: %s", p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("prometheus not ready after 60s")
		}
	}
}

func (p *readsProm) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// metric sums the values of a metric family in Prometheus' /metrics.
func (p *readsProm) metric(name string) (float64, error) {
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		total += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("%s not in /metrics", name)
	}
	return total, sc.Err()
}

// gc makes Prometheus run a full GC (the pprof heap handler does with gc=1).
func (p *readsProm) gc() error {
	resp, err := http.Get(p.url + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/debug/pprof/heap: %s", resp.Status)
	}
	return nil
}

// readsMem is a memory snapshot of a server.
type readsMem struct {
	HeapInuse float64 `json:"heap_inuse"`
	HeapAlloc float64 `json:"heap_alloc"`
	RSS       float64 `json:"rss"`
}

func (p *readsProm) memory() (readsMem, error) {
	var m readsMem
	if err := p.gc(); err != nil {
		return m, err
	}
	if err := p.gc(); err != nil {
		return m, err
	}
	var err error
	if m.HeapInuse, err = p.metric("go_memstats_heap_inuse_bytes"); err != nil {
		return m, err
	}
	if m.HeapAlloc, err = p.metric("go_memstats_heap_alloc_bytes"); err != nil {
		return m, err
	}
	rss, err := procStatusKiB(p.pid, "VmRSS")
	m.RSS = float64(rss) * 1024
	return m, err
}

// send posts every request of rr to Prometheus, timestamp by timestamp.
func (b *readsBench) send(p *readsProm, rr *readsRequests) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.cfg.senders}}
	defer client.CloseIdleConnections()
	var firstErr error
	var mu sync.Mutex
	for _, step := range rr.bodies {
		work := make(chan []byte)
		var wg sync.WaitGroup
		for range min(b.cfg.senders, len(step)) {
			wg.Go(func() {
				for body := range work {
					if err := readsPost(client, p.url+"/api/v1/write", body); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				}
			})
		}
		for _, body := range step {
			work <- body
		}
		close(work)
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
	}
	return nil
}

func readsPost(client *http.Client, u string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("remote write: %s: %s", resp.Status, msg)
	}
	return nil
}

// ---------------------------------------------------------------------------
// The store child

// readsChildResult is what the child reports.
type readsChildResult struct {
	Samples      int64    `json:"samples"`
	Rejected     int64    `json:"rejected"`
	HeadSeries   uint64   `json:"head_series"`
	StageCPU     float64  `json:"stage_cpu_s"`
	DecodeCPU    float64  `json:"decode_cpu_s"`
	StageWall    float64  `json:"stage_wall_s"`
	GOMAXPROCS   int      `json:"gomaxprocs"`
	GCCycles     uint32   `json:"gc_cycles"`
	Others       float64  `json:"others"` // share of the server CPU used by others during Stage+Commit; -1: unknown
	MemBefore    readsMem `json:"mem_before"`
	MemAfter     readsMem `json:"mem_after"`
	GoVersion    string   `json:"go_version"`
	ProfileSaved string   `json:"profile,omitempty"`
}

// readsRusage returns the CPU time of this process (all threads).
func readsRusage() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func readsSelfMem() readsMem {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procStatusKiB(os.Getpid(), "VmRSS")
	return readsMem{HeapInuse: float64(ms.HeapInuse), HeapAlloc: float64(ms.HeapAlloc), RSS: float64(rss) * 1024}
}

// readsChildSteps is how many timestamps (of all resources) are generated,
// encoded and then ingested at a time: it bounds the pdata kept alive
// outside the store while the measured Stage+Commit runs.
const readsChildSteps = 4

func readsChild(cfg *readsConfig) error {
	series, samples := cfg.series, cfg.samples
	if cfg.child == "memory" {
		series, samples = cfg.memSeries, cfg.memSamples
	}
	d := newReadsDataset(series, samples, time.UnixMilli(cfg.startMillis), cfg.interval)
	if cfg.dir == "" {
		return errors.New("-dir is required for a child")
	}
	sc := store.DefaultConfig()
	sc.Path = cfg.dir
	st, err := store.Open(sc, zap.NewNop())
	if err != nil {
		return err
	}
	defer st.Close()

	res := readsChildResult{GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if cfg.child == "memory" {
		res.MemBefore = readsSelfMem()
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		res.ProfileSaved = cfg.cpuprofile
		defer f.Close()
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	ctx := context.Background()
	var decodeCPU, stageCPU, stageWall, busy time.Duration
	serverCPU, err := strconv.Atoi(cfg.serverCPUs)
	pinned := err == nil && cfg.pin
	busyOK := true
	var firstErr error
	for s0 := 0; s0 < d.samples; s0 += readsChildSteps {
		var encoded [][]byte
		pprof.Do(ctx, pprof.Labels("phase", "generate"), func(context.Context) {
			m := &pmetric.ProtoMarshaler{}
			for s := s0; s < min(s0+readsChildSteps, d.samples); s++ {
				for r := range d.resources {
					b, err := m.MarshalMetrics(d.batch(r, s))
					if err != nil && firstErr == nil {
						firstErr = err
					}
					encoded = append(encoded, b)
				}
			}
		})
		batches := make([]pmetric.Metrics, len(encoded))
		c0 := readsRusage()
		pprof.Do(ctx, pprof.Labels("phase", "decode"), func(context.Context) {
			u := &pmetric.ProtoUnmarshaler{}
			for i, b := range encoded {
				md, err := u.UnmarshalMetrics(b)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				batches[i] = md
			}
		})
		c1, w1 := readsRusage(), time.Now()
		busy0, busyErr0 := cpuBusy(serverCPU)
		pprof.Do(ctx, pprof.Labels("phase", "stage+commit"), func(ctx context.Context) {
			for i, md := range batches {
				txn, err := st.Stage(ctx, md)
				if err == nil {
					err = txn.Commit()
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				batches[i] = pmetric.Metrics{}
			}
		})
		c2 := readsRusage()
		busy1, busyErr1 := cpuBusy(serverCPU)
		stageWall += time.Since(w1)
		if busyErr0 != nil || busyErr1 != nil || !pinned {
			busyOK = false
		}
		busy += busy1 - busy0
		decodeCPU += c1 - c0
		stageCPU += c2 - c1
		if firstErr != nil {
			return firstErr
		}
	}
	if cfg.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	res.GCCycles = ms1.NumGC - ms0.NumGC
	res.Samples = st.Stats().Total()
	res.Rejected = st.Rejected()
	res.HeadSeries = st.HeadStats(0).NumSeries
	res.StageCPU, res.DecodeCPU, res.StageWall = stageCPU.Seconds(), decodeCPU.Seconds(), stageWall.Seconds()
	res.Others = -1
	if busyOK {
		res.Others = max(0, (busy-stageCPU).Seconds()/stageWall.Seconds())
	}
	if cfg.child == "memory" {
		res.MemAfter = readsSelfMem()
	}
	js, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Printf("%s%s\n", readsResultPrefix, js)
	if cfg.child == "memory" {
		return nil
	}

	// Serve the Prometheus API twice: results cache disabled and enabled.
	var addrs []string
	for _, cached := range []bool{false, true} {
		qc := query.DefaultConfig()
		qc.Cache.Enabled = cached
		eng, err := query.New(qc, st.Queryable(), zap.NewNop())
		if err != nil {
			return err
		}
		h, err := promapi.Handler(eng, st, "", nil)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	fmt.Printf("%snocache=%s cache=%s pid=%d\n", readsReadyPrefix, addrs[0], addrs[1], os.Getpid())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	return nil
}

// readsChildProc is a running store child.
type readsChildProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string
	result  readsChildResult
	nocache string
	cache   string
}

func (b *readsBench) startChild(kind string, startMillis int64, profile string) (*readsChildProc, error) {
	dir := filepath.Join(b.dir, "store-"+kind)
	args := []string{b.exe, "reads", "-child=" + kind, "-dir=" + dir,
		"-series=" + strconv.Itoa(b.cfg.series), "-samples=" + strconv.Itoa(b.cfg.samples),
		"-mem-series=" + strconv.Itoa(b.cfg.memSeries), "-mem-samples=" + strconv.Itoa(b.cfg.memSamples),
		"-interval=" + b.cfg.interval.String(), "-start-ms=" + strconv.FormatInt(startMillis, 10),
		"-server-cpus=" + b.cfg.serverCPUs, "-pin=" + strconv.FormatBool(b.cfg.pin)}
	if profile != "" {
		args = append(args, "-cpuprofile="+profile)
	}
	if b.cfg.pin {
		args = append([]string{b.taskset, "-c", b.cfg.serverCPUs}, args...)
	}
	c := &readsChildProc{lines: make(chan string, 4)}
	c.cmd = exec.Command(args[0], args[1:]...)
	c.cmd.Stderr = os.Stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	return c, nil
}

// wait reads the child's result and, for ingest-serve, its addresses.
func (c *readsChildProc) wait(serve bool) error {
	timeout := time.After(30 * time.Minute)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return errors.New("store child exited before it answered")
			}
			if js, ok := strings.CutPrefix(line, readsResultPrefix); ok {
				if err := json.Unmarshal([]byte(js), &c.result); err != nil {
					return err
				}
				if !serve {
					return nil
				}
			}
			if rest, ok := strings.CutPrefix(line, readsReadyPrefix); ok {
				for f := range strings.FieldsSeq(rest) {
					if v, ok := strings.CutPrefix(f, "nocache="); ok {
						c.nocache = "http://" + v
					}
					if v, ok := strings.CutPrefix(f, "cache="); ok {
						c.cache = "http://" + v
					}
				}
				return nil
			}
		case <-timeout:
			return errors.New("store child did not answer in 30 minutes")
		}
	}
}

func (c *readsChildProc) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// ---------------------------------------------------------------------------
// The run

type readsBench struct {
	cfg     *readsConfig
	exe     string
	taskset string
	promBin string
	dir     string
	out     io.Writer

	ingest    *readsIngestResult
	memory    *readsMemoryResult
	queries   []*readsQueryResult
	promVer   string
	loadStart string
}

type readsIngestResult struct {
	series, samples      int
	requests, reqBytes   int
	promCPU, promWall    time.Duration
	promIdle             float64 // CPU-s per s while idle
	promOthers           float64 // share of the server CPU used by others while sending; -1: unknown
	promAppended         float64
	ours                 readsChildResult
	oursPerCPU, promPerC float64
}

type readsMemoryResult struct {
	series                int
	samples               int
	promBefore, promAfter readsMem
	promSeries            float64
	ours                  readsChildResult
}

type readsQueryResult struct {
	query                string
	series, points       int
	match                string
	ours, prom, cached   []time.Duration
	cacheFirst           time.Duration
	cachedMatch          bool
	oursBytes, promBytes int
	// server CPU time summed over the measured runs
	oursCPU, promCPU, cachedCPU time.Duration
}

func (b *readsBench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "reads: "+format+"\n", args...)
}

func (b *readsBench) run() error {
	b.loadStart = readsLoadAvg()
	if !b.cfg.skipIngest {
		if err := b.runIngestAndQueries(); err != nil {
			return err
		}
	}
	if !b.cfg.skipMemory && b.cfg.memSeries > 0 {
		if err := b.runMemory(); err != nil {
			return err
		}
	}
	b.report(b.out)
	return nil
}

func (b *readsBench) runIngestAndQueries() error {
	cfg := b.cfg
	// Samples end 3 minutes ago (older than the cache's freshness limit),
	// 7s after the step grid.
	end := time.Now().Truncate(cfg.queryStep).Add(-3*time.Minute + 7*time.Second)
	start := end.Add(-time.Duration(cfg.samples-1) * cfg.interval)
	d := newReadsDataset(cfg.series, cfg.samples, start, cfg.interval)
	res := &readsIngestResult{series: d.series(), samples: d.totalSamples(), requests: d.resources * d.samples}
	b.ingest = res

	b.logf("building %d remote-write requests (%d series x %d samples)", res.requests, d.series(), d.samples)
	rr, err := buildReadsRequests(d)
	if err != nil {
		return err
	}
	res.reqBytes = rr.bytes
	if rr.samples != res.samples {
		return fmt.Errorf("translator produced %d samples, expected %d", rr.samples, res.samples)
	}

	prom, err := b.startPrometheus("prom-ingest")
	if err != nil {
		return err
	}
	defer prom.stop()
	if v, err := readsPromVersion(prom.url); err == nil {
		b.promVer = v
	}
	// Idle CPU of Prometheus, to see what its background costs.
	i0, _ := procCPU(prom.pid)
	time.Sleep(3 * time.Second)
	i1, _ := procCPU(prom.pid)
	res.promIdle = (i1 - i0).Seconds() / 3
	app0, _ := prom.metric("prometheus_tsdb_head_samples_appended_total") // absent until the first sample

	b.logf("sending to Prometheus")
	c0, err := procCPU(prom.pid)
	if err != nil {
		return err
	}
	busy0, busyOK := b.serverBusy()
	w0 := time.Now()
	if err := b.send(prom, rr); err != nil {
		return err
	}
	res.promWall = time.Since(w0)
	c1, err := procCPU(prom.pid)
	if err != nil {
		return err
	}
	res.promCPU = c1 - c0
	res.promOthers = -1
	if busy1, ok := b.serverBusy(); ok && busyOK {
		res.promOthers = max(0, (busy1-busy0-res.promCPU).Seconds()/res.promWall.Seconds())
	}
	app1, err := prom.metric("prometheus_tsdb_head_samples_appended_total")
	if err != nil {
		return err
	}
	res.promAppended = app1 - app0

	b.logf("ingesting into our store (child process)")
	child, err := b.startChild("ingest-serve", start.UnixMilli(), cfg.cpuprofile)
	if err != nil {
		return err
	}
	defer child.stop()
	if err := child.wait(true); err != nil {
		return err
	}
	res.ours = child.result
	res.oursPerCPU = float64(res.ours.Samples) / res.ours.StageCPU
	res.promPerC = res.promAppended / res.promCPU.Seconds()

	// (c) range queries over [qEnd-range, qEnd], qEnd on the step grid.
	qEnd := end.Truncate(cfg.queryStep)
	qStart := qEnd.Add(-cfg.queryRange)
	if qStart.Add(-10 * time.Minute).Before(start) {
		b.logf("warning: the data starts less than 10m before the query range; use more -samples")
	}
	b.logf("range queries: %d runs per query and side", cfg.runs)
	client := &http.Client{}
	for _, q := range readsQueries {
		qr, err := b.runQuery(client, q, qStart, qEnd, child, prom)
		if err != nil {
			return err
		}
		b.queries = append(b.queries, qr)
	}
	return nil
}

// serverBusy returns the busy time of the server CPU when it is a single CPU.
func (b *readsBench) serverBusy() (time.Duration, bool) {
	if !b.cfg.pin {
		return 0, false
	}
	cpu, err := strconv.Atoi(b.cfg.serverCPUs)
	if err != nil {
		return 0, false
	}
	d, err := cpuBusy(cpu)
	return d, err == nil
}

// readsLoadAvg returns the first three fields of /proc/loadavg.
func readsLoadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}

func readsPromVersion(base string) (string, error) {
	resp, err := http.Get(base + "/api/v1/status/buildinfo")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Version string `json:"version"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.Data.Version, nil
}

// readsGet runs one range query and returns its latency and body.
func readsGet(client *http.Client, base, q string, start, end time.Time, step time.Duration) (time.Duration, []byte, error) {
	params := url.Values{"query": {q},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	t0 := time.Now()
	resp, err := client.Get(base + "/api/v1/query_range?" + params.Encode())
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("%s: %s: %s", base, resp.Status, body)
	}
	return d, body, nil
}

// readsMatrix is a decoded matrix answer: series key -> points.
type readsMatrix map[string][][2]float64

func decodeReadsMatrix(body []byte) (readsMatrix, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("result type %q", r.Data.ResultType)
	}
	out := readsMatrix{}
	for _, s := range r.Data.Result {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range s.Metric {
				if !yield(k) {
					return
				}
			}
		})
		var kb strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&kb, "%s=%q,", k, s.Metric[k])
		}
		pts := make([][2]float64, 0, len(s.Values))
		for _, p := range s.Values {
			t, _ := p[0].(float64)
			vs, _ := p[1].(string)
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				return nil, err
			}
			pts = append(pts, [2]float64{t, v})
		}
		out[kb.String()] = pts
	}
	return out, nil
}

// compareReadsMatrix returns "" when a and b hold the same points (values
// equal to 1e-9 relative), or what differs.
func compareReadsMatrix(a, b readsMatrix) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d vs %d series", len(a), len(b))
	}
	for k, pa := range a {
		pb, ok := b[k]
		if !ok {
			return "series " + k + " missing"
		}
		if len(pa) != len(pb) {
			return fmt.Sprintf("%s: %d vs %d points", k, len(pa), len(pb))
		}
		for i := range pa {
			x, y := pa[i][1], pb[i][1]
			if pa[i][0] != pb[i][0] {
				return fmt.Sprintf("%s: timestamp %v vs %v", k, pa[i][0], pb[i][0])
			}
			if x != y && !(math.IsNaN(x) && math.IsNaN(y)) && math.Abs(x-y) > 1e-9*math.Max(math.Abs(x), math.Abs(y)) {
				return fmt.Sprintf("%s at %v: %v vs %v", k, pa[i][0], x, y)
			}
		}
	}
	return ""
}

func (b *readsBench) runQuery(client *http.Client, q string, start, end time.Time, child *readsChildProc, prom *readsProm) (*readsQueryResult, error) {
	step := b.cfg.queryStep
	qr := &readsQueryResult{query: q}
	// Warm-up (also the correctness check): one run of each side.
	_, ob, err := readsGet(client, child.nocache, q, start, end, step)
	if err != nil {
		return nil, err
	}
	_, pbody, err := readsGet(client, prom.url, q, start, end, step)
	if err != nil {
		return nil, err
	}
	om, err := decodeReadsMatrix(ob)
	if err != nil {
		return nil, err
	}
	pm, err := decodeReadsMatrix(pbody)
	if err != nil {
		return nil, err
	}
	qr.oursBytes, qr.promBytes = len(ob), len(pbody)
	qr.series = len(om)
	for _, p := range om {
		qr.points += len(p)
	}
	qr.match = compareReadsMatrix(om, pm)
	if qr.match == "" {
		qr.match = "same"
	}
	// Alternate the sides, the first side alternating too.
	for i := range b.cfg.runs {
		sides := []string{child.nocache, prom.url}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, base := range sides {
			pid := child.cmd.Process.Pid
			if base == prom.url {
				pid = prom.pid
			}
			c0, _ := procCPU(pid)
			d, _, err := readsGet(client, base, q, start, end, step)
			if err != nil {
				return nil, err
			}
			c1, _ := procCPU(pid)
			if base == prom.url {
				qr.prom = append(qr.prom, d)
				qr.promCPU += c1 - c0
			} else {
				qr.ours = append(qr.ours, d)
				qr.oursCPU += c1 - c0
			}
		}
	}
	// The cache: one miss that fills it, then repeated hits.
	d, cb, err := readsGet(client, child.cache, q, start, end, step)
	if err != nil {
		return nil, err
	}
	qr.cacheFirst = d
	c0, _ := procCPU(child.cmd.Process.Pid)
	for range b.cfg.runs {
		d, body, err := readsGet(client, child.cache, q, start, end, step)
		if err != nil {
			return nil, err
		}
		qr.cached = append(qr.cached, d)
		cb = body
	}
	c1, _ := procCPU(child.cmd.Process.Pid)
	qr.cachedCPU = c1 - c0
	cm, err := decodeReadsMatrix(cb)
	if err != nil {
		return nil, err
	}
	qr.cachedMatch = compareReadsMatrix(cm, om) == ""
	b.logf("%s: ours p50 %s, prometheus p50 %s, cached p50 %s, answers %s",
		q, readsPct(qr.ours, 50), readsPct(qr.prom, 50), readsPct(qr.cached, 50), qr.match)
	return qr, nil
}

func (b *readsBench) runMemory() error {
	cfg := b.cfg
	end := time.Now().Truncate(cfg.interval).Add(-time.Minute + 7*time.Second)
	start := end.Add(-time.Duration(cfg.memSamples-1) * cfg.interval)
	d := newReadsDataset(cfg.memSeries, cfg.memSamples, start, cfg.interval)
	res := &readsMemoryResult{series: d.series(), samples: d.samples}
	b.memory = res
	b.logf("memory: building %d requests (%d series x %d samples)", d.resources*d.samples, d.series(), d.samples)
	rr, err := buildReadsRequests(d)
	if err != nil {
		return err
	}
	prom, err := b.startPrometheus("prom-memory")
	if err != nil {
		return err
	}
	defer prom.stop()
	time.Sleep(2 * time.Second) // let start-up settle
	if res.promBefore, err = prom.memory(); err != nil {
		return err
	}
	if err := b.send(prom, rr); err != nil {
		return err
	}
	if res.promAfter, err = prom.memory(); err != nil {
		return err
	}
	if res.promSeries, err = prom.metric("prometheus_tsdb_head_series"); err != nil {
		return err
	}
	prom.stop()

	b.logf("memory: our store (child process)")
	child, err := b.startChild("memory", start.UnixMilli(), "")
	if err != nil {
		return err
	}
	defer child.stop()
	if err := child.wait(false); err != nil {
		return err
	}
	res.ours = child.result
	return nil
}

// ---------------------------------------------------------------------------
// Report

// readsPct returns the p-th percentile (nearest rank) of ds.
func readsPct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func readsMs(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 2, 64) }

func readsVerdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (b *readsBench) report(w io.Writer) {
	cfg := b.cfg
	n, model := cpuInfo()
	fmt.Fprintf(w, "\nMachine: %d x %s, %s, %s/%s; Prometheus %s (%s); load average at start %s, at end %s\n",
		n, model, runtime.Version(), runtime.GOOS, runtime.GOARCH, b.promVer, b.promBin, b.loadStart, readsLoadAvg())
	if cfg.pin {
		fmt.Fprintf(w, "Pinning: servers (Prometheus, store child) on CPU %s, sender/query client on CPU %s (taskset)\n", cfg.serverCPUs, cfg.clientCPUs)
	} else {
		fmt.Fprintln(w, "Pinning: none")
	}

	if r := b.ingest; r != nil {
		fmt.Fprintf(w, "\n### (a) Ingest: %d series x %d samples = %d samples (counters, gauges, classic histograms), %d batches of %d samples, in time order\n\n",
			r.series, cfg.samples, r.samples, r.requests, r.samples/max(1, r.requests))
		fmt.Fprintln(w, "| side | what is measured | samples stored | CPU-s | samples per CPU-s | vs Prometheus |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
		fmt.Fprintf(w, "| Prometheus %s | remote write: HTTP, snappy, protobuf decode, append, commit (process CPU, GOMAXPROCS 1) | %.0f | %.3f | %.0f | 1.00x |\n",
			b.promVer, r.promAppended, r.promCPU.Seconds(), r.promPerC)
		fmt.Fprintf(w, "| ours | Store.Stage (OTLP translator) + Txn.Commit from pdata (process CPU, GOMAXPROCS %d) | %d | %.3f | %.0f | %.2fx |\n",
			r.ours.GOMAXPROCS, r.ours.Samples, r.ours.StageCPU, r.oursPerCPU, r.oursPerCPU/r.promPerC)
		withDecode := float64(r.ours.Samples) / (r.ours.StageCPU + r.ours.DecodeCPU)
		fmt.Fprintf(w, "| ours + OTLP decode | the same plus pdata UnmarshalProto of the batches (informative) | %d | %.3f | %.0f | %.2fx |\n",
			r.ours.Samples, r.ours.StageCPU+r.ours.DecodeCPU, withDecode, withDecode/r.promPerC)
		if r.promOthers >= 0 {
			fmt.Fprintf(w, "\nOther processes used %.0f%% of the server CPU while Prometheus ingested", 100*r.promOthers)
			if r.ours.Others >= 0 {
				fmt.Fprintf(w, ", %.0f%% while our store ingested", 100*r.ours.Others)
			}
			fmt.Fprint(w, ".")
		}
		fmt.Fprintf(w, "\nPrometheus idle CPU %.3f CPU-s/s (included above, over %.1fs of sending); %d remote-write requests, %.1f MiB snappy; ours: %d GC cycles, %d rejected, %d head series, Stage+Commit wall %.2fs.\n",
			r.promIdle, r.promWall.Seconds(), r.requests, float64(r.reqBytes)/(1<<20), r.ours.GCCycles, r.ours.Rejected, r.ours.HeadSeries, r.ours.StageWall)
		fmt.Fprintf(w, "Target >= 1x: %s (%.2fx)\n", readsVerdict(r.oursPerCPU >= r.promPerC), r.oursPerCPU/r.promPerC)
	}

	if m := b.memory; m != nil {
		fmt.Fprintf(w, "\n### (b) Memory per active series: %d series x %d samples\n\n", m.series, m.samples)
		fmt.Fprintln(w, "| side | head series | heap in use, delta per series (B) | live heap, delta per series (B) | RSS delta per series (B) | heap in use vs Prometheus |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
		per := func(a, b float64) float64 { return (b - a) / float64(m.series) }
		pInuse := per(m.promBefore.HeapInuse, m.promAfter.HeapInuse)
		oInuse := per(m.ours.MemBefore.HeapInuse, m.ours.MemAfter.HeapInuse)
		fmt.Fprintf(w, "| Prometheus %s | %.0f | %.0f | %.0f | %.0f | 1.00x |\n", b.promVer, m.promSeries,
			pInuse, per(m.promBefore.HeapAlloc, m.promAfter.HeapAlloc), per(m.promBefore.RSS, m.promAfter.RSS))
		fmt.Fprintf(w, "| ours | %d | %.0f | %.0f | %.0f | %.2fx |\n", m.ours.HeadSeries,
			oInuse, per(m.ours.MemBefore.HeapAlloc, m.ours.MemAfter.HeapAlloc), per(m.ours.MemBefore.RSS, m.ours.MemAfter.RSS), oInuse/pInuse)
		fmt.Fprintln(w, "\nHeap figures after a forced GC on both sides (Prometheus: /debug/pprof/heap?gc=1, then go_memstats_*; ours: runtime.GC + ReadMemStats).")
		fmt.Fprintf(w, "Target <= Prometheus: %s (%.2fx)\n", readsVerdict(oInuse <= pInuse), oInuse/pInuse)
	}

	if len(b.queries) > 0 {
		fmt.Fprintf(w, "\n### (c) Range queries over %s at %s step, %d runs per side (ms, client-side, full HTTP round trip)\n\n", cfg.queryRange, cfg.queryStep, cfg.runs)
		fmt.Fprintln(w, "| query | series x points | answers | ours no cache p50 / p90 | Prometheus p50 / p90 | ours/Prometheus p50 | target no slower |")
		fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---|")
		allMet := true
		for _, q := range b.queries {
			ratio := readsPct(q.ours, 50).Seconds() / readsPct(q.prom, 50).Seconds()
			met := ratio <= 1
			allMet = allMet && met
			fmt.Fprintf(w, "| `%s` | %d x %d | %s | %s / %s | %s / %s | %.2fx | %s |\n", q.query, q.series, q.points/max(1, q.series), q.match,
				readsMs(readsPct(q.ours, 50)), readsMs(readsPct(q.ours, 90)), readsMs(readsPct(q.prom, 50)), readsMs(readsPct(q.prom, 90)), ratio, readsVerdict(met))
		}
		fmt.Fprintf(w, "\nTarget no slower (p50): %s\n", readsVerdict(allMet))
		fmt.Fprintln(w, "\nServer CPU per query (mean over the runs; /proc/PID/stat, 10ms ticks; less sensitive to other load than latency):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| query | ours no cache CPU-ms | Prometheus CPU-ms | ours/Prometheus | ours cache hit CPU-ms | response bytes ours / Prometheus |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
		for _, q := range b.queries {
			per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(cfg.runs) }
			fmt.Fprintf(w, "| `%s` | %.1f | %.1f | %.2fx | %.1f | %d / %d |\n", q.query, per(q.oursCPU), per(q.promCPU),
				q.oursCPU.Seconds()/q.promCPU.Seconds(), per(q.cachedCPU), q.oursBytes, q.promBytes)
		}
		fmt.Fprintln(w, "\nResults cache (ours, same repeated query):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| query | cache disabled p50 | cache enabled: first (miss) | cache enabled: hit p50 / p90 | speed-up p50 | target >= 5x | same answer |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|---|")
		allMet = true
		for _, q := range b.queries {
			sp := readsPct(q.ours, 50).Seconds() / readsPct(q.cached, 50).Seconds()
			allMet = allMet && sp >= 5
			fmt.Fprintf(w, "| `%s` | %s | %s | %s / %s | %.1fx | %s | %v |\n", q.query, readsMs(readsPct(q.ours, 50)), readsMs(q.cacheFirst),
				readsMs(readsPct(q.cached, 50)), readsMs(readsPct(q.cached, 90)), sp, readsVerdict(sp >= 5), q.cachedMatch)
		}
		fmt.Fprintf(w, "\nTarget cache >= 5x: %s\n", readsVerdict(allMet))
	}
}

// readsFreeAddr returns a 127.0.0.1 address that was free a moment ago.
func readsFreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
