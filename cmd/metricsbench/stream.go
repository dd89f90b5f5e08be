package main

// "metricsbench stream" measures StreamMetrics in one process: a
// metrics_service receiver (nop pipeline), a paced ingest generator and
// streamclient subscribers, all on this machine's cores.
//
// Latency: N subscribers (each a tenth of the points, or everything); the
// generator records -request-size points per RecordBatchMetrics at -rate
// points per second. A subscriber takes the receipt time of each batch; the
// latency of a point is its receipt time minus the time its
// RecordBatchMetrics call returned (the acknowledgement). A point finds its
// request by value: gauges carry the request number, a counter's running
// total is the number of requests of its generator so far. A point can
// arrive before its acknowledgement does (the hub publishes before the call
// returns): that counts as 0.
//
// Isolation: closed-loop ingest as fast as -clients clients go, with no
// subscriber, with one subscriber that never reads (best effort or at least
// once), and with one that reads; the modes alternate over -rounds and the
// report compares the medians.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metricsmodule/metricsmodule/client/streamclient"
	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
)

// streamBenchConfig holds the flags of "stream".
type streamBenchConfig struct {
	subscribers  int
	rate         float64
	requestSize  int
	batchSize    int
	batchTimeout time.Duration
	duration     time.Duration
	warmup       time.Duration
	qos          string
	compression  string
	generators   int
	selection    string

	isoClients  int
	isoRequest  int
	isoDuration time.Duration
	rounds      int
	modes       string
	skipLatency bool
	skipIso     bool
	profileDir  string
	maxOthers   float64
}

func parseStreamFlags(args []string) (*streamBenchConfig, error) {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	c := &streamBenchConfig{}
	fs.IntVar(&c.subscribers, "subscribers", 10, "latency: subscribers, each selecting every point")
	fs.Float64Var(&c.rate, "rate", 100_000, "latency: ingest rate, points per second")
	fs.IntVar(&c.requestSize, "request-size", 100, "latency: points per RecordBatchMetrics")
	fs.IntVar(&c.batchSize, "batch-size", 1000, "latency: stream batch_size")
	fs.DurationVar(&c.batchTimeout, "batch-timeout", 5*time.Millisecond, "latency: stream batch_timeout")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "latency: measured time")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "latency: unmeasured time before")
	fs.StringVar(&c.qos, "qos", "best_effort", "latency: best_effort, at_least_once or exactly_once")
	fs.StringVar(&c.compression, "compression", "none", "latency: none, gzip, snappy, lz4 or zstd")
	fs.IntVar(&c.generators, "generators", 4, "latency: concurrent generator connections")
	fs.StringVar(&c.selection, "select", "partition", "latency: what a subscriber selects: partition (subscriber i: the metric bench_metric_<i mod 10>, a tenth of the points) or all")
	fs.IntVar(&c.isoClients, "iso-clients", 4, "isolation: concurrent ingest clients")
	fs.IntVar(&c.isoRequest, "iso-request-size", 1000, "isolation: points per RecordBatchMetrics")
	fs.DurationVar(&c.isoDuration, "iso-duration", 5*time.Second, "isolation: time per trial")
	fs.IntVar(&c.rounds, "rounds", 3, "isolation: rounds of all modes")
	fs.StringVar(&c.modes, "modes", "none,stalled-be,stalled-alo,reading", "isolation: modes, comma separated")
	fs.StringVar(&c.profileDir, "profile", "", "write cpu.pprof, mutex.pprof and block.pprof of the whole run into this directory")
	fs.Float64Var(&c.maxOthers, "max-others", 0.15, "isolation: repeat a trial (up to 8 times, then leave it out) when other processes used more than this many cores (0: never)")
	fs.BoolVar(&c.skipLatency, "skip-latency", false, "skip the latency part")
	fs.BoolVar(&c.skipIso, "skip-isolation", false, "skip the isolation part")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.selection != "partition" && c.selection != "all" {
		return nil, fmt.Errorf("-select: %q is not one of partition, all", c.selection)
	}
	if c.subscribers < 1 || c.rate <= 0 || c.requestSize < 1 || c.generators < 1 || c.isoClients < 1 || c.rounds < 1 {
		return nil, errors.New("stream: -subscribers, -rate, -request-size, -generators, -iso-clients and -rounds must be positive")
	}
	return c, nil
}

