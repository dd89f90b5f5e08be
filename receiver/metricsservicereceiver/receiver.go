package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/datapath"
	"github.com/metricsmodule/metricsmodule/internal/dedup"
	"github.com/metricsmodule/metricsmodule/internal/definitions"
	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/reads"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/rules"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/stream"
	"github.com/metricsmodule/metricsmodule/internal/summary"
	"github.com/metricsmodule/metricsmodule/internal/utf8check"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// ingestState is what the ingest methods use: the accumulator, the
// idempotency caches and their journal, and the health they report.
type ingestState struct {
	acc       *convert.Accumulator
	dedupOne  *dedup.Cache[*pb.RecordMetricResponse]
	dedupMany *dedup.Cache[*pb.RecordBatchMetricsResponse]
	// journal keeps the dedup caches' results across restarts (dedup.go;
	// nil: memory only); journalFailing is set while its writes fail.
	journal        *dedup.Journal
	journalFailing atomic.Bool

	// health tracks memory refusals for the health service.
	health ingestHealth
	// unsyncedWarned is set once the receiver warned that the pipeline
	// stores its data only after the answer.
	unsyncedWarned atomic.Bool

	// pipelineErrors are recent refusals of the next consumer (health).
	pipelineErrors errorLog
}

// metricsReceiver is the metrics_service receiver: a gRPC server for
// MetricsService in front of the accumulator and the next consumer. Its
// state is grouped by RPC family: ingest (ingest.go, handoff.go), reads
// (reads*.go), summary (summary.go), definitions (defs; definitions*.go)
// and stream (hub; stream.go).
type metricsReceiver struct {
	cfg      *Config
	settings receiver.Settings
	next     consumer.Metrics
	obsrep   *receiverhelper.ObsReport

	// in is the ingest family's state (ingest.go, handoff.go, dedup.go,
	// health.go).
	in ingestState

	// server
	server *grpc.Server
	health *health.Server
	ln     net.Listener

	// sink is the metrics_store extension's store and hub (nil without one).
	sink *datapath.Sink
	// node stamps the shared store's node identity on the running totals
	// the receiver builds (zero without a shared store; fleet.go).
	node nodeIdentity

	// stream: hub serves StreamMetrics (the sink's; nil without a sink).
	hub *stream.Hub

	// reads
	store      *store.Store
	engine     *query.Engine
	reads      *reads.Engine
	httpServer *http.Server
	httpLn     net.Listener
	// rules evaluates rule files over the store (nil without rules.files).
	rules *rules.Engine
	// leaderRules evaluates the rules while this node leads
	// (rules.run_on: leader; nil otherwise).
	leaderRules *leaderRules

	// summary answers GetMetricsSummary (nil without a store).
	summary *summary.Engine
	// defs serves the definition methods.
	defs definitionsState

	// stopTelemetry unregisters the receiver's instruments (telemetry.go;
	// nil before Start).
	stopTelemetry func() error

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// definitionsState is the state of the definition methods (definitions.go).
type definitionsState struct {
	// registry holds the metric definitions (nil before Start).
	registry *registry.Registry
	// engine unregisters, backs up, restores and describes definitions
	// with their data.
	engine *definitions.Engine
	// fleet is set with definitions.backend: etcd (definitions_etcd.go).
	fleet *definitionsFleet
	// deleting serializes runs of the scheduled deletions.
	deleting sync.Mutex
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Metrics) (*metricsReceiver, error) {
	obsrep, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "grpc",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, fmt.Errorf("create obsreport: %w", err)
	}
	r := &metricsReceiver{
		cfg:      cfg,
		settings: set,
		next:     next,
		obsrep:   obsrep,
		stop:     make(chan struct{}),
	}
	r.in.acc = convert.NewAccumulator(cfg.convertConfig(), convert.Scope{
		Name:    metadata.ScopeName,
		Version: set.BuildInfo.Version,
	})
	r.in.health.now = time.Now
	r.in.health.serving.Store(true)
	if cfg.Dedup.Window > 0 {
		// the two caches share dedup.max_bytes
		r.in.dedupOne = dedup.New[*pb.RecordMetricResponse](cfg.Dedup.Window, cfg.Dedup.MaxEntries).
			WithMaxBytes(cfg.Dedup.MaxBytes/2, (*pb.RecordMetricResponse).SizeVT)
		r.in.dedupMany = dedup.New[*pb.RecordBatchMetricsResponse](cfg.Dedup.Window, cfg.Dedup.MaxEntries).
			WithMaxBytes(cfg.Dedup.MaxBytes-cfg.Dedup.MaxBytes/2, (*pb.RecordBatchMetricsResponse).SizeVT)
	}
	return r, nil
}

