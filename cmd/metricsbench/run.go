package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// otlpExportMethod is the gRPC method of OTLP metrics export.
const otlpExportMethod = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

// pinnedEnv marks a generator that already runs under taskset.
const pinnedEnv = "METRICSBENCH_PINNED"

// runConfig holds the flags of "run".
type runConfig struct {
	shapes      []payload.Shape
	sides       []string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	rate        float64
	rates       []float64 // offered loads to measure (each a cell); from -rates, else -rate
	counters    []bool    // counters as running totals (true) or increments, each a cell
	pin         bool
	serverCPUs  string
	clientCPUs  string
	cumulative  bool
	profileDir  string
	maxOthers   float64
	retries     int
}

func parseRunFlags(args []string) (*runConfig, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	shapes := fs.String("shapes", "testbed,1000x4", "request shapes, comma separated: testbed (100 metrics x 7 points), 1000x4 (1000 points, 4 labels)")
	sides := fs.String("sides", "ours,otlp", "sides, comma separated, in the order of the first round (later rounds alternate)")
	cfg := &runConfig{}
	fs.IntVar(&cfg.concurrency, "concurrency", 8, "concurrent clients, one gRPC connection each")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per trial")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds; the report shows the median")
	fs.Float64Var(&cfg.rate, "rate", 0, "offered load in datapoints/s over all clients; 0 sends as fast as the server answers")
	fs.BoolVar(&cfg.pin, "pin", true, "pin the server and the generator to different CPUs with taskset")
	fs.StringVar(&cfg.serverCPUs, "server-cpus", "0", "taskset CPU list of the server")
	fs.StringVar(&cfg.clientCPUs, "client-cpus", "1", "taskset CPU list of the generator")
	fs.BoolVar(&cfg.cumulative, "cumulative-counters", false, "send MetricsService counters as running totals instead of increments")
	rates := fs.String("rates", "", "offered loads to measure in one run, comma separated dp/s (0: as fast as the server answers); overrides -rate")
	counters := fs.String("counters", "", "counter encodings to measure in one run, comma separated: increments, totals; overrides -cumulative-counters")
	fs.StringVar(&cfg.profileDir, "cpuprofile", "", "after the rounds, run one more (unreported) trial per shape and side and save the server CPU profile to DIR/SIDE-SHAPE.pprof")
	fs.Float64Var(&cfg.maxOthers, "max-others", 0.10, "repeat a trial when other processes used more than this fraction of the server's CPU (pinned runs; 0: never)")
	fs.IntVar(&cfg.retries, "retries", 3, "most repetitions of a disturbed trial; the last one counts")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for s := range strings.SplitSeq(*shapes, ",") {
		sh, err := payload.ParseShape(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		cfg.shapes = append(cfg.shapes, sh)
	}
	for s := range strings.SplitSeq(*sides, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSides, s) {
			return nil, fmt.Errorf("side %q is not one of %v", s, allSides)
		}
		cfg.sides = append(cfg.sides, s)
	}
	cfg.rates = []float64{cfg.rate}
	if *rates != "" {
		cfg.rates = nil
		for s := range strings.SplitSeq(*rates, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("-rates: %q is not a rate in dp/s (0 or more)", s)
			}
			cfg.rates = append(cfg.rates, v)
		}
	}
	cfg.counters = []bool{cfg.cumulative}
	if *counters != "" {
		cfg.counters = nil
		for s := range strings.SplitSeq(*counters, ",") {
			switch strings.TrimSpace(s) {
			case "increments":
				cfg.counters = append(cfg.counters, false)
			case "totals":
				cfg.counters = append(cfg.counters, true)
			default:
				return nil, fmt.Errorf("-counters: %q is not one of increments, totals", s)
			}
		}
	}
	if cfg.concurrency < 1 || cfg.rounds < 1 || cfg.duration <= 0 || cfg.warmup < 0 || cfg.rate < 0 {
		return nil, errors.New("concurrency and rounds must be positive, duration positive, warmup and rate not negative")
	}
	return cfg, nil
}