func streamMain(args []string) error {
	cfg, err := parseStreamFlags(args)
	if err != nil {
		return err
	}
	if cfg.profileDir != "" {
		stopProfiles, err := streamProfiles(cfg.profileDir)
		if err != nil {
			return err
		}
		defer stopProfiles()
	}
	w := os.Stdout
	n, model := cpuInfo()
	fmt.Fprintf(w, "machine: %d CPUs (%s), GOMAXPROCS=%d, %s\n\n", n, model, runtime.GOMAXPROCS(0), runtime.Version())
	if !cfg.skipLatency {
		res, err := streamLatency(cfg)
		if err != nil {
			return err
		}
		res.report(w, cfg)
	}
	if !cfg.skipIso {
		res, err := streamIsolation(cfg)
		if err != nil {
			return err
		}
		streamIsoReport(w, cfg, res)
	}
	return nil
}

// streamServer is a receiver with a counting pipeline.
type streamServer struct {
	rcv    receiver.Metrics
	addr   string
	points atomic.Int64
}

func startStreamServer() (*streamServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s := &streamServer{addr: addr}
	sink, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		s.points.Add(int64(md.DataPointCount()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	f := metricsservicereceiver.NewFactory()
	c := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
	c.NetAddr.Endpoint = addr
	if err := confmap.Validate(c); err != nil {
		return nil, err
	}
	s.rcv, err = f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), c, sink)
	if err != nil {
		return nil, err
	}
	if err := s.rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *streamServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.rcv.Shutdown(ctx)
}

func streamDial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
}

// streamRequest builds a request of n points: counters and gauges over 10
// metrics, 4 labels each, as the ingest benchmark's 1000x4 shape.
func streamRequest(client, n int) *pb.RecordBatchMetricsRequest {
	req := &pb.RecordBatchMetricsRequest{Resource: &pb.Resource{Attributes: map[string]string{
		"service.name": "bench", "service.instance.id": fmt.Sprintf("gen-%d", client),
	}}}
	for i := 0; i < n; i++ {
		m := &pb.MetricData{
			Name: fmt.Sprintf("bench_metric_%d", i%10),
			Labels: map[string]string{
				"host":   fmt.Sprintf("host-%d", i/10%10),
				"path":   fmt.Sprintf("/api/v1/resource/%d", i/100),
				"method": "GET",
				"status": "200",
			},
			Value: float64(i),
		}
		if i%10 < 5 {
			m.Name += "_total"
			m.Type = pb.MetricType_METRIC_TYPE_COUNTER
			m.Value = 1
		} else {
			m.Type = pb.MetricType_METRIC_TYPE_GAUGE
		}
		req.Metrics = append(req.Metrics, m)
	}
	return req
}

var streamCodec = grpc.ForceCodecV2(grpccodec.Codec{})

// streamSample is the receipt of the points of one request in one batch:
// req is the request number (gauges), or -1 and gen, nth name the nth
// request of a generator (counters).
type streamSample struct {
	req  int32
	gen  int16
	nth  int32
	n    int32
	recv int64
}

type streamLatencyResult struct {
	samples       []streamSample
	acks          []atomic.Int64
	genReqs       [][]int32 // request numbers of each generator, in order
	requests      int64
	received      int64
	dropped       uint64
	beforeAck     int64
	notAcked      int64
	cpu           time.Duration
	others        time.Duration
	wall          time.Duration
	sent          int64
	perSubscriber []int64
}

func streamParse(name string, values map[string]int32) (int32, error) {
	v, ok := values[name]
	if !ok {
		return 0, fmt.Errorf("%q is not one of %v", name, slices.Sorted(func(yield func(string) bool) {
			for k := range values {
				if !yield(k) {
					return
				}
			}
		}))
	}
	return v, nil
}

