package main

// "metricsbench fleet" measures the ingest of a fleet of collectors in
// shared store mode on this machine: for 1, 2 and 3 nodes (-nodes) it
// starts a fresh VictoriaMetrics (the shared backend, a subprocess) and
// that many metrics_service receivers with their metrics_store pipelines
// (in this process, each writing to the backend before it answers), and
// sends RecordBatchMetrics of counters from -concurrency clients spread
// round-robin over the nodes, as a load balancer would (or, -affinity, each
// series always to one node), for -duration. It
// reports acknowledged datapoints per second, the efficiency per node
// (throughput per node relative to one node), and the CPU-seconds per
// million datapoints of this process (the nodes and the generator) and of
// the backend. The first row (-local) is one node with its local store
// only: the cost of the synchronous remote write is the difference.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

type fleetBenchConfig struct {
	nodes       []int
	duration    time.Duration
	concurrency int
	batch       int
	series      int
	vm          string
	affinity    bool
}

func fleetMain(args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	cfg := &fleetBenchConfig{}
	nodes := fs.String("nodes", "1,2,3", "fleet sizes to measure")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "load per fleet size")
	fs.IntVar(&cfg.concurrency, "concurrency", 8, "concurrent clients (spread over the nodes)")
	fs.IntVar(&cfg.batch, "batch", 500, "counters per RecordBatchMetrics")
	fs.IntVar(&cfg.series, "series", 2000, "series per client")
	fs.StringVar(&cfg.vm, "vm", "victoria-metrics", "VictoriaMetrics binary")
	fs.BoolVar(&cfg.affinity, "affinity", false, "send each series always to the same node (a load balancer with series affinity); default: round-robin per request, so every series reaches every node")
	local := fs.Bool("local", true, "measure one node with its local store only (no shared store) first, as the baseline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-nodes: %q is not a list of positive numbers", *nodes)
		}
		cfg.nodes = append(cfg.nodes, n)
	}
	if cfg.batch < 1 || cfg.series < cfg.batch || cfg.concurrency < 1 {
		return errors.New("-batch must be positive, -series at least -batch, -concurrency positive")
	}
	var results []fleetResult
	if *local {
		r, err := fleetTrial(cfg, 1, false)
		if err != nil {
			return fmt.Errorf("1 node, local store: %w", err)
		}
		results = append(results, r)
	}
	for _, n := range cfg.nodes {
		r, err := fleetTrial(cfg, n, true)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		results = append(results, r)
	}
	fleetReport(os.Stdout, cfg, results)
	return nil
}

type fleetResult struct {
	nodes      int
	shared     bool
	datapoints int64
	errors     int64
	wall       time.Duration
	selfCPU    time.Duration
	backendCPU time.Duration
}

func (r fleetResult) dpPerSec() float64 { return float64(r.datapoints) / r.wall.Seconds() }

// victoriaProc is a VictoriaMetrics subprocess.
type victoriaProc struct {
	cmd *exec.Cmd
	url string
	dir string
}