func runMain(args []string) error {
	cfg, err := parseRunFlags(args)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	taskset, _ := exec.LookPath("taskset")
	if cfg.pin && taskset == "" {
		fmt.Fprintln(os.Stderr, "metricsbench: taskset not found; running unpinned")
		cfg.pin = false
	}
	if cfg.pin && runtime.NumCPU() < 2 && os.Getenv(pinnedEnv) == "" {
		fmt.Fprintln(os.Stderr, "metricsbench: fewer than 2 CPUs; running unpinned")
		cfg.pin = false
	}
	if cfg.pin && os.Getenv(pinnedEnv) == "" {
		// Re-execute under taskset so that every thread of the generator,
		// and its GOMAXPROCS, follow the CPU list.
		cmd := exec.Command(taskset, append([]string{"-c", cfg.clientCPUs, exe, "run"}, args...)...)
		cmd.Env = append(os.Environ(), pinnedEnv+"=1")
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
	r := &runner{cfg: cfg, exe: exe, taskset: taskset}
	return r.run()
}

// runner runs the trials of one "run".
type runner struct {
	cfg     *runConfig
	exe     string
	taskset string
}

// trial is the measurement of one side and shape in one round.
type trial struct {
	round       int
	side        string
	shape       payload.Shape
	rate        float64 // offered dp/s, 0: as fast as the server answers
	cumulative  bool    // MetricsService counters as running totals
	perRequest  int
	wall        time.Duration
	datapoints  int64
	serverCPU   time.Duration
	clientCPU   time.Duration
	otherCPU    time.Duration // busy time of the server's CPU not spent by the server; -1: unknown
	disturbed   bool          // otherCPU stayed above -max-others after the retries
	hwmKiB      int64
	serverProcs string
	errors      int64
	firstErr    error
}

// String is the progress line of the trial.
func (t *trial) String() string {
	other := "?"
	if t.otherCPU >= 0 {
		other = fmt.Sprintf("%.0f%%", 100*t.otherCPU.Seconds()/t.wall.Seconds())
	}
	return fmt.Sprintf("round %d %-7s %-4s %9.0f dp/s %6.3f CPU-s/1M dp %9.0f dp/CPU-s | CPU: server %3.0f%% (GOMAXPROCS %s), others on its core %s, generator %3.0f%% | peak RSS %5.1f MiB",
		t.round, t.cellName(), t.side, t.dpPerSec(), t.cpuPerMillion(), t.dpPerCPUSec(),
		100*t.serverCPU.Seconds()/t.wall.Seconds(), t.serverProcs, other,
		100*t.clientCPU.Seconds()/t.wall.Seconds(), float64(t.hwmKiB)/1024)
}

// cell is one measured condition: a shape at a load with a counter encoding.
type cell struct {
	shape      payload.Shape
	rate       float64
	cumulative bool
}

func (c cell) String() string {
	load := "max"
	if c.rate > 0 {
		load = strconv.FormatFloat(c.rate/1000, 'f', -1, 64) + "k dp/s"
	}
	counters := "increments"
	if c.cumulative {
		counters = "totals"
	}
	return string(c.shape) + ", " + load + ", " + counters
}

func (t *trial) cell() cell { return cell{t.shape, t.rate, t.cumulative} }

// cellName is the trial's cell, named by its shape alone when the run
// measures one load and one counter encoding.
func (t *trial) cellName() string {
	if t.rate == 0 && !t.cumulative {
		return string(t.shape)
	}
	return t.cell().String()
}

// cells lists the cells of the run: every shape at every load with every
// counter encoding.
func (cfg *runConfig) cells() []cell {
	var out []cell
	for _, sh := range cfg.shapes {
		for _, rate := range cfg.rates {
			for _, cum := range cfg.counters {
				out = append(out, cell{sh, rate, cum})
			}
		}
	}
	return out
}

// cellName is the name of c in the report (see trial.cellName).
func (cfg *runConfig) cellName(c cell) string {
	if len(cfg.rates) == 1 && len(cfg.counters) == 1 {
		return string(c.shape)
	}
	return c.String()
}

func (t *trial) dpPerSec() float64 { return float64(t.datapoints) / t.wall.Seconds() }

func (t *trial) cpuPerMillion() float64 {
	return t.serverCPU.Seconds() / float64(t.datapoints) * 1e6
}

func (t *trial) dpPerCPUSec() float64 { return float64(t.datapoints) / t.serverCPU.Seconds() }

func (r *runner) run() error {
	cfg := r.cfg
	ncpu, model := cpuInfo()
	fmt.Printf("# metricsbench: %d CPUs (%s), %s, %s/%s, generator GOMAXPROCS=%d\n",
		ncpu, model, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	pinning := "unpinned"
	if cfg.pin {
		pinning = fmt.Sprintf("server on CPU %s, generator on CPU %s (taskset)", cfg.serverCPUs, cfg.clientCPUs)
	}
	var loads, encodings []string
	for _, rate := range cfg.rates {
		if rate > 0 {
			loads = append(loads, fmt.Sprintf("%.0f dp/s offered", rate))
		} else {
			loads = append(loads, "as fast as the server answers")
		}
	}
	for _, cum := range cfg.counters {
		if cum {
			encodings = append(encodings, "running totals")
		} else {
			encodings = append(encodings, "increments")
		}
	}
	load, counters := strings.Join(loads, " / "), strings.Join(encodings, " / ")
	fmt.Printf("# %s; %d clients; %s; warmup %s, measured %s, %d rounds; MetricsService counters as %s\n",
		pinning, cfg.concurrency, load, cfg.warmup, cfg.duration, cfg.rounds, counters)

	type payloadKey struct {
		shape      payload.Shape
		cumulative bool
	}
	payloads := map[payloadKey][]payload.Payload{}
	for _, c := range cfg.cells() {
		k := payloadKey{c.shape, c.cumulative}
		if payloads[k] != nil {
			continue
		}
		ps, err := buildPayloads(c.shape, cfg.concurrency, c.cumulative)
		if err != nil {
			return err
		}
		payloads[k] = ps
	}

	var trials []*trial
	for round := 1; round <= cfg.rounds; round++ {
		for _, c := range cfg.cells() {
			sides := slices.Clone(cfg.sides)
			if round%2 == 0 {
				slices.Reverse(sides)
			}
			for _, side := range sides {
				var t *trial
				for attempt := 0; ; attempt++ {
					var err error
					t, err = r.trial(round, side, c, payloads[payloadKey{c.shape, c.cumulative}], "")
					if err != nil {
						return fmt.Errorf("round %d, %s, %s: %w", round, c, side, err)
					}
					busy := t.otherCPU.Seconds() / t.wall.Seconds()
					if cfg.maxOthers <= 0 || t.otherCPU < 0 || busy <= cfg.maxOthers {
						break
					}
					if attempt == cfg.retries {
						t.disturbed = true
						break
					}
					fmt.Fprintf(os.Stderr, "%v  -> other processes took %.0f%% of the server's CPU; repeating\n", t, 100*busy)
					time.Sleep(5 * time.Second)
				}
				fmt.Fprintln(os.Stderr, t)
				trials = append(trials, t)
			}
		}
	}
	report(os.Stdout, cfg, trials)

	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
		for _, sh := range cfg.shapes {
			for _, side := range cfg.sides {
				path := filepath.Join(cfg.profileDir, side+"-"+string(sh)+".pprof")
				c := cell{sh, cfg.rates[0], cfg.counters[0]}
				if _, err := r.trial(0, side, c, payloads[payloadKey{sh, c.cumulative}], path); err != nil {
					return fmt.Errorf("profile %s %s: %w", sh, side, err)
				}
				fmt.Printf("# CPU profile of the %s server at %s: %s\n", side, sh, path)
			}
		}
	}
	return nil
}

// buildPayloads encodes one request per client.
func buildPayloads(sh payload.Shape, clients int, cumulative bool) ([]payload.Payload, error) {
	ts := time.Now()
	out := make([]payload.Payload, clients)
	for c := range clients {
		p, err := payload.Build(sh, payload.Options{Client: c, Time: ts, CumulativeCounters: cumulative})
		if err != nil {
			return nil, err
		}
		out[c] = p
	}
	return out, nil
}

// serverProc is a running server subprocess.
type serverProc struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	pid       int
	grpcAddr  string
	statsAddr string
	procs     string // the server's GOMAXPROCS
}

