package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// startAlertmanager runs Debian's prometheus-alertmanager 0.25 on a free
// port with a receiver that drops notifications; alerts stay readable
// through its /api/v2/alerts.
func startAlertmanager(t *testing.T) *testpeer.Peer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("route:\n  receiver: drop\nreceivers:\n  - name: drop\n"), 0o600))
	return testpeer.Start(t, testpeer.Config{
		Binary: "prometheus-alertmanager",
		Args: func(addr string) []string {
			return []string{
				"--config.file=" + cfg,
				"--storage.path=" + filepath.Join(dir, "data"),
				"--cluster.listen-address=",
				"--web.listen-address=" + addr,
			}
		},
		ReadyPath: "/-/ready",
	})
}

// postOTLP sends md over OTLP/HTTP protobuf and requires a 200.
func postOTLP(t *testing.T, otlpHTTP string, md pmetric.Metrics) {
	t.Helper()
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post("http://"+otlpHTTP+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
}

// getJSON GETs a Prometheus API path and decodes the answer into out,
// returning the HTTP status.
func getJSON(t *testing.T, rawURL string, out any) int {
	t.Helper()
	resp, err := http.Get(rawURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, out), "%s answered %s", rawURL, b)
	return resp.StatusCode
}

const e2eRules = `groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:e2e_requests:sum
        expr: sum by (job) (e2e_requests_total)
      - alert: E2EManyRequests
        expr: sum by (job) (e2e_requests_total) > 5
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} served {{ $value }} requests"
`