func streamLatency(cfg *streamBenchConfig) (*streamLatencyResult, error) {
	qos, err := streamParse(cfg.qos, map[string]int32{"best_effort": 1, "at_least_once": 2, "exactly_once": 3})
	if err != nil {
		return nil, fmt.Errorf("-qos: %w", err)
	}
	compression, err := streamParse(cfg.compression, map[string]int32{"none": 1, "gzip": 2, "snappy": 3, "lz4": 4, "zstd": 5})
	if err != nil {
		return nil, fmt.Errorf("-compression: %w", err)
	}
	srv, err := startStreamServer()
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.stop() }()

	total := cfg.warmup + cfg.duration
	reqInterval := time.Duration(float64(time.Second) * float64(cfg.requestSize) / cfg.rate)
	maxReqs := int(total/reqInterval) + 1000
	res := &streamLatencyResult{
		acks: make([]atomic.Int64, maxReqs), perSubscriber: make([]int64, cfg.subscribers),
		genReqs: make([][]int32, cfg.generators),
	}
	measureFrom := atomic.Int64{}
	measureFrom.Store(1 << 62)

	// subscribers
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	subscribed := make(chan struct{}, cfg.subscribers)
	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < cfg.subscribers; i++ {
		conn, err := streamDial(srv.addr)
		if err != nil {
			return nil, err
		}
		conns = append(conns, conn)
		var once sync.Once
		local := make([]streamSample, 0, 1<<16)
		idx := i
		filter := &pb.MetricFilter{Names: []string{"bench_*"}}
		if cfg.selection == "partition" {
			filter.Names = []string{fmt.Sprintf("bench_metric_%d*", i%10)}
		}
		client, err := streamclient.New(conn, streamclient.Config{
			Filter: filter,
			Options: &pb.StreamOptions{
				BatchSize: uint32(cfg.batchSize), BatchTimeoutMs: uint32(cfg.batchTimeout.Milliseconds()),
				Qos: pb.QualityOfService(qos), Compression: pb.StreamCompression(compression),
				HeartbeatIntervalMs: 1000, BufferSize: 1000,
				SubscriptionId: fmt.Sprintf("bench-%d", i),
			},
			OnHeartbeat: func(*pb.Heartbeat) { once.Do(func() { subscribed <- struct{}{} }) },
			Handler: func(_ context.Context, b *pb.MetricBatch) error {
				now := time.Now().UnixNano()
				if now < measureFrom.Load() {
					return nil
				}
				// points of one request are adjacent in a batch
				var cur, next streamSample
				for _, m := range b.Metrics {
					next = streamSample{req: -1, recv: now}
					if m.Type == pb.MetricType_METRIC_TYPE_GAUGE {
						next.req = int32(m.Value)
					} else {
						var g int
						_, _ = fmt.Sscanf(m.Resource.GetAttributes()["service.instance.id"], "gen-%d", &g)
						next.gen, next.nth = int16(g), int32(m.Value)
					}
					if next.req != cur.req || next.gen != cur.gen || next.nth != cur.nth {
						if cur.n > 0 {
							local = append(local, cur)
						}
						cur = next
					}
					cur.n++
				}
				if cur.n > 0 {
					local = append(local, cur)
				}
				atomic.AddInt64(&res.perSubscriber[idx], int64(len(b.Metrics)))
				return nil
			},
		})
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			_ = client.Run(ctx)
			mu.Lock()
			res.samples = append(res.samples, local...)
			res.dropped += client.Stats().DroppedDatapoints
			mu.Unlock()
		})
	}
	for range cfg.subscribers {
		select {
		case <-subscribed:
		case <-time.After(10 * time.Second):
			return nil, errors.New("subscribers did not connect")
		}
	}

	// paced generator: request k goes out at start + k*interval
	start := time.Now()
	cpu0, busy0 := streamProcCPU(), streamSystemBusy()
	measureFrom.Store(start.Add(cfg.warmup).UnixNano())
	var next atomic.Int64
	var gwg sync.WaitGroup
	var genErr atomic.Value
	for g := 0; g < cfg.generators; g++ {
		conn, err := streamDial(srv.addr)
		if err != nil {
			return nil, err
		}
		conns = append(conns, conn)
		api := pb.NewMetricsServiceClient(conn)
		req := streamRequest(g, cfg.requestSize)
		var gaugesOf []*pb.MetricData
		for _, m := range req.Metrics {
			if m.Type == pb.MetricType_METRIC_TYPE_GAUGE {
				gaugesOf = append(gaugesOf, m)
			}
		}
		gwg.Go(func() {
			for {
				k := next.Add(1) - 1
				if int(k) >= maxReqs {
					return
				}
				at := start.Add(time.Duration(k) * reqInterval)
				if at.Sub(start) >= total {
					return
				}
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				for _, m := range gaugesOf {
					m.Value = float64(k)
				}
				if _, err := api.RecordBatchMetrics(context.Background(), req, streamCodec); err != nil {
					genErr.Store(err)
					return
				}
				res.acks[k].Store(time.Now().UnixNano())
				res.genReqs[g] = append(res.genReqs[g], int32(k))
			}
		})
	}
	gwg.Wait()
	res.wall = time.Since(start)
	res.cpu = streamProcCPU() - cpu0
	res.others = max(streamSystemBusy()-busy0-res.cpu, 0)
	if err, ok := genErr.Load().(error); ok {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	res.requests = min(next.Load(), int64(maxReqs))
	// let the last batches arrive: until nothing came for a second
	last, quiet := int64(-1), time.Now()
	for time.Since(quiet) < time.Second {
		var got int64
		for i := range res.perSubscriber {
			got += atomic.LoadInt64(&res.perSubscriber[i])
		}
		if got != last {
			last, quiet = got, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	res.sent = srv.points.Load()
	return res, nil
}

// streamSystemBusy is the busy time of all CPUs (/proc/stat), to tell
// how much CPU other processes took during a measurement.
func streamSystemBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ
}

// streamProcCPU is the CPU time of this process.
func streamProcCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *streamLatencyResult) report(w io.Writer, cfg *streamBenchConfig) {
	type lat struct {
		d time.Duration
		n int32
	}
	var lats []lat
	var points int64
	for _, s := range r.samples {
		req := s.req
		if req < 0 {
			if int(s.gen) >= len(r.genReqs) || s.nth < 1 || int(s.nth) > len(r.genReqs[s.gen]) {
				r.notAcked += int64(s.n)
				continue
			}
			req = r.genReqs[s.gen][s.nth-1]
		}
		if int(req) >= len(r.acks) {
			r.notAcked += int64(s.n)
			continue
		}
		ack := r.acks[req].Load()
		if ack == 0 {
			r.notAcked += int64(s.n)
			continue
		}
		d := time.Duration(s.recv - ack)
		if d < 0 {
			r.beforeAck += int64(s.n)
			d = 0
		}
		lats = append(lats, lat{d, s.n})
		points += int64(s.n)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i].d < lats[j].d })
	pct := func(p float64) time.Duration {
		target := int64(p * float64(points))
		var acc int64
		for _, l := range lats {
			acc += int64(l.n)
			if acc > target {
				return l.d
			}
		}
		if len(lats) == 0 {
			return 0
		}
		return lats[len(lats)-1].d
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	var delivered int64
	for _, n := range r.perSubscriber {
		delivered += n
	}
	fmt.Fprintf(w, "### Latency: acknowledgement to subscriber receipt\n\n")
	sel := "each a tenth of the points (one metric name)"
	if cfg.selection == "all" {
		sel = "each every point"
	}
	fmt.Fprintf(w, "%d subscribers selecting %s (qos %s, compression %s, batch_size %d, batch_timeout %s), ingest %.0f points/s in requests of %d, %s measured after %s warmup\n\n",
		cfg.subscribers, sel, cfg.qos, cfg.compression, cfg.batchSize, cfg.batchTimeout, cfg.rate, cfg.requestSize, cfg.duration, cfg.warmup)
	fmt.Fprintf(w, "| p50 | p90 | p99 | p99.9 | max | points measured | ingest achieved | delivered to subscribers (all together) | dropped (best effort) | CPU: this process | CPU: other processes |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d | %.0f points/s | %.0f points/s | %d | %.2f cores | %.2f cores |\n\n",
		ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)), ms(pct(0.999)), ms(pct(1)), points,
		float64(r.sent)/r.wall.Seconds(), float64(delivered)/(r.wall-cfg.warmup).Seconds(), r.dropped,
		r.cpu.Seconds()/r.wall.Seconds(), r.others.Seconds()/r.wall.Seconds())
	if r.beforeAck > 0 || r.notAcked > 0 {
		fmt.Fprintf(w, "(%d points arrived before their acknowledgement returned and count as 0; %d had no acknowledgement)\n\n", r.beforeAck, r.notAcked)
	}
}

