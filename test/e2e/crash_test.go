package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/test/childcollector"
)

func TestMain(m *testing.M) {
	childcollector.RunIfChild(Components, nil)
	os.Exit(m.Run())
}

// collectorProc is a collector in a child process over one data directory.
type collectorProc struct {
	t       *testing.T
	cfgPath string
	e       endpoints
	mgmt    string // MetricsManagementService
	dir     string
	proc    *childcollector.Proc
}

// newCollectorProc writes the overrides of a collector on free ports that
// keeps its data in dir.
func newCollectorProc(t *testing.T, dir string) *collectorProc {
	t.Helper()
	return newCollectorProcWith(t, dir, (*collectorProc).writeConfig)
}

// newCollectorProcWith is newCollectorProc with another overrides writer
// (it picks free ports and writes p.cfgPath).
func newCollectorProcWith(t *testing.T, dir string, write func(*collectorProc)) *collectorProc {
	t.Helper()
	p := &collectorProc{t: t, cfgPath: filepath.Join(dir, "overrides.yaml"), dir: dir}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "storage"), 0o700))
	write(p)
	first := true
	p.proc = childcollector.New(t, childcollector.Options{Spec: func() childcollector.Spec {
		if !first { // a port was taken: new ones
			write(p)
		}
		first = false
		return childcollector.Spec{
			URIs:    []string{"file:" + filepath.Join("..", "..", "testdata", "config.yaml"), "file:" + p.cfgPath},
			Serving: []childcollector.Service{{Addr: p.e.ingest, Name: "metricsmodule.v1.MetricsService"}},
		}
	}})
	return p
}

// writeConfig picks free ports and writes the overrides with them.
func (p *collectorProc) writeConfig() {
	p.writeOverrides(`
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000000
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
`)
}

// writeOverrides picks free ports and writes the overrides: every receiver
// and extension on them, the data under p.dir, then tail (exporters,
// service).
func (p *collectorProc) writeOverrides(tail string) {
	t := p.t
	p.e = endpoints{ingest: freePort(t), promAPI: freePort(t), otlpGRPC: freePort(t), otlpHTTP: freePort(t), remoteWrite: freePort(t)}
	p.mgmt = freePort(t)
	cfg := fmt.Sprintf(`
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
`, p.e.ingest, p.e.promAPI, p.e.otlpGRPC, p.e.otlpHTTP, p.e.remoteWrite, filepath.Join(p.dir, "tsdb"), freePort(t), filepath.Join(p.dir, "storage"), p.mgmt)
	require.NoError(t, os.WriteFile(p.cfgPath, []byte(cfg+tail), 0o600))
}

// start runs the collector and waits until MetricsService is serving (a
// port taken meanwhile is retried: childcollector.Proc.Start); clients
// made with client() after start use the ports in force.
func (p *collectorProc) start() {
	p.t.Helper()
	p.proc.Start()
}

// stop ends the collector with sig and waits for it.
func (p *collectorProc) stop(sig syscall.Signal) {
	p.t.Helper()
	p.proc.Stop(sig)
}