// TestRulesRecordAlertAndReload: a recording rule's output is readable
// through /api/v1/query and streamed to a StreamMetrics subscriber; an
// alerting rule's alert reaches a real Alertmanager; /api/v1/rules and
// /api/v1/alerts answer in Prometheus' shape; a bad edit keeps the rules in
// force and a good one is picked up without a restart.
func TestRulesRecordAlertAndReload(t *testing.T) {
	am := startAlertmanager(t)
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "e2e.rules.yaml")
	require.NoError(t, os.WriteFile(ruleFile, []byte(e2eRules), 0o600))
	_, sinkAddr := startSink(t)
	e := startCollectorWith(t, sinkAddr, fmt.Sprintf(`
receivers:
  metrics_service:
    rules:
      files: [%q]
      evaluation_interval: 1s
      reload_interval: 100ms
      alertmanagers: [%q]
      external_url: http://grafana.example:3000
`, filepath.Join(dir, "*.yaml"), am.URL()))
	conn, err := grpc.NewClient(e.ingest, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c := pb.NewMetricsServiceClient(conn)
	stream := subscribe(t, c, "job:e2e_requests:sum")

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("e2e_requests")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetDoubleValue(10)
	postOTLP(t, e.otlpHTTP, md)

	// recording rule output: queryable...
	require.Eventually(t, func() bool {
		return promQuery(t, e.promAPI, "job:e2e_requests:sum")["map[__name__:job:e2e_requests:sum job:checkout]"] == 10
	}, 20*time.Second, 50*time.Millisecond, "the recording rule's output is readable")
	// ...and streamed
	got := streamed(t, stream, "job:e2e_requests:sum")
	assert.Equal(t, 10.0, got["job:e2e_requests:sum"].Value)

	// the alert reaches Alertmanager
	var amAlerts []struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		GeneratorURL string            `json:"generatorURL"`
	}
	require.Eventually(t, func() bool {
		getJSON(t, am.URL()+"/api/v2/alerts", &amAlerts)
		return len(amAlerts) == 1
	}, 20*time.Second, 50*time.Millisecond, "Alertmanager received the alert")
	assert.Equal(t, map[string]string{"alertname": "E2EManyRequests", "job": "checkout", "severity": "page"}, amAlerts[0].Labels)
	assert.Equal(t, "checkout served 10 requests", amAlerts[0].Annotations["summary"])
	assert.True(t, strings.HasPrefix(amAlerts[0].GeneratorURL, "http://grafana.example:3000/graph?g0.expr="), amAlerts[0].GeneratorURL)

	// /api/v1/alerts and /api/v1/rules
	var alerts struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
				Value  string            `json:"value"`
			} `json:"alerts"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, "http://"+e.promAPI+"/api/v1/alerts", &alerts))
	require.Len(t, alerts.Data.Alerts, 1)
	assert.Equal(t, "firing", alerts.Data.Alerts[0].State)
	assert.Equal(t, "1e+01", alerts.Data.Alerts[0].Value)

	type ruleJSON struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Health string `json:"health"`
		State  string `json:"state"`
		Query  string `json:"query"`
	}
	type rulesAnswer struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Name     string     `json:"name"`
				File     string     `json:"file"`
				Interval float64    `json:"interval"`
				Rules    []ruleJSON `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	// fetchRules reads /api/v1/rules into a value of its own: conditions of
	// Eventually and Never run on other goroutines and may overlap.
	fetchRules := func() rulesAnswer {
		var a rulesAnswer
		require.Equal(t, http.StatusOK, getJSON(t, "http://"+e.promAPI+"/api/v1/rules", &a))
		return a
	}
	ruleNames := func() []string {
		var names []string
		for _, g := range fetchRules().Data.Groups {
			for _, r := range g.Rules {
				names = append(names, r.Name)
			}
		}
		return names
	}
	require.Equal(t, []string{"job:e2e_requests:sum", "E2EManyRequests"}, ruleNames())
	rules := fetchRules()
	g := rules.Data.Groups[0]
	assert.Equal(t, "e2e", g.Name)
	assert.Equal(t, ruleFile, g.File)
	assert.Equal(t, 1.0, g.Interval)
	require.Eventually(t, func() bool {
		a := fetchRules()
		return len(a.Data.Groups) > 0 && len(a.Data.Groups[0].Rules) > 0 && a.Data.Groups[0].Rules[0].Health == "ok"
	}, 10*time.Second, 50*time.Millisecond)
	rules = fetchRules()
	assert.Equal(t, "recording", rules.Data.Groups[0].Rules[0].Type)
	assert.Equal(t, "alerting", rules.Data.Groups[0].Rules[1].Type)
	assert.Equal(t, "firing", rules.Data.Groups[0].Rules[1].State)

	// a bad edit: refused, the rules in force stay
	require.NoError(t, os.WriteFile(ruleFile, []byte("groups:\n  - name: e2e\n    rules:\n      - record: broken\n        expr: sum(\n"), 0o600))
	bad := filepath.Join(dir, "bad-probe.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("groups: []\n"), 0o600))
	type runtimeInfo struct {
		Data struct {
			ReloadConfigSuccess bool `json:"reloadConfigSuccess"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		var ri runtimeInfo
		getJSON(t, "http://"+e.promAPI+"/api/v1/status/runtimeinfo", &ri)
		return !ri.Data.ReloadConfigSuccess
	}, 10*time.Second, 50*time.Millisecond, "status/runtimeinfo reports the refused reload")
	require.Never(t, func() bool { return len(ruleNames()) != 2 }, 500*time.Millisecond, 50*time.Millisecond, "a bad file keeps the rules in force")
	// a good edit afterwards is picked up
	require.NoError(t, os.WriteFile(ruleFile, []byte(e2eRules+`      - record: e2e_requests:count
        expr: count(e2e_requests_total)
`), 0o600))
	require.Eventually(t, func() bool { return len(ruleNames()) == 3 }, 10*time.Second, 50*time.Millisecond, "the changed file is reloaded")
	var ri runtimeInfo
	getJSON(t, "http://"+e.promAPI+"/api/v1/status/runtimeinfo", &ri)
	assert.True(t, ri.Data.ReloadConfigSuccess)
	var cfg struct {
		Data struct {
			YAML string `json:"yaml"`
		} `json:"data"`
	}
	getJSON(t, "http://"+e.promAPI+"/api/v1/status/config", &cfg)
	assert.Contains(t, cfg.Data.YAML, "rule_files:\n  - "+strconv.Quote(bad))
	assert.Contains(t, cfg.Data.YAML, "# alerts are sent to "+am.URL()+"/api/v2/alerts")
	var ams struct {
		Data struct {
			Active []struct {
				URL string `json:"url"`
			} `json:"activeAlertmanagers"`
		} `json:"data"`
	}
	getJSON(t, "http://"+e.promAPI+"/api/v1/alertmanagers", &ams)
	require.Len(t, ams.Data.Active, 1)
	assert.Equal(t, am.URL()+"/api/v2/alerts", ams.Data.Active[0].URL)
	require.Eventually(t, func() bool {
		return promQuery(t, e.promAPI, "e2e_requests:count")["map[__name__:e2e_requests:count]"] == 1
	}, 20*time.Second, 50*time.Millisecond, "the new rule is evaluated")
}

// TestOTLPExemplarsAnsweredByQueryExemplars: exemplars of an OTLP sum and
// histogram are kept and answered by /api/v1/query_exemplars in
// Prometheus' shape.
func TestOTLPExemplarsAnsweredByQueryExemplars(t *testing.T) {
	_, sinkAddr := startSink(t)
	e := startCollectorAt(t, sinkAddr)
	now := time.Now().Truncate(time.Millisecond)
	traceID, _ := hex.DecodeString("5b8efff798038103d269b633813fc60c")
	spanID, _ := hex.DecodeString("eee19b7ec3c1b174")

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	addExemplar := func(exs pmetric.ExemplarSlice, v float64) {
		ex := exs.AppendEmpty()
		ex.SetTimestamp(pcommon.NewTimestampFromTime(now))
		ex.SetDoubleValue(v)
		ex.SetTraceID(pcommon.TraceID(traceID))
		ex.SetSpanID(pcommon.SpanID(spanID))
	}
	s := ms.AppendEmpty()
	s.SetName("ex_orders")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sdp := sum.DataPoints().AppendEmpty()
	sdp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	sdp.SetDoubleValue(3)
	addExemplar(sdp.Exemplars(), 1)

	h := ms.AppendEmpty()
	h.SetName("ex_latency")
	h.SetUnit("s")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hdp := hist.DataPoints().AppendEmpty()
	hdp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	hdp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	hdp.BucketCounts().FromRaw([]uint64{0, 1, 0})
	hdp.SetCount(1)
	hdp.SetSum(0.25)
	addExemplar(hdp.Exemplars(), 0.25)
	postOTLP(t, e.otlpHTTP, md)

	type exemplarsAnswer struct {
		Status string `json:"status"`
		Data   []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels    map[string]string `json:"labels"`
				Value     string            `json:"value"`
				Timestamp float64           `json:"timestamp"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	ask := func(q string) exemplarsAnswer {
		var a exemplarsAnswer
		u := fmt.Sprintf("http://%s/api/v1/query_exemplars?query=%s&start=%d&end=%d", e.promAPI, url.QueryEscape(q), now.Add(-time.Minute).Unix(), now.Add(time.Minute).Unix())
		require.Equal(t, http.StatusOK, getJSON(t, u, &a))
		require.Equal(t, "success", a.Status)
		return a
	}
	wantLabels := map[string]string{"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174"}

	a := ask(`ex_orders_total`)
	require.Len(t, a.Data, 1)
	assert.Equal(t, map[string]string{"__name__": "ex_orders_total", "job": "checkout"}, a.Data[0].SeriesLabels)
	require.Len(t, a.Data[0].Exemplars, 1)
	assert.Equal(t, wantLabels, a.Data[0].Exemplars[0].Labels)
	assert.Equal(t, "1", a.Data[0].Exemplars[0].Value)
	assert.InDelta(t, float64(now.UnixMilli())/1000, a.Data[0].Exemplars[0].Timestamp, 0.0005)

	// a histogram's exemplar sits on the bucket it falls in
	a = ask(`histogram_quantile(0.9, rate(ex_latency_seconds_bucket[5m]))`)
	require.Len(t, a.Data, 1)
	assert.Equal(t, "1", a.Data[0].SeriesLabels["le"])
	assert.Equal(t, "0.25", a.Data[0].Exemplars[0].Value)

	// no selector: an empty list, as Prometheus
	assert.Empty(t, ask(`1+1`).Data)
}
