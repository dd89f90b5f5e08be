package provider

import (
	"context"
	"errors"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testHost is a host with the given exporter factories.
type testHost struct {
	component.Host
	factories map[component.Type]exporter.Factory
}

func newTestHost(fs ...exporter.Factory) *testHost {
	h := &testHost{Host: componenttest.NewNopHost(), factories: map[component.Type]exporter.Factory{}}
	for _, f := range fs {
		h.factories[f.Type()] = f
	}
	return h
}

func (h *testHost) GetFactory(kind component.Kind, t component.Type) component.Factory {
	if kind != component.KindExporter {
		return nil
	}
	if f, ok := h.factories[t]; ok {
		return f
	}
	return nil
}

// sinkType is a test exporter that records what it gets into a named testSink.
var sinkType = component.MustNewType("sink")

type sinkConfig struct {
	Name string `mapstructure:"name"`
	// Endpoint is not used; destination policy tests set it.
	Endpoint string `mapstructure:"endpoint"`
}

// testSink counts the data points it exported by their "seq" attribute.
type testSink struct {
	fail     atomic.Bool
	started  atomic.Int32
	stopped  atomic.Int32
	mu       sync.Mutex
	seqs     map[int64]int
	names    map[string]int // data points by metric name, every type
	points   int
	batches  int
	maxBatch int
	// gate, when set, holds every export until it is closed.
	gate chan struct{}
}

var sinks sync.Map

func sinkNamed(name string) *testSink {
	s, _ := sinks.LoadOrStore(name, &testSink{seqs: map[int64]int{}})
	return s.(*testSink)
}

// newSink registers a fresh sink under a name unique to the test.
func newSink(t *testing.T, name string) (*testSink, string) {
	full := t.Name() + "/" + name
	s := &testSink{seqs: map[int64]int{}}
	sinks.Store(full, s)
	t.Cleanup(func() { sinks.Delete(full) })
	return s, full
}

var errSinkDown = errors.New("sink is down")

func (s *testSink) consume(ctx context.Context, md pmetric.Metrics) error {
	if g := s.gate; g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.fail.Load() {
		return errSinkDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	n := md.DataPointCount()
	s.points += n
	s.maxBatch = max(s.maxBatch, n)
	forEachPoint(md, func(_ string, seq int64) { s.seqs[seq]++ })
	if s.names == nil {
		s.names = map[string]int{}
	}
	for name, n := range names(md) {
		s.names[name] += n
	}
	return nil
}

func (s *testSink) snapshot() (points int, seqs map[int64]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs = make(map[int64]int, len(s.seqs))
	for k, v := range s.seqs {
		seqs[k] = v
	}
	return s.points, seqs
}

func (s *testSink) pointCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.points
}

// forEachPoint calls fn with the metric name and "seq" attribute (-1 when
// missing) of every gauge or sum data point.
func forEachPoint(md pmetric.Metrics, fn func(name string, seq int64)) {
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
					seq := int64(-1)
					if v, ok := dps.At(d).Attributes().Get("seq"); ok {
						seq = v.Int()
					}
					fn(m.Name(), seq)
				}
			}
		}
	}
}

type sinkExporter struct {
	component.StartFunc
	component.ShutdownFunc
	consumer.ConsumeMetricsFunc
}

func (sinkExporter) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func sinkFactory() exporter.Factory {
	return exporter.NewFactory(sinkType, func() component.Config { return &sinkConfig{} },
		exporter.WithMetrics(func(_ context.Context, _ exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
			c := cfg.(*sinkConfig)
			if c.Name == "" {
				return nil, errors.New("name: must be set")
			}
			s := sinkNamed(c.Name)
			return sinkExporter{
				StartFunc: func(context.Context, component.Host) error {
					s.started.Add(1)
					return nil
				},
				ShutdownFunc: func(context.Context) error {
					s.stopped.Add(1)
					return nil
				},
				ConsumeMetricsFunc: s.consume,
			}, nil
		}, component.StabilityLevelAlpha))
}

// Stand-ins of the pushgateway and statsd exporters with the config keys
// their contract names, to check the mapping against it.
type pushgatewayConfig struct {
	Endpoint       string            `mapstructure:"endpoint"`
	Job            string            `mapstructure:"job"`
	Method         string            `mapstructure:"method"`
	GroupingLabels map[string]string `mapstructure:"grouping_labels"`
}

type statsdConfig struct {
	Endpoint      string  `mapstructure:"endpoint"`
	Transport     string  `mapstructure:"transport"`
	Prefix        string  `mapstructure:"prefix"`
	TagFormat     string  `mapstructure:"tag_format"`
	SampleRate    float64 `mapstructure:"sample_rate"`
	MaxPacketSize int     `mapstructure:"max_packet_size"`
}

func fakeFactory(typ string, def func() component.Config) exporter.Factory {
	return exporter.NewFactory(component.MustNewType(typ), def,
		exporter.WithMetrics(func(context.Context, exporter.Settings, component.Config) (exporter.Metrics, error) {
			return sinkExporter{ConsumeMetricsFunc: func(context.Context, pmetric.Metrics) error { return nil }}, nil
		}, component.StabilityLevelAlpha))
}

// memStorage is an in-memory storage.Client.
type memStorage struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStorage() *memStorage { return &memStorage{m: map[string][]byte{}} }

func (s *memStorage) Get(_ context.Context, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

func (s *memStorage) Set(_ context.Context, k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

func (s *memStorage) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func (s *memStorage) Batch(_ context.Context, ops ...*storage.Operation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = s.m[op.Key]
		case storage.Set:
			s.m[op.Key] = op.Value
		case storage.Delete:
			delete(s.m, op.Key)
		}
	}
	return nil
}

func (s *memStorage) Close(context.Context) error { return nil }

func (s *memStorage) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// newTestEngine starts an engine over the host and storage; it is shut down
// when the test ends.
func newTestEngine(t *testing.T, host component.Host, store storage.Client) *Engine {
	t.Helper()
	e := NewEngine(Settings{TelemetrySettings: componenttest.NewNopTelemetrySettings(), MaxVersions: 5, MaxBackups: 10, LookupHost: noDNS})
	require.NoError(t, e.Start(context.Background(), host, store))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e
}

// sinkProvider is a CUSTOM provider exporting to the named test sink.
func sinkProvider(id, sink string) *pb.ProviderConfig {
	cfg, _ := structpb.NewStruct(map[string]any{"name": sink})
	return &pb.ProviderConfig{
		ProviderId: id,
		Type:       pb.ProviderType_PROVIDER_TYPE_CUSTOM,
		Settings:   &pb.ProviderSettings{Custom: &pb.CustomSettings{ExporterType: "sink", Config: cfg}},
	}
}

// gauges returns n gauge points "load" with seq attributes from..from+n-1.
func gauges(name string, from, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "test")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for i := range n {
		dp := dps.AppendEmpty()
		dp.SetIntValue(int64(from + i))
		dp.Attributes().PutInt("seq", int64(from+i))
		dp.Attributes().PutStr("parity", strconv.Itoa((from+i)%2))
		dp.SetTimestamp(1)
	}
	return md
}

// eventually polls cond with a deadline.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 5*time.Millisecond, msg)
}

// noDNS is the resolver of test engines: no name resolves (tests never
// query the machine's resolver).
func noDNS(_ context.Context, host string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
}
