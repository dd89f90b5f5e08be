package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/test/childcollector"
)

// The README's recipe ("Running a fleet"): the default config and the
// fleet overlays, configured by environment variables.
var recipe = []string{
	"file:" + filepath.Join("..", "..", "testdata", "config.yaml"),
	"file:" + filepath.Join("..", "..", "testdata", "fleet-node.yaml"),
	"file:" + filepath.Join("..", "..", "testdata", "fleet-streams.yaml"),
	"file:" + filepath.Join("..", "..", "testdata", "fleet-registry.yaml"),
	// quiet children: the debug exporter logs every batch at info
	"yaml:service::telemetry::logs::level: warn",
}

// portSuffixes are the ports fleet-node.yaml derives from PORT_PREFIX.
var portSuffixes = []string{"17", "18", "20", "21", "22", "23", "33"}

// freePrefix returns a PORT_PREFIX (20..65) whose every port was free a
// moment ago: fleet-node.yaml names ports by prefix, as the README runs it.
// A port taken before the child binds it is retried by childcollector.
func freePrefix(t *testing.T) int {
	t.Helper()
	for _, p := range rand.Perm(46) {
		prefix := p + 20
		ok := true
		var held []net.Listener
		for _, s := range portSuffixes {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d%s", prefix, s))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			_ = l.Close()
		}
		if ok {
			return prefix
		}
	}
	t.Fatal("no PORT_PREFIX with every port free")
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpClient keeps no idle connections (goleak) and bounds every call.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// node is one collector process of the fleet.
type node struct {
	name   string
	prefix int
	proc   *childcollector.Proc
	conn   *grpc.ClientConn
	api    pb.MetricsServiceClient
	mgmt   pb.MetricsManagementServiceClient
	health healthpb.HealthClient // on the management endpoint
}

// peers are the fleet's shared services.
type peers struct {
	sharedStore, natsURL string
	etcd                 []string
}

func (n *node) addr(suffix string) string { return fmt.Sprintf("127.0.0.1:%d%s", n.prefix, suffix) }

// startNode starts a collector process of the recipe named name, with its
// data under dir (its working directory), and connects to it.
func startNode(t *testing.T, name, dir string, p peers) *node {
	t.Helper()
	n := &node{name: name}
	n.proc = childcollector.New(t, childcollector.Options{Dir: dir, Spec: func() childcollector.Spec {
		n.prefix = freePrefix(t)
		uris := recipe
		if spooledProviders {
			uris = append(append([]string(nil), recipe...), spoolOverlay...)
		}
		return childcollector.Spec{
			URIs: uris,
			Env: []string{
				"NODE_NAME=" + name,
				"PORT_PREFIX=" + strconv.Itoa(n.prefix),
				"METRICS_PORT=" + strconv.Itoa(freePort(t)),
				"SHARED_STORE=" + p.sharedStore,
				"NATS_URL=" + p.natsURL,
				"ETCD_ENDPOINTS=" + strings.Join(p.etcd, ","),
			},
			Serving: []childcollector.Service{
				{Addr: n.addr("20"), Name: "metricsmodule.v1.MetricsService"},
				{Addr: n.addr("21"), Name: "metricsmodule.v1.MetricsManagementService"},
			},
		}
	}})
	n.proc.Start()
	// reconnect fast after the node was killed and restarted
	params := grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond}, MinConnectTimeout: time.Second}
	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithConnectParams(params))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	n.conn = dial(n.addr("20"))
	mc := dial(n.addr("21"))
	n.api, n.mgmt, n.health = pb.NewMetricsServiceClient(n.conn), pb.NewMetricsManagementServiceClient(mc), healthpb.NewHealthClient(mc)
	return n
}

// registryServing reports whether the node's provider registry is healthy.
func (n *node) registryServing() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := n.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "metricsmodule.v1.ProviderRegistry"})
	return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// providers returns the node's providers by id.
func (n *node) providers(t *testing.T) map[string]*pb.Provider {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := n.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	if err != nil {
		return nil
	}
	out := map[string]*pb.Provider{}
	for _, p := range list.GetProviders() {
		out[p.GetConfig().GetProviderId()] = p
	}
	return out
}

// seriesKey names one running total: a load series on one node.
type seriesKey struct {
	worker, key, instance string
}

func (k seriesKey) String() string { return k.worker + "/" + k.key + "@" + k.instance }

// sink is an OTLP gRPC destination that counts each value of each running
// total it receives.
type sink struct {
	pmetricotlp.UnimplementedGRPCServer
	name string
	addr string

	mu     sync.Mutex
	values map[seriesKey]map[float64]int
	points int
}

func startSink(t *testing.T, name string) *sink {
	t.Helper()
	s := &sink{name: name, values: map[seriesKey]map[float64]int{}}
	srv := grpc.NewServer()
	pmetricotlp.RegisterGRPCServer(srv, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return s
}

// Export implements pmetricotlp.GRPCServer.
func (s *sink) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if m.Name() != loadMetric || m.Type() != pmetric.MetricTypeSum {
					continue
				}
				dps := m.Sum().DataPoints()
				for d := range dps.Len() {
					dp := dps.At(d)
					key := seriesKey{}
					if v, ok := dp.Attributes().Get("worker"); ok {
						key.worker = v.Str()
					}
					if v, ok := dp.Attributes().Get("key"); ok {
						key.key = v.Str()
					}
					if v, ok := dp.Attributes().Get("collector_instance"); ok {
						key.instance = v.Str()
					}
					if s.values[key] == nil {
						s.values[key] = map[float64]int{}
					}
					s.values[key][dp.DoubleValue()]++
					s.points++
				}
			}
		}
	}
	return pmetricotlp.NewExportResponse(), nil
}

// snapshot copies what the sink received.
func (s *sink) snapshot() (map[seriesKey]map[float64]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[seriesKey]map[float64]int, len(s.values))
	for k, vs := range s.values {
		out[k] = make(map[float64]int, len(vs))
		for v, n := range vs {
			out[k][v] = n
		}
	}
	return out, s.points
}

// maxOf returns the largest value a sink received for each series.
func maxOf(values map[seriesKey]map[float64]int) map[seriesKey]float64 {
	out := map[seriesKey]float64{}
	for k, vs := range values {
		for v := range vs {
			out[k] = max(out[k], v)
		}
	}
	return out
}

// otlpProvider is a provider exporting to s by OTLP gRPC.
func otlpProvider(id string, s *sink) *pb.ProviderConfig {
	return &pb.ProviderConfig{
		ProviderId: id,
		Name:       id + " to " + s.name,
		Type:       pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
		Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{
			Endpoint: s.addr,
		}},
		Security: &pb.SecurityConfig{Tls: &pb.TlsSettings{Insecure: true}},
	}
}

// promVector runs an instant query on a Prometheus HTTP API (base URL) and
// returns the value of each series by the labels named.
func promVector(base, q string, labels ...string) (map[string]float64, error) {
	resp, err := httpClient.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body.Error)
	}
	out := map[string]float64{}
	for _, r := range body.Data.Result {
		var parts []string
		for _, l := range labels {
			parts = append(parts, r.Metric[l])
		}
		v, err := strconv.ParseFloat(r.Value[1].(string), 64)
		if err != nil {
			return nil, err
		}
		out[strings.Join(parts, "/")] = v
	}
	return out, nil
}

// sortedKeys returns the keys of m in order (stable failure messages).
func sortedKeys[V any](m map[seriesKey]V) []seriesKey {
	keys := make([]seriesKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}
