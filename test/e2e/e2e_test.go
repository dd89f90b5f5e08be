package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// otlpSink is a second OTLP endpoint that records what the collector exports.
type otlpSink struct {
	pmetricotlp.UnimplementedGRPCServer
	mu  sync.Mutex
	got []pmetric.Metrics
}

func (s *otlpSink) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	md := pmetric.NewMetrics()
	req.Metrics().CopyTo(md)
	s.got = append(s.got, md)
	return pmetricotlp.NewExportResponse(), nil
}

// counterTotals returns the newest value of each series of a sum metric, by
// the value of one label, and the resource's service.name.
func (s *otlpSink) counterTotals(name, label string) (map[string]float64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	service := ""
	for _, md := range s.got {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if m := ms.At(k); m.Name() == name {
						if v, ok := rm.Resource().Attributes().Get("service.name"); ok {
							service = v.Str()
						}
						for d := 0; d < m.Sum().DataPoints().Len(); d++ {
							dp := m.Sum().DataPoints().At(d)
							lv, _ := dp.Attributes().Get(label)
							out[lv.Str()] = max(out[lv.Str()], dp.DoubleValue())
						}
					}
				}
			}
		}
	}
	return out, service
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startCollector runs the default config (testdata/config.yaml) with the
// endpoints moved to free ports and the sink added as exporter.
func startCollector(t *testing.T, sinkAddr string) (ingest, promAPI string) {
	t.Helper()
	e := startCollectorAt(t, sinkAddr)
	return e.ingest, e.promAPI
}

// endpoints are the addresses of a running collector.
type endpoints struct {
	ingest, promAPI, otlpGRPC, otlpHTTP string
	remoteWrite                         string // prometheus_remote_write receiver
}

// startCollectorAt is startCollector returning every endpoint.
func startCollectorAt(t *testing.T, sinkAddr string) endpoints {
	t.Helper()
	return startCollectorWith(t, sinkAddr, "")
}

// startCollectorWith is startCollectorAt with extra YAML merged last.
func startCollectorWith(t *testing.T, sinkAddr, extra string) endpoints {
	t.Helper()
	return startCollectorFiles(t, sinkAddr, nil, extra)
}

// startCollectorFiles is startCollectorWith with config files merged after
// testdata/config.yaml and before the test's endpoints and extra.
func startCollectorFiles(t *testing.T, sinkAddr string, files []string, extra string) endpoints {
	t.Helper()
	for attempt := 1; ; attempt++ {
		e, err := tryStartCollectorFiles(t, sinkAddr, files, extra)
		if err == nil {
			return e
		}
		// a port picked free was taken before the collector bound it: new ports
		require.ErrorContains(t, err, "address already in use", "collector did not start")
		require.Less(t, attempt, 5, "collector did not start: %v", err)
	}
}

// tryStartCollectorFiles starts the collector once on free ports; it returns
// the error of a collector that stopped before it ran.
func tryStartCollectorFiles(t *testing.T, sinkAddr string, files []string, extra string) (endpoints, error) {
	t.Helper()
	e := endpoints{ingest: freePort(t), promAPI: freePort(t), otlpGRPC: freePort(t), otlpHTTP: freePort(t), remoteWrite: freePort(t)}
	overrides := fmt.Sprintf(`
receivers:
  metrics_service:
    endpoint: %s
    prometheus_api:
      endpoint: %s
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
  prometheus_remote_write:
    endpoint: %s
processors:
  batch:
    timeout: 20ms
exporters:
  otlp_grpc/sink:
    endpoint: %s
    tls:
      insecure: true
extensions:
  metrics_store:
    store:
      path: %s
  health_check:
    endpoint: %s
  file_storage:
    directory: %s
  metrics_management:
    endpoint: %s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      exporters: [debug, otlp_grpc/sink]
`, e.ingest, e.promAPI, e.otlpGRPC, e.otlpHTTP, e.remoteWrite, sinkAddr, filepath.Join(t.TempDir(), "tsdb"), freePort(t), t.TempDir(), freePort(t))

	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-metrics", Version: "e2e"},
		Factories: Components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs: append(append(append([]string{"file:" + filepath.Join("..", "..", "testdata", "config.yaml")}, files...), "yaml:"+overrides), extraURIs(extra)...),
			ProviderFactories: []confmap.ProviderFactory{
				fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory(),
			},
		}},
		SkipSettingGRPCLogger: true,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- col.Run(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for col.GetState() != otelcol.StateRunning {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("the collector stopped before it ran")
			}
			return endpoints{}, err
		case <-time.After(10 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "collector not running after 30s")
	}
	t.Cleanup(func() {
		col.Shutdown()
		require.NoError(t, <-done)
	})
	return e, nil
}