// Start finds the metrics_store extension, starts the query engine, the
// gRPC server, the Prometheus API and the series sweeper.
func (r *metricsReceiver) Start(ctx context.Context, host component.Host) error {
	if err := r.findSink(host); err != nil {
		return err
	}
	if err := r.startReads(ctx, host); err != nil {
		return errors.Join(err, r.stopHTTP(ctx))
	}
	if err := r.startRegistry(ctx, host); err != nil {
		return errors.Join(err, r.stopHTTP(ctx))
	}
	if err := r.openDedupJournal(); err != nil {
		return errors.Join(err, r.stopHTTP(ctx))
	}
	authzOpts, err := r.authzServerOptions()
	if err != nil {
		return errors.Join(err, r.stopHTTP(ctx))
	}
	srv, err := r.cfg.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings,
		append(authzOpts,
			configgrpc.WithGrpcServerOption(grpc.ForceServerCodecV2(grpccodec.Codec{})),
			// Calls run on long-lived goroutines whose stacks have grown
			// already (grpc-go starts a goroutine per call otherwise, or
			// when every worker is busy).
			configgrpc.WithGrpcServerOption(grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0)))),
			// before utf8check: it decodes what the next ones look at
			configgrpc.WithGrpcServerOption(grpc.ChainStreamInterceptor(grpccodec.StrictStreamInterceptor(true))),
			// Record* check their strings per item (internal/convert).
			configgrpc.WithGrpcServerOption(grpc.ChainUnaryInterceptor(utf8check.UnaryServerInterceptor(
				pb.MetricsService_RecordMetric_FullMethodName, pb.MetricsService_RecordBatchMetrics_FullMethodName))),
			configgrpc.WithGrpcServerOption(grpc.ChainStreamInterceptor(utf8check.StreamServerInterceptor())),
		)...)
	if err != nil {
		return fmt.Errorf("create gRPC server: %w", err)
	}
	r.server = srv
	srv.RegisterService(grpccodec.StrictService(&pb.MetricsService_ServiceDesc, true), &metricsService{r: r})
	r.health = health.NewServer()
	healthpb.RegisterHealthServer(srv, r.health)
	r.health.SetServingStatus(pb.MetricsService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	r.defs.fleet.serveHealth(r.health)
	reflection.Register(srv)

	if r.stopTelemetry, err = r.startTelemetry(); err != nil {
		return errors.Join(fmt.Errorf("receiver telemetry: %w", err), r.stopHTTP(ctx))
	}
	ln, err := r.cfg.NetAddr.Listen(ctx)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	r.ln = ln
	r.settings.Logger.Info("Starting MetricsService gRPC server", zap.String("endpoint", ln.Addr().String()))
	r.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	})
	r.wg.Go(r.sweepLoop)
	r.wg.Go(r.healthLoop)
	if r.summary = r.newSummary(); r.summary != nil {
		r.wg.Go(func() { r.summary.Run(r.stop) })
	}
	return nil
}

// sweepLoop drops the state of idle series every SeriesTTL/4.
func (r *metricsReceiver) sweepLoop() {
	t := time.NewTicker(max(r.cfg.Aggregation.SeriesTTL/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if n := r.in.acc.Sweep(); n > 0 {
				r.settings.Logger.Debug("Dropped state of idle series", zap.Int("series", n))
			}
		}
	}
}

// Shutdown stops the server, letting running calls finish until ctx ends.
// It is safe without Start and idempotent.
func (r *metricsReceiver) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stop) })
	if r.health != nil {
		r.health.Shutdown()
	}
	stalled := r.closeStreams()
	if r.server != nil {
		done := make(chan struct{})
		go func() {
			r.server.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			r.server.Stop()
			<-done
		case <-stalled:
			r.server.Stop()
			<-done
		}
	}
	err := r.stopHTTP(ctx)
	r.defs.fleet.stopElection() // resign first: another node takes over at once
	r.stopRules()
	r.wg.Wait()
	err = errors.Join(err, r.closeDedupJournal())
	if r.stopTelemetry != nil {
		err = errors.Join(err, r.stopTelemetry())
		r.stopTelemetry = nil
	}
	if r.defs.registry != nil {
		err = errors.Join(err, r.defs.registry.Close(ctx))
	}
	err = errors.Join(err, r.defs.fleet.close())
	return err
}

// addr returns the address the server listens on (after Start).
func (r *metricsReceiver) addr() string { return r.ln.Addr().String() }
