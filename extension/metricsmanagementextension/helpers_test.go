package metricsmanagementextension_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/test/e2e"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// testCollector is the distribution running in-process: metrics_service and
// OTLP ingest straight into the providers exporter (no batching, so an
// acknowledged request is in the providers' queues), the management
// extension with file storage.
type testCollector struct {
	col      *otelcol.Collector
	done     chan error
	conns    []*grpc.ClientConn
	mgmt     pb.MetricsManagementServiceClient
	ingest   pb.MetricsServiceClient
	otlp     pmetricotlp.GRPCClient
	mgmtConn *grpc.ClientConn
	once     sync.Once
	// otlpAddr is the collector's OTLP/gRPC receiver.
	otlpAddr string
}

// startCollector runs the collector; config is a YAML file name (the
// distribution's default config) or "" for the test pipeline; overrides are
// merged on top.
func startCollector(t *testing.T, storageDir, base, overrides string) *testCollector {
	t.Helper()
	mgmt, ingest, otlpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`
receivers:
  metrics_service:
    endpoint: %s
  otlp:
    protocols:
      grpc:
        endpoint: %s
exporters:
  providers:
extensions:
  file_storage:
    directory: %s
  metrics_management:
    endpoint: %s
    storage: file_storage
    shutdown_drain_timeout: 5s
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  extensions: [file_storage, metrics_management]
  pipelines:
    metrics:
      receivers: [metrics_service, otlp]
      exporters: [providers]
`, ingest, otlpAddr, storageDir, mgmt)
	uris := []string{"yaml:" + cfg}
	if base != "" {
		uris = []string{"file:" + base, "yaml:" + cfg}
	}
	if overrides != "" {
		uris = append(uris, "yaml:"+overrides)
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-metrics", Version: "test"},
		Factories: e2e.Components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              uris,
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()},
		}},
		SkipSettingGRPCLogger: true,
	})
	require.NoError(t, err)
	c := &testCollector{col: col, done: make(chan error, 1), otlpAddr: otlpAddr}
	go func() { c.done <- col.Run(context.Background()) }()
	require.Eventually(t, func() bool {
		select {
		case err := <-c.done:
			c.done <- err
			return true
		default:
		}
		return col.GetState() == otelcol.StateRunning
	}, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, otelcol.StateRunning, col.GetState(), "the collector did not start")
	dial := func(addr string) *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		c.conns = append(c.conns, conn)
		return conn
	}
	c.mgmtConn = dial(mgmt)
	c.mgmt = pb.NewMetricsManagementServiceClient(c.mgmtConn)
	c.ingest = pb.NewMetricsServiceClient(dial(ingest))
	c.otlp = pmetricotlp.NewGRPCClient(dial(otlpAddr))
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop shuts the collector down (idempotent).
func (c *testCollector) stop(t *testing.T) {
	c.once.Do(func() {
		for _, conn := range c.conns {
			_ = conn.Close()
		}
		c.col.Shutdown()
		assert.NoError(t, <-c.done)
	})
}

// otlpSink is a second collector's OTLP receiver (the real otlpreceiver)
// recording what it receives.
type otlpSink struct {
	addr string
	sink *consumertest.MetricsSink
	rcv  receiver.Metrics
	once sync.Once
}

// startOTLPSink starts an OTLP/gRPC receiver on addr ("" for a free port).
func startOTLPSink(t *testing.T, addr string) *otlpSink {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"grpc": map[string]any{"endpoint": addr}},
	}).Unmarshal(cfg))
	s := &otlpSink{addr: addr, sink: new(consumertest.MetricsSink)}
	var err error
	s.rcv, err = f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, s.sink)
	require.NoError(t, err)
	require.NoError(t, s.rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *otlpSink) stop(t *testing.T) {
	s.once.Do(func() { assert.NoError(t, s.rcv.Shutdown(context.Background())) })
}

// seqs counts the data points received by their "seq" attribute.
func (s *otlpSink) seqs() map[int64]int {
	out := map[int64]int{}
	for _, md := range s.sink.AllMetrics() {
		eachPoint(md, func(_ string, attrs map[string]any, _ float64) {
			if v, ok := attrs["seq"].(int64); ok {
				out[v]++
			}
		})
	}
	return out
}

// value returns the newest value of a metric's series with the given label.
func (s *otlpSink) value(name, label, want string) (float64, bool) {
	var v float64
	found := false
	for _, md := range s.sink.AllMetrics() {
		eachPoint(md, func(n string, attrs map[string]any, x float64) {
			if n == name && fmt.Sprint(attrs[label]) == want {
				v, found = max(v, x), true
			}
		})
	}
	return v, found
}

func eachPoint(md pmetric.Metrics, fn func(name string, attrs map[string]any, v float64)) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				default:
					continue
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					fn(m.Name(), dp.Attributes().AsRaw(), v)
				}
			}
		}
	}
}

// otlpProvider is an OPENTELEMETRY provider exporting to addr in plain
// text, without retries (a failed export fails at once).
func otlpProvider(id, addr string) *pb.ProviderConfig {
	return &pb.ProviderConfig{
		ProviderId: id,
		Type:       pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
		Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{
			Endpoint: addr, Timeout: durationpb.New(5 * time.Second),
		}},
		Security: &pb.SecurityConfig{Tls: &pb.TlsSettings{Insecure: true}},
		Retry:    &pb.RetryPolicy{Enabled: false},
	}
}

// load sends a steady stream of OTLP requests of unique data points (a
// "seq" attribute) through the collector, one request at a time.
type load struct {
	acked atomic.Int64 // data points acknowledged: seqs [0, acked)
	stop  chan struct{}
	done  chan struct{}
}

func startLoad(t *testing.T, client pmetricotlp.GRPCClient, per int) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; seq += per {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(points("load", seq, per)))
			cancel()
			if !assert.NoError(t, err) {
				return
			}
			l.acked.Store(int64(seq + per))
		}
	}()
	return l
}

// waitFor lets the load send n more data points.
func (l *load) waitFor(t *testing.T, n int64) {
	t.Helper()
	from := l.acked.Load()
	require.Eventually(t, func() bool { return l.acked.Load() >= from+n }, 30*time.Second, time.Millisecond, "the load flows")
}

// finish stops the load and returns the number of data points acknowledged.
func (l *load) finish() int64 {
	close(l.stop)
	<-l.done
	return l.acked.Load()
}

func points(name string, from, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "load")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	now := time.Now()
	for i := range n {
		dp := dps.AppendEmpty()
		dp.SetIntValue(int64(from + i))
		dp.Attributes().PutInt("seq", int64(from+i))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	}
	return md
}
