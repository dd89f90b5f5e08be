package provider

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

const (
	benchBatch       = 1000 // data points per batch
	benchOutstanding = 64   // batches sent and not yet received
)

// BenchmarkDynamicVsStatic pushes the same batches through the same OTLP
// exporter (to an in-process OTLP receiver) either as a static pipeline
// exporter (its own sending queue, 10 consumers) or as a provider (routing
// table → provider queue, 10 workers → the exporter without its queue). Both
// keep at most benchOutstanding batches in flight, so neither drops.
func BenchmarkDynamicVsStatic(b *testing.B) {
	md := benchMetrics()
	for _, mode := range []string{"static", "provider"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			// slots bounds the batches in flight: a push takes one, the
			// receiver gives one back per batch received.
			slots := make(chan struct{}, benchOutstanding)
			var received atomic.Int64
			all := make(chan struct{})
			var target atomic.Int64
			target.Store(-1)
			addr := benchReceiver(b, func(n int) {
				<-slots
				if received.Add(int64(n)) == target.Load() {
					close(all)
				}
			})
			var push func(pmetric.Metrics) error
			switch mode {
			case "static":
				f := otlpexporter.NewFactory()
				cfg := f.CreateDefaultConfig()
				require.NoError(b, confmap.NewFromStringMap(map[string]any{
					"endpoint": addr, "tls": map[string]any{"insecure": true},
					"sending_queue": map[string]any{"block_on_overflow": true},
				}).Unmarshal(cfg))
				exp, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(f.Type()), cfg)
				require.NoError(b, err)
				require.NoError(b, exp.Start(ctx, componenttest.NewNopHost()))
				b.Cleanup(func() { require.NoError(b, exp.Shutdown(ctx)) })
				push = func(md pmetric.Metrics) error { return exp.ConsumeMetrics(ctx, md) }
			case "provider":
				e := NewEngine(Settings{TelemetrySettings: componenttest.NewNopTelemetrySettings(), LookupHost: noDNS})
				require.NoError(b, e.Start(ctx, newTestHost(otlpexporter.NewFactory()), nil))
				b.Cleanup(func() { require.NoError(b, e.Shutdown(ctx)) })
				_, err := e.Create(ctx, &pb.CreateProviderRequest{ValidateConfig: true, AutoStart: true, Config: &pb.ProviderConfig{
					ProviderId: "bench", Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
					Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{Endpoint: addr}},
					Security: &pb.SecurityConfig{Tls: &pb.TlsSettings{Insecure: true}},
				}})
				require.NoError(b, err)
				push = func(md pmetric.Metrics) error { return e.Router().ConsumeMetrics(ctx, md) }
			}
			b.ReportAllocs()
			b.ResetTimer()
			target.Store(int64(b.N) * benchBatch)
			cpu0 := cpuTime()
			for range b.N {
				slots <- struct{}{}
				if err := push(md); err != nil {
					b.Fatal(err)
				}
			}
			<-all
			b.StopTimer()
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "dp/s")
			// CPU time of the process (exporter and receiver side) per data
			// point: steadier than dp/s on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*benchBatch), "cpu-ns/dp")
		})
	}
}

// benchMetrics is one batch: 10 gauges x 100 series with 4 labels.
func benchMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "bench")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for m := range 10 {
		metric := ms.AppendEmpty()
		metric.SetName(fmt.Sprintf("bench_metric_%d", m))
		dps := metric.SetEmptyGauge().DataPoints()
		for s := range benchBatch / 10 {
			dp := dps.AppendEmpty()
			dp.SetDoubleValue(float64(s))
			dp.SetTimestamp(1)
			a := dp.Attributes()
			a.PutStr("method", []string{"GET", "POST"}[s%2])
			a.PutStr("path", fmt.Sprintf("/api/v1/item/%d", s))
			a.PutStr("status", "200")
			a.PutStr("region", "eu-west-1")
		}
	}
	md.MarkReadOnly()
	return md
}

// benchReceiver starts an OTLP/gRPC receiver counting data points.
func benchReceiver(b *testing.B, got func(points int)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	addr := ln.Addr().String()
	require.NoError(b, ln.Close())
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(b, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"grpc": map[string]any{"endpoint": addr}},
	}).Unmarshal(cfg))
	next, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		got(md.DataPointCount())
		return nil
	})
	require.NoError(b, err)
	rcv, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(b, err)
	require.NoError(b, rcv.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, rcv.Shutdown(context.Background())) })
	return addr
}

// cpuTime returns the user+system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProviderOverhead is the cost the provider wrapper adds per batch
// (routing, queue, worker, stats, health) in front of an exporter that does
// nothing, with benchBatch data points per batch.
func BenchmarkProviderOverhead(b *testing.B) {
	newOverheadBench(b, nil).run(b)
}

// overheadBench is an engine with one provider "nop" whose exporter does
// nothing, at most benchOutstanding batches ahead of it.
type overheadBench struct {
	e      *Engine
	slots  chan struct{}
	done   atomic.Int64
	target atomic.Int64
	all    chan struct{}
}

// newOverheadBench starts the engine; setup (when set) runs before the
// provider is created (e.g. to turn the spool on).
func newOverheadBench(b *testing.B, setup func(*Engine)) *overheadBench {
	ctx := context.Background()
	ob := &overheadBench{all: make(chan struct{}), slots: make(chan struct{}, benchOutstanding)}
	ob.target.Store(-1)
	nop := exporter.NewFactory(sinkType, func() component.Config { return &sinkConfig{} },
		exporter.WithMetrics(func(context.Context, exporter.Settings, component.Config) (exporter.Metrics, error) {
			return sinkExporter{ConsumeMetricsFunc: func(context.Context, pmetric.Metrics) error {
				<-ob.slots
				if ob.done.Add(1) == ob.target.Load() {
					close(ob.all)
				}
				return nil
			}}, nil
		}, component.StabilityLevelAlpha))
	ob.e = NewEngine(Settings{TelemetrySettings: componenttest.NewNopTelemetrySettings(), LookupHost: noDNS})
	require.NoError(b, ob.e.Start(ctx, newTestHost(nop), nil))
	b.Cleanup(func() { require.NoError(b, ob.e.Shutdown(ctx)) })
	if setup != nil {
		setup(ob.e)
	}
	_, err := ob.e.Create(ctx, &pb.CreateProviderRequest{AutoStart: true, Config: sinkProvider("nop", "nop")})
	require.NoError(b, err)
	return ob
}

// run sends b.N batches and waits until the exporter has them all.
func (ob *overheadBench) run(b *testing.B) {
	md := benchMetrics()
	b.ReportAllocs()
	b.ResetTimer()
	ob.target.Store(int64(b.N))
	for range b.N {
		ob.slots <- struct{}{}
		if err := ob.e.Router().ConsumeMetrics(context.Background(), md); err != nil {
			b.Fatal(err)
		}
	}
	<-ob.all
}