func extraURIs(extra string) []string {
	if extra == "" {
		return nil
	}
	return []string{"yaml:" + extra}
}

// startSink serves an OTLP sink on a free port until the test ends.
func startSink(t *testing.T) (*otlpSink, string) {
	t.Helper()
	sink := &otlpSink{}
	srv := grpc.NewServer()
	pmetricotlp.RegisterGRPCServer(srv, sink)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sink, ln.Addr().String()
}

func TestRecordThroughCollectorReachesOTLPSink(t *testing.T) {
	sink, sinkAddr := startSink(t)
	ingest, promAPI := startCollector(t, sinkAddr)
	conn, err := grpc.NewClient(ingest, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewMetricsServiceClient(conn)
	ctx := context.Background()

	// health and reflection, as grpcurl uses them
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "metricsmodule.v1.MetricsService"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.Status)
	assert.ElementsMatch(t, []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "metricsmodule.v1.MetricsService"}, listServices(t, conn))

	// the specification's example, three times, and a batch
	for range 3 {
		_, err = client.RecordMetric(ctx, &pb.RecordMetricRequest{
			Resource: &pb.Resource{Attributes: map[string]string{"service.name": "users-api"}},
			Metric: &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1.0,
				Labels: map[string]string{"method": "GET", "path": "/api/v1/users"}},
		})
		require.NoError(t, err)
	}
	_, err = client.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": "users-api"}},
		Metrics: []*pb.MetricData{
			{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Labels: map[string]string{"method": "POST", "path": "/api/v1/users"}},
			{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": "GET", "path": "/api/v1/users"}},
		},
	})
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		totals, _ := sink.counterTotals("http_requests_total", "method")
		return totals["GET"] == 4 && totals["POST"] == 2
	}, 10*time.Second, 20*time.Millisecond, "the OTLP sink receives the cumulative totals")
	_, service := sink.counterTotals("http_requests_total", "method")
	assert.Equal(t, "users-api", service)

	// the same data is readable from the embedded store: gRPC and Prometheus HTTP API
	q, err := client.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `sum by (method) (http_requests_total)`})
	require.NoError(t, err)
	byMethod := map[string]float64{}
	for _, s := range q.Series {
		byMethod[s.Labels["method"]] = s.Samples[0].Value
	}
	assert.Equal(t, map[string]float64{"GET": 4, "POST": 2}, byMethod)
	resp, err := http.Get("http://" + promAPI + "/api/v1/query?query=" + url.QueryEscape(`sum(http_requests_total{job="users-api"})`))
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "success", body.Status)
	require.Len(t, body.Data.Result, 1)
	assert.Equal(t, "6", body.Data.Result[0].Value[1])
}

func listServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := grpc_reflection_v1.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&grpc_reflection_v1.ServerReflectionRequest{
		MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.NoError(t, stream.CloseSend())
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

// TestBuilderConfigMatchesComponents keeps the in-process factories and the
// ocb manifest in step.
func TestBuilderConfigMatchesComponents(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "builder-config.yaml"))
	require.NoError(t, err)
	var inManifest []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- gomod: (\S+) \S+\s*$(?:\n\s*import: (\S+))?`).FindAllStringSubmatch(string(raw), -1) {
		if m[2] != "" {
			inManifest = append(inManifest, m[2])
		} else if !regexp.MustCompile(`/confmap/provider/`).MatchString(m[1]) {
			inManifest = append(inManifest, m[1])
		}
	}
	want := append([]string(nil), ComponentImports...)
	sort.Strings(want)
	sort.Strings(inManifest)
	assert.Equal(t, want, inManifest)
}