func (r *runner) startServer(side string) (*serverProc, error) {
	args := []string{r.exe, "server", "-side", side}
	if r.cfg.pin {
		args = append([]string{r.taskset, "-c", r.cfg.serverCPUs}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, readyPrefix) {
				continue
			}
			for f := range strings.FieldsSeq(line) {
				if v, ok := strings.CutPrefix(f, "grpc="); ok {
					p.grpcAddr = v
				}
				if v, ok := strings.CutPrefix(f, "stats="); ok {
					p.statsAddr = v
				}
				if v, ok := strings.CutPrefix(f, "gomaxprocs="); ok {
					p.procs = v
				}
			}
			ready <- nil
			_, _ = io.Copy(io.Discard, stdout)
			return
		}
		ready <- errors.New("server exited before it was ready")
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("server not ready after 30s")
	}
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// stop closes the server's stdin, which shuts it down, and waits for it.
func (p *serverProc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func (p *serverProc) stats() (stats, error) {
	var s stats
	resp, err := http.Get("http://" + p.statsAddr + "/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// profile saves a CPU profile of the server over d to path.
func (p *serverProc) profile(d time.Duration, path string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.statsAddr, int(d.Round(time.Second).Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// client sends one pre-encoded request over its own connection.
type client struct {
	conn   *grpc.ClientConn
	method string
	frame  rawFrame
	points int
}

// trial measures one side and shape on a fresh server. With profilePath set
// the server's CPU profile of the measured window is saved there.
func (r *runner) trial(round int, side string, c cell, payloads []payload.Payload, profilePath string) (*trial, error) {
	cfg := r.cfg
	srv, err := r.startServer(side)
	if err != nil {
		return nil, err
	}
	defer srv.stop()

	clients := make([]*client, len(payloads))
	for i, p := range payloads {
		c, err := newClient(srv.grpcAddr, side, p)
		if err != nil {
			return nil, err
		}
		defer c.conn.Close()
		clients[i] = c
	}
	// One checked request per client: the server must accept every point.
	var acked atomic.Int64
	for _, c := range clients {
		if err := c.check(context.Background(), side); err != nil {
			return nil, fmt.Errorf("first request: %w", err)
		}
		acked.Add(int64(c.points))
	}

	t := &trial{round: round, side: side, shape: c.shape, rate: c.rate, cumulative: c.cumulative, perRequest: payloads[0].DataPoints, serverProcs: srv.procs}
	var (
		stop     atomic.Bool
		errCount atomic.Int64
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	interval := time.Duration(0)
	if c.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(len(clients)*t.perRequest) / c.rate)
	}
	for _, c := range clients {
		wg.Go(func() {
			next := time.Now()
			for !stop.Load() {
				if interval > 0 {
					now := time.Now()
					if d := next.Sub(now); d > 0 {
						time.Sleep(d)
					} else if -d > interval {
						next = now // fell behind: do not burst to catch up
					}
					next = next.Add(interval)
				}
				if err := c.send(context.Background()); err != nil {
					errCount.Add(1)
					errOnce.Do(func() { t.firstErr = err })
					continue
				}
				acked.Add(int64(c.points))
			}
		})
	}

	time.Sleep(cfg.warmup)
	s0, err := srv.stats()
	if err != nil {
		stop.Store(true)
		wg.Wait()
		return nil, err
	}
	busy0, busyOK := r.serverCPUBusy()
	cpu0, err0 := procCPU(srv.pid)
	self0, errSelf0 := selfCPU()
	w0 := time.Now()
	if profilePath != "" {
		err = srv.profile(cfg.duration, profilePath)
	} else {
		time.Sleep(cfg.duration)
	}
	s1, errStats := srv.stats()
	cpu1, err1 := procCPU(srv.pid)
	busy1, _ := r.serverCPUBusy()
	self1, errSelf1 := selfCPU()
	t.wall = time.Since(w0)
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(err, err0, err1, errSelf0, errSelf1, errStats); err != nil {
		return nil, err
	}
	t.datapoints = s1.DataPoints - s0.DataPoints
	t.serverCPU = cpu1 - cpu0
	t.clientCPU = self1 - self0
	if busyOK {
		t.otherCPU = max(busy1-busy0-t.serverCPU, 0)
	} else {
		t.otherCPU = -1
	}
	t.errors = errCount.Load()
	if t.errors > 0 {
		return nil, fmt.Errorf("%d failed requests, the first: %w", t.errors, t.firstErr)
	}
	// Every acknowledged datapoint reached the sink, and nothing else did.
	final, err := srv.stats()
	if err != nil {
		return nil, err
	}
	if final.DataPoints != acked.Load() {
		return nil, fmt.Errorf("sink counted %d datapoints, the server acknowledged %d", final.DataPoints, acked.Load())
	}
	if t.hwmKiB, err = procStatusKiB(srv.pid, "VmHWM"); err != nil {
		return nil, err
	}
	if t.datapoints == 0 || t.serverCPU == 0 {
		return nil, errors.New("no datapoints or no server CPU time in the measured window")
	}
	return t, nil
}

// serverCPUBusy returns the busy time of the server's CPU when the server is
// pinned to a single CPU.
func (r *runner) serverCPUBusy() (time.Duration, bool) {
	if !r.cfg.pin {
		return 0, false
	}
	cpu, err := strconv.Atoi(r.cfg.serverCPUs)
	if err != nil {
		return 0, false
	}
	d, err := cpuBusy(cpu)
	return d, err == nil
}

// selfCPU returns the CPU time of this process.
func selfCPU() (time.Duration, error) { return procCPU(os.Getpid()) }

func newClient(addr, side string, p payload.Payload) (*client, error) {
	c := &client{points: p.DataPoints}
	var err error
	if speaksOTLP(side) {
		c.method = otlpExportMethod
		c.frame.b, err = p.OTLP.MarshalProto()
	} else {
		c.method = pb.MetricsService_RecordBatchMetrics_FullMethodName
		c.frame.b, err = p.Ours.MarshalVT()
	}
	if err != nil {
		return nil, err
	}
	c.conn, err = grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *client) send(ctx context.Context) error {
	var resp rawFrame
	return c.conn.Invoke(ctx, c.method, &c.frame, &resp)
}

// check sends one request and verifies from the response that every point
// was accepted.
func (c *client) check(ctx context.Context, side string) error {
	resp := rawFrame{keep: true}
	if err := c.conn.Invoke(ctx, c.method, &c.frame, &resp); err != nil {
		return err
	}
	switch {
	case !speaksOTLP(side):
		var r pb.RecordBatchMetricsResponse
		if err := r.UnmarshalVT(resp.b); err != nil {
			return err
		}
		if int(r.AcceptedCount) != c.points || r.RejectedCount != 0 || r.GetStats().GetDatapointsAccepted() != uint64(c.points) {
			return fmt.Errorf("accepted %d items (%d datapoints), rejected %d, of %d",
				r.AcceptedCount, r.GetStats().GetDatapointsAccepted(), r.RejectedCount, c.points)
		}
	default:
		r := pmetricotlp.NewExportResponse()
		if err := r.UnmarshalProto(resp.b); err != nil {
			return err
		}
		if n := r.PartialSuccess().RejectedDataPoints(); n != 0 {
			return fmt.Errorf("rejected %d datapoints: %s", n, r.PartialSuccess().ErrorMessage())
		}
	}
	return nil
}

// rawFrame is an encoded protobuf message.
type rawFrame struct {
	b    []byte
	keep bool // Unmarshal keeps a copy of the response
}

// rawCodec sends rawFrame bytes as they are, so requests are encoded once,
// before the load; it answers to the "proto" content subtype, so servers
// decode the frames with their usual codec.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*rawFrame)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(f.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*rawFrame)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	if f.keep {
		f.b = data.Materialize()
	}
	return nil
}

func (rawCodec) Name() string { return "proto" }

// summary is the median of the trials of one shape and side.
type summary struct {
	perRequest    int
	dpPerSec      float64
	cpuPerMillion float64
	hwmMiB        float64
	serverUtil    float64
	otherUtil     float64 // -1: unknown
	clientUtil    float64
}

// dpPerCPUSec is the number of datapoints per server CPU-second.
func (s *summary) dpPerCPUSec() float64 { return 1e6 / s.cpuPerMillion }

func summarize(ts []*trial) *summary {
	return &summary{
		perRequest:    ts[0].perRequest,
		dpPerSec:      median(ts, (*trial).dpPerSec),
		cpuPerMillion: median(ts, (*trial).cpuPerMillion),
		hwmMiB:        median(ts, func(t *trial) float64 { return float64(t.hwmKiB) / 1024 }),
		serverUtil:    median(ts, func(t *trial) float64 { return t.serverCPU.Seconds() / t.wall.Seconds() }),
		clientUtil:    median(ts, func(t *trial) float64 { return t.clientCPU.Seconds() / t.wall.Seconds() }),
		otherUtil: median(ts, func(t *trial) float64 {
			if t.otherCPU < 0 {
				return -1
			}
			return t.otherCPU.Seconds() / t.wall.Seconds()
		}),
	}
}

// report prints the medians of the trials as Markdown tables.
func report(w io.Writer, cfg *runConfig, trials []*trial) {
	type key struct {
		cell cell
		side string
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Medians of %d rounds:\n\n", cfg.rounds)
	fmt.Fprintln(w, "| shape | dp/request | side | dp/s | server CPU-s per 1M dp | dp per server CPU-s | peak RSS (MiB) | server CPU | others on server core | generator CPU |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	med := map[key]*summary{}
	for _, c := range cfg.cells() {
		for _, side := range cfg.sides {
			var ts []*trial
			for _, t := range trials {
				if t.cell() == c && t.side == side {
					ts = append(ts, t)
				}
			}
			if len(ts) == 0 {
				continue
			}
			m := summarize(ts)
			med[key{c, side}] = m
			other := "n/a"
			if m.otherUtil >= 0 {
				other = fmt.Sprintf("%.0f%%", 100*m.otherUtil)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %.0f | %.3f | %.0f | %.1f | %.0f%% | %s | %.0f%% |\n",
				cfg.cellName(c), m.perRequest, side, m.dpPerSec, m.cpuPerMillion, m.dpPerCPUSec(), m.hwmMiB, 100*m.serverUtil, other, 100*m.clientUtil)
		}
	}
	// each side of ours against the receiver it is compared with
	pairs := [][2]string{{sideOurs, sideOTLP}, {sideOursBare, sideOTLP}, {sideOurs, sideOTLPStore}}
	header := false
	for _, p := range pairs {
		if !slices.Contains(cfg.sides, p[0]) || !slices.Contains(cfg.sides, p[1]) {
			continue
		}
		if !header {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Ratios; a round's ratio compares two trials run one after the other:")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| shape | ratio | dp per server CPU-s: median of the rounds' ratios | the rounds' ratios | dp per server CPU-s: ratio of the medians | dp/s: ratio of the medians | peak RSS: ratio of the medians |")
			fmt.Fprintln(w, "|---|---|---:|---|---:|---:|---:|")
			header = true
		}
		for _, c := range cfg.cells() {
			o, x := med[key{c, p[0]}], med[key{c, p[1]}]
			if o == nil || x == nil {
				continue
			}
			var ratios []float64
			var perRound []string
			for round := 1; round <= cfg.rounds; round++ {
				var ro, rx *trial
				for _, t := range trials {
					if t.cell() != c || t.round != round {
						continue
					}
					switch t.side {
					case p[0]:
						ro = t
					case p[1]:
						rx = t
					}
				}
				if ro != nil && rx != nil {
					q := ro.dpPerCPUSec() / rx.dpPerCPUSec()
					ratios = append(ratios, q)
					perRound = append(perRound, strconv.FormatFloat(q, 'f', 2, 64))
				}
			}
			fmt.Fprintf(w, "| %s | %s/%s | %.2fx | %s | %.2fx | %.2fx | %.2fx |\n", cfg.cellName(c), p[0], p[1], medianOf(ratios), strings.Join(perRound, ", "),
				o.dpPerCPUSec()/x.dpPerCPUSec(), o.dpPerSec/x.dpPerSec, o.hwmMiB/x.hwmMiB)
		}
	}
	disturbed := 0
	for _, t := range trials {
		if t.disturbed {
			disturbed++
		}
	}
	if disturbed > 0 {
		fmt.Fprintf(w, "\n%d of %d trials kept more than %.0f%% of other load on the server's CPU after %d repetitions.\n",
			disturbed, len(trials), 100*cfg.maxOthers, cfg.retries)
	}
}

// median returns the median of f over ts.
func median(ts []*trial, f func(*trial) float64) float64 {
	vs := make([]float64, len(ts))
	for i, t := range ts {
		vs[i] = f(t)
	}
	return medianOf(vs)
}

// medianOf returns the median of vs (0 when empty), sorting vs.
func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