// isolation

const (
	streamModeNone      = "no subscriber"
	streamModeStalledBE = "1 stalled subscriber (best effort)"
	streamModeStalledAL = "1 stalled subscriber (at least once)"
	streamModeReading   = "1 reading subscriber"
)

var streamModes = []string{streamModeNone, streamModeStalledBE, streamModeStalledAL, streamModeReading}

var streamModeFlags = map[string]string{
	"none": streamModeNone, "stalled-be": streamModeStalledBE, "stalled-alo": streamModeStalledAL, "reading": streamModeReading,
}

func (c *streamBenchConfig) isoModes() ([]string, error) {
	var out []string
	for _, m := range strings.Split(c.modes, ",") {
		mode, ok := streamModeFlags[strings.TrimSpace(m)]
		if !ok {
			return nil, fmt.Errorf("-modes: %q is not one of none, stalled-be, stalled-alo, reading", m)
		}
		out = append(out, mode)
	}
	return out, nil
}

// streamProfiles profiles the CPU, mutexes and blocking until the returned
// function is called.
func streamProfiles(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		for _, name := range []string{"mutex", "block"} {
			if out, err := os.Create(filepath.Join(dir, name+".pprof")); err == nil {
				_ = pprof.Lookup(name).WriteTo(out, 0)
				_ = out.Close()
			}
		}
	}, nil
}

