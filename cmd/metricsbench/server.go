package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

// Sides of the comparison.
const (
	// sideOurs is metrics_service → metrics_store processor (store and
	// stream hub) → sink, as the distribution runs it.
	sideOurs = "ours"
	// sideOursBare is metrics_service → sink, without the store: the
	// receiver's own cost.
	sideOursBare = "ours-bare"
	// sideOTLP is the stock otlpreceiver → sink.
	sideOTLP = "otlp"
	// sideOTLPStore is the stock otlpreceiver → metrics_store processor →
	// sink: the store's OTLP ingest.
	sideOTLPStore = "otlp-store"
)

// allSides lists the valid sides.
var allSides = []string{sideOurs, sideOursBare, sideOTLP, sideOTLPStore}

// speaksOTLP reports whether the clients of side send OTLP.
func speaksOTLP(side string) bool { return side != sideOurs && side != sideOursBare }

// stats is what a server reports on GET /stats.
type stats struct {
	// DataPoints counted by the sink.
	DataPoints int64 `json:"datapoints"`
	// Batches is the number of ConsumeMetrics calls.
	Batches int64 `json:"batches"`
	// GOMAXPROCS of the server.
	GOMAXPROCS int `json:"gomaxprocs"`
}

// benchServer is one receiver in front of a counting sink.
type benchServer struct {
	side       string
	rcv        receiver.Metrics
	datapoints atomic.Int64
	batches    atomic.Int64
	grpcAddr   string
	stopOnce   sync.Once
	stopErr    error
	// cleanup stops the store pipeline and removes its directory.
	cleanup func() error
}

// startServer starts the receiver of side listening on addr (host:port;
// port 0 picks a free port).
func startServer(ctx context.Context, side, addr string) (*benchServer, error) {
	addr, err := resolveAddr(addr)
	if err != nil {
		return nil, err
	}
	s := &benchServer{side: side, grpcAddr: addr}
	sink, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		s.datapoints.Add(int64(md.DataPointCount()))
		s.batches.Add(1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var (
		f    receiver.Factory
		cfg  component.Config
		host component.Host = componenttest.NewNopHost()
	)
	if side == sideOurs || side == sideOTLPStore {
		dir, err := os.MkdirTemp("", "metricsbench-store-")
		if err != nil {
			return nil, err
		}
		p, err := storepipeline.Start(ctx, filepath.Join(dir, "tsdb"), nil, sink)
		if err != nil {
			return nil, err
		}
		s.cleanup = func() error {
			return errors.Join(p.Stop(context.Background()), os.RemoveAll(dir))
		}
		sink, host = p.Next, p.Host
	}
	switch side {
	case sideOurs, sideOursBare:
		f = metricsservicereceiver.NewFactory()
		c := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
		c.NetAddr.Endpoint = addr
		cfg = c
	case sideOTLP, sideOTLPStore:
		f = otlpreceiver.NewFactory()
		c := f.CreateDefaultConfig().(*otlpreceiver.Config)
		c.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = addr
		c.Protocols.HTTP = configoptional.None[otlpreceiver.HTTPConfig]()
		cfg = c
	default:
		return nil, fmt.Errorf("side %q is not one of %v", side, allSides)
	}
	if err := confmap.Validate(cfg); err != nil {
		return nil, fmt.Errorf("%s config: %w", side, err)
	}
	s.rcv, err = f.CreateMetrics(ctx, receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		return nil, fmt.Errorf("create %s receiver: %w", side, err)
	}
	if err := s.rcv.Start(ctx, host); err != nil {
		return nil, fmt.Errorf("start %s receiver: %w", side, err)
	}
	return s, nil
}

// stats returns the counters of the sink.
func (s *benchServer) stats() stats {
	return stats{DataPoints: s.datapoints.Load(), Batches: s.batches.Load(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
}

// shutdown stops the receiver; later calls return the first result.
func (s *benchServer) shutdown() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.stopErr = s.rcv.Shutdown(ctx)
		if s.cleanup != nil {
			s.stopErr = errors.Join(s.stopErr, s.cleanup())
		}
	})
	return s.stopErr
}

// resolveAddr replaces port 0 in addr with a free port.
func resolveAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// readyPrefix starts the line a server prints once it accepts requests.
const readyPrefix = "READY"

func serverMain(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	side := fs.String("side", sideOurs, "receiver to serve: ours (metrics_service → metrics_store), ours-bare (metrics_service, no store), otlp (otlpreceiver, gRPC) or otlp-store (otlpreceiver → metrics_store)")
	addr := fs.String("addr", "127.0.0.1:0", "gRPC listen address (port 0: a free port)")
	statsAddr := fs.String("stats-addr", "127.0.0.1:0", "HTTP address of /stats and /debug/pprof/")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	s, err := startServer(ctx, *side, *addr)
	if err != nil {
		return err
	}
	defer func() { _ = s.shutdown() }()

	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.stats())
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	ln, err := net.Listen("tcp", *statsAddr)
	if err != nil {
		return fmt.Errorf("stats listener: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	fmt.Printf("%s side=%s grpc=%s stats=%s pid=%d gomaxprocs=%d\n",
		readyPrefix, *side, s.grpcAddr, ln.Addr(), os.Getpid(), runtime.GOMAXPROCS(0))

	// Run until stdin closes (the generator exits or is done) or a signal.
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
	}
	if err := s.shutdown(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