func startVictoria(bin string) (*victoriaProc, error) {
	dir, err := os.MkdirTemp("", "metricsbench-vm-")
	if err != nil {
		return nil, err
	}
	addr, err := resolveAddr("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-httpListenAddr="+addr, "-storageDataPath="+filepath.Join(dir, "data"),
		"-retentionPeriod=1", "-search.latencyOffset=0s", "-loggerLevel=WARN")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (install the victoria-metrics package): %w", bin, err)
	}
	v := &victoriaProc{cmd: cmd, url: "http://" + addr, dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(v.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return v, nil
			}
		}
		if time.Now().After(deadline) {
			v.stop()
			return nil, fmt.Errorf("%s did not answer on %s", bin, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (v *victoriaProc) stop() {
	_ = v.cmd.Process.Signal(os.Interrupt)
	_ = v.cmd.Wait()
	_ = os.RemoveAll(v.dir)
}

// fleetNode is one in-process collector in shared store mode.
type fleetNode struct {
	addr string
	rcv  receiver.Metrics
	pipe *storepipeline.Pipeline
	dir  string
}

func startFleetNode(ctx context.Context, backend string, i int, shared bool) (*fleetNode, error) {
	dir, err := os.MkdirTemp("", "metricsbench-node-")
	if err != nil {
		return nil, err
	}
	pipe, err := storepipeline.Start(ctx, filepath.Join(dir, "tsdb"), func(c *metricsstoreextension.Config) {
		if !shared {
			return
		}
		sc := c.Shared.GetOrInsertDefault()
		sc.WriteEndpoint = backend + "/api/v1/write"
		sc.QueryEndpoint = backend
		sc.Instance = "node-" + strconv.Itoa(i)
	}, consumertest.NewNop())
	if err != nil {
		return nil, err
	}
	addr, err := resolveAddr("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := metricsservicereceiver.NewFactory()
	c := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
	c.NetAddr.Endpoint = addr
	if err := confmap.Validate(c); err != nil {
		return nil, err
	}
	rcv, err := f.CreateMetrics(ctx, receivertest.NewNopSettings(f.Type()), c, pipe.Next)
	if err != nil {
		return nil, err
	}
	if err := rcv.Start(ctx, pipe.Host); err != nil {
		return nil, err
	}
	return &fleetNode{addr: addr, rcv: rcv, pipe: pipe, dir: dir}, nil
}

func (n *fleetNode) stop() error {
	ctx := context.Background()
	return errors.Join(n.rcv.Shutdown(ctx), n.pipe.Stop(ctx), os.RemoveAll(n.dir))
}

func fleetTrial(cfg *fleetBenchConfig, n int, shared bool) (fleetResult, error) {
	res := fleetResult{nodes: n, shared: shared}
	vm, err := startVictoria(cfg.vm)
	if err != nil {
		return res, err
	}
	defer vm.stop()
	ctx := context.Background()
	var nodes []*fleetNode
	defer func() {
		for _, nd := range nodes {
			_ = nd.stop()
		}
	}()
	var clients []pb.MetricsServiceClient
	for i := range n {
		nd, err := startFleetNode(ctx, vm.url, i, shared)
		if err != nil {
			return res, err
		}
		nodes = append(nodes, nd)
		conn, err := grpc.NewClient(nd.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return res, err
		}
		defer conn.Close()
		clients = append(clients, pb.NewMetricsServiceClient(conn))
	}
	// requests per client: batch distinct series of the client's own
	reqs := make([][]*pb.RecordBatchMetricsRequest, cfg.concurrency)
	for c := range reqs {
		for off := 0; off+cfg.batch <= cfg.series; off += cfg.batch {
			r := &pb.RecordBatchMetricsRequest{Resource: &pb.Resource{Attributes: map[string]string{"service.name": "bench"}}}
			for j := off; j < off+cfg.batch; j++ {
				r.Metrics = append(r.Metrics, &pb.MetricData{Name: "bench_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1,
					Labels: map[string]string{"client": strconv.Itoa(c), "series": strconv.Itoa(j)}})
			}
			reqs[c] = append(reqs[c], r)
		}
	}
	self0, err := selfCPU()
	if err != nil {
		return res, err
	}
	vm0, err := procCPU(vm.cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	var dps, errs, next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(cfg.duration)
	for c := range cfg.concurrency {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				k := i % len(reqs[c])
				r := reqs[c][k]
				node := int(next.Add(1) % int64(n)) // round-robin over the nodes
				if cfg.affinity {
					node = (c*len(reqs[c]) + k) % n // a request's series, always on one node
				}
				if _, err := clients[node].RecordBatchMetrics(ctx, r); err != nil {
					errs.Add(1)
					continue
				}
				dps.Add(int64(len(r.Metrics)))
			}
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	self1, err := selfCPU()
	if err != nil {
		return res, err
	}
	vm1, err := procCPU(vm.cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.datapoints, res.errors = dps.Load(), errs.Load()
	res.selfCPU, res.backendCPU = self1-self0, vm1-vm0
	return res, nil
}

func fleetReport(w io.Writer, cfg *fleetBenchConfig, rs []fleetResult) {
	balance := "requests round-robin over the nodes (every series reaches every node)"
	if cfg.affinity {
		balance = "each series always on one node (affinity)"
	}
	fmt.Fprintf(w, "fleet ingest: %d clients, %d series each, %d counters per RecordBatchMetrics, %s, %s per fleet size, shared VictoriaMetrics\n",
		cfg.concurrency, cfg.series, cfg.batch, balance, cfg.duration)
	fmt.Fprintf(w, "%-6s %12s %10s %12s %18s %18s %8s\n", "nodes", "dp/s", "per node", "efficiency", "nodes+gen CPU-s/M", "backend CPU-s/M", "errors")
	var base float64
	for _, r := range rs {
		perNode := r.dpPerSec() / float64(r.nodes)
		if base == 0 && r.nodes == 1 && r.shared {
			base = perNode
		}
		label := strconv.Itoa(r.nodes)
		if !r.shared {
			label = "local"
		}
		eff := "-"
		if base > 0 && r.shared {
			eff = fmt.Sprintf("%.2f", perNode/base)
		}
		m := float64(r.datapoints) / 1e6
		fmt.Fprintf(w, "%-6s %12.0f %10.0f %12s %18.2f %18.2f %8d\n", label, r.dpPerSec(), perNode, eff,
			r.selfCPU.Seconds()/m, r.backendCPU.Seconds()/m, r.errors)
	}
}