type streamIsoTrial struct {
	mode   string
	rate   float64
	cpu    float64 // cores
	others float64 // cores used by other processes meanwhile
}

func streamIsolation(cfg *streamBenchConfig) ([]streamIsoTrial, error) {
	all, err := cfg.isoModes()
	if err != nil {
		return nil, err
	}
	var trials []streamIsoTrial
	for round := 0; round < cfg.rounds; round++ {
		modes := slices.Clone(all)
		if round%2 == 1 {
			slices.Reverse(modes)
		}
		for _, mode := range modes {
			for attempt := 1; ; attempt++ {
				t, err := streamIsoTrialRun(cfg, mode)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", mode, err)
				}
				fmt.Fprintf(os.Stderr, "round %d  %-38s %10.0f points/s  %.2f cores (others %.2f)\n", round+1, mode, t.rate, t.cpu, t.others)
				if cfg.maxOthers <= 0 || t.others <= cfg.maxOthers {
					trials = append(trials, t)
					break
				}
				if attempt == 8 {
					fmt.Fprintln(os.Stderr, "  other processes were busy in every attempt: this round has no trial of the mode")
					break
				}
				fmt.Fprintln(os.Stderr, "  other processes were busy: repeating the trial")
			}
		}
	}
	return trials, nil
}