func (p *collectorProc) client() pb.MetricsServiceClient {
	p.t.Helper()
	conn, err := grpc.NewClient(p.e.ingest, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(p.t, err)
	p.t.Cleanup(func() { _ = conn.Close() })
	return pb.NewMetricsServiceClient(conn)
}

// metadata returns the Prometheus API's metadata of one metric family.
func (p *collectorProc) metadata(name string) []map[string]string {
	p.t.Helper()
	resp, err := http.Get("http://" + p.e.promAPI + "/api/v1/metadata?metric=" + url.QueryEscape(name))
	require.NoError(p.t, err)
	defer resp.Body.Close()
	var body struct {
		Data map[string][]map[string]string `json:"data"`
	}
	require.NoError(p.t, json.NewDecoder(resp.Body).Decode(&body))
	return body.Data[name]
}

// rawValues returns every sample value of the series sel selects in the
// window before at, by the value of label.
func (p *collectorProc) rawValues(sel, label string, window time.Duration, at time.Time) map[string]map[float64]bool {
	p.t.Helper()
	q := fmt.Sprintf("%s[%ds]", sel, int(window.Seconds()))
	resp, err := http.Get("http://" + p.e.promAPI + "/api/v1/query?query=" + url.QueryEscape(q) + "&time=" + strconv.FormatInt(at.Unix(), 10))
	require.NoError(p.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(p.t, json.Unmarshal(raw, &body), "%s", raw)
	out := map[string]map[float64]bool{}
	for _, r := range body.Data.Result {
		set := out[r.Metric[label]]
		if set == nil {
			set = map[float64]bool{}
			out[r.Metric[label]] = set
		}
		for _, v := range r.Values {
			f, err := strconv.ParseFloat(v[1].(string), 64)
			require.NoError(p.t, err)
			set[f] = true
		}
	}
	return out
}

// TestMetadataSurvivesKill9 records metrics with types, units and help, kills
// the collector with SIGKILL, and finds them again after the restart.
func TestMetadataSurvivesKill9(t *testing.T) {
	p := newCollectorProc(t, t.TempDir())
	p.start()
	c := p.client()
	ctx := context.Background()
	_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": "crash"}},
		Metrics: []*pb.MetricData{
			{Name: "crash_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Description: "requests served", Labels: map[string]string{"path": "/"}},
			{Name: "crash_temperature", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 21, Unit: "Cel", Description: "room temperature"},
		},
	})
	require.NoError(t, err)
	before := map[string][]map[string]string{"crash_requests_total": p.metadata("crash_requests_total"), "crash_temperature_celsius": p.metadata("crash_temperature_celsius")}
	require.NotEmpty(t, before["crash_requests_total"])
	require.NotEmpty(t, before["crash_temperature_celsius"])

	p.stop(syscall.SIGKILL)
	p.start()
	for name, want := range before {
		assert.Equal(t, want, p.metadata(name), "metadata of %s after kill -9", name)
	}
	assert.Equal(t, "counter", before["crash_requests_total"][0]["type"])
	assert.Equal(t, "requests served", before["crash_requests_total"][0]["help"])
	assert.Equal(t, "gauge", before["crash_temperature_celsius"][0]["type"])
}

// TestNoAcknowledgedPointLostOnKill9OrSIGTERM writes under load from several
// clients, stops the collector abruptly (SIGKILL) or cleanly (SIGTERM) in the
// middle, and finds every acknowledged point after the restart.
func TestNoAcknowledgedPointLostOnKill9OrSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			p := newCollectorProc(t, t.TempDir())
			p.start()
			c := p.client()
			const writers = 4
			var mu sync.Mutex
			acked := map[string][]float64{}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					writer := strconv.Itoa(w)
					for seq := 1; ctx.Err() == nil && seq <= 100_000; seq++ {
						var ms []*pb.MetricData
						// each request: 50 points of the writer's series, each at its own millisecond
						for i := range 50 {
							v := float64(seq*100 + i)
							ms = append(ms, &pb.MetricData{Name: "crash_probe", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: v,
								Timestamp: timestamppb.New(start.Add(time.Duration(seq*50+i) * time.Millisecond)), Labels: map[string]string{"writer": writer}})
						}
						cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
						_, err := c.RecordBatchMetrics(cctx, &pb.RecordBatchMetricsRequest{Metrics: ms})
						ccancel()
						if err != nil {
							return
						}
						mu.Lock()
						for _, m := range ms {
							acked[writer] = append(acked[writer], m.Value)
						}
						mu.Unlock()
					}
				})
			}
			// stop after some points were acknowledged, while writing
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, v := range acked {
					n += len(v)
				}
				return n >= 20_000
			}, 60*time.Second, 10*time.Millisecond)
			p.stop(sig)
			cancel()
			wg.Wait()

			p.start()
			// the points run ahead of the clock (one per millisecond): read up to a minute ahead
			got := p.rawValues(`crash_probe`, "writer", time.Hour, time.Now().Add(time.Minute))
			total := 0
			for writer, values := range acked {
				missing := 0
				for _, v := range values {
					if !got[writer][v] {
						missing++
					}
				}
				total += len(values)
				assert.Zero(t, missing, "writer %s: %d of %d acknowledged points missing after %s", writer, missing, len(values), sig)
			}
			t.Logf("%s: %d acknowledged points, all found after the restart", sig, total)
		})
	}
}

// rssBytes is the resident set of the child collector (VmRSS).
func (p *collectorProc) rssBytes() int64 {
	p.t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.proc.Pid()))
	require.NoError(p.t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			require.NoError(p.t, err)
			return kb << 10
		}
	}
	p.t.Fatal("no VmRSS")
	return 0
}

// TestHostileQueriesAreRefusedWhileIngestGoesOn runs the runaway
// queries against a collector process on the default config while a client
// ingests: each query is refused with the limit's name before evaluation
// (gRPC RESOURCE_EXHAUSTED, HTTP 422), every ingest call succeeds, and the
// process's memory stays bounded.
func TestHostileQueriesAreRefusedWhileIngestGoesOn(t *testing.T) {
	p := newCollectorProc(t, t.TempDir())
	p.start()
	c := p.client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ingestErr error
	var ingested int
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_, err := c.RecordMetric(ctx, &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "steady", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}})
			if err != nil && ctx.Err() == nil {
				ingestErr = err
				return
			}
			ingested++
		}
	})
	before := p.rssBytes()
	for range 3 {
		_, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: `sum_over_time(vector(1)[30d:1ms])`})
		st := status.Convert(err)
		require.Equal(t, codes.ResourceExhausted, st.Code(), "%v", err)
		assert.Contains(t, st.Message(), "query.max_subquery_steps")

		resp, err := http.Get("http://" + p.e.promAPI + "/api/v1/query?timeout=2s&query=" + url.QueryEscape(`count_over_time(vector(1)[6h:1ms])`))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "%s", body)
		assert.Contains(t, string(body), "query.max_subquery")
	}
	after := p.rssBytes()
	cancel()
	wg.Wait()
	require.NoError(t, ingestErr, "ingest is never refused while hostile queries run")
	assert.Positive(t, ingested)
	assert.Less(t, after, before+256<<20, "RSS grew from %d to %d bytes", before, after)
	t.Logf("RSS %d MiB -> %d MiB; %d RecordMetric calls succeeded meanwhile", before>>20, after>>20, ingested)
}