func streamIsoTrialRun(cfg *streamBenchConfig, mode string) (streamIsoTrial, error) {
	srv, err := startStreamServer()
	if err != nil {
		return streamIsoTrial{}, err
	}
	defer func() { _ = srv.stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var swg sync.WaitGroup
	defer swg.Wait()
	defer cancel()

	switch mode {
	case streamModeStalledBE, streamModeStalledAL:
		// a client that never reads: 64 KiB windows, nothing received after
		// the response headers
		conn, err := streamDial(srv.addr, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		if err != nil {
			return streamIsoTrial{}, err
		}
		conns = append(conns, conn)
		opts := &pb.StreamOptions{BatchSize: 1000, BatchTimeoutMs: 5}
		if mode == streamModeStalledAL {
			opts.Qos = pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE
			opts.SubscriptionId = "stalled"
		}
		s, err := pb.NewMetricsServiceClient(conn).StreamMetrics(ctx, &pb.StreamMetricsRequest{Options: opts}, streamCodec)
		if err != nil {
			return streamIsoTrial{}, err
		}
		if _, err := s.Recv(); err != nil { // the first heartbeat: subscribed
			return streamIsoTrial{}, err
		}
	case streamModeReading:
		conn, err := streamDial(srv.addr)
		if err != nil {
			return streamIsoTrial{}, err
		}
		conns = append(conns, conn)
		subscribed := make(chan struct{})
		var once sync.Once
		client, err := streamclient.New(conn, streamclient.Config{
			Options:     &pb.StreamOptions{BatchSize: 1000, BatchTimeoutMs: 5},
			OnHeartbeat: func(*pb.Heartbeat) { once.Do(func() { close(subscribed) }) },
			Handler:     func(context.Context, *pb.MetricBatch) error { return nil },
		})
		if err != nil {
			return streamIsoTrial{}, err
		}
		swg.Go(func() { _ = client.Run(ctx) })
		<-subscribed
	}

	var wg sync.WaitGroup
	var stop atomic.Bool
	var sendErr atomic.Value
	for c := 0; c < cfg.isoClients; c++ {
		conn, err := streamDial(srv.addr)
		if err != nil {
			return streamIsoTrial{}, err
		}
		conns = append(conns, conn)
		api := pb.NewMetricsServiceClient(conn)
		req := streamRequest(c, cfg.isoRequest)
		wg.Go(func() {
			for !stop.Load() {
				if _, err := api.RecordBatchMetrics(context.Background(), req, streamCodec); err != nil {
					sendErr.Store(err)
					return
				}
			}
		})
	}
	// warm up for a second, then measure
	time.Sleep(time.Second)
	p0, cpu0, busy0, t0 := srv.points.Load(), streamProcCPU(), streamSystemBusy(), time.Now()
	time.Sleep(cfg.isoDuration)
	p1, cpu1, busy1, wall := srv.points.Load(), streamProcCPU(), streamSystemBusy(), time.Since(t0)
	stop.Store(true)
	wg.Wait()
	if err, ok := sendErr.Load().(error); ok {
		return streamIsoTrial{}, err
	}
	own := cpu1 - cpu0
	return streamIsoTrial{
		mode: mode, rate: float64(p1-p0) / wall.Seconds(), cpu: own.Seconds() / wall.Seconds(),
		others: max(busy1-busy0-own, 0).Seconds() / wall.Seconds(),
	}, nil
}

func streamIsoReport(w io.Writer, cfg *streamBenchConfig, trials []streamIsoTrial) {
	fmt.Fprintf(w, "### Ingest throughput with a stalled subscriber\n\n")
	fmt.Fprintf(w, "closed-loop ingest from %d clients, requests of %d points, %s per trial, %d rounds (median); subscribers select every point\n\n",
		cfg.isoClients, cfg.isoRequest, cfg.isoDuration, cfg.rounds)
	fmt.Fprintf(w, "| mode | ingest points/s (median) | vs no subscriber | CPU µs per point (this process) | CPU: this process | CPU: other processes | trials |\n|---|---|---|---|---|---|---|\n")
	med := func(mode string, f func(streamIsoTrial) float64) float64 {
		var v []float64
		for _, t := range trials {
			if t.mode == mode {
				v = append(v, f(t))
			}
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	base := med(streamModeNone, func(t streamIsoTrial) float64 { return t.rate })
	modes, _ := cfg.isoModes()
	for _, mode := range modes {
		r := med(mode, func(t streamIsoTrial) float64 { return t.rate })
		n := 0
		for _, t := range trials {
			if t.mode == mode {
				n++
			}
		}
		fmt.Fprintf(w, "| %s | %.0f | %.3fx | %.2f | %.2f cores | %.2f cores | %d |\n", mode, r, r/base,
			med(mode, func(t streamIsoTrial) float64 { return t.cpu / t.rate * 1e6 }),
			med(mode, func(t streamIsoTrial) float64 { return t.cpu }), med(mode, func(t streamIsoTrial) float64 { return t.others }), n)
	}
	fmt.Fprintln(w)
}
