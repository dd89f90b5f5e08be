package e2e

import (
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
)

// grafanaCall is one request Grafana's Prometheus data source sends and
// what the answer's data must look like.
type grafanaCall struct {
	name   string
	method string // GET: params in the URL; POST: form body
	path   string
	params url.Values
	check  func(t *testing.T, data json.RawMessage)
}

// TestGrafanaDataSourceCallSequence replays the calls Grafana's Prometheus
// data source makes (pkg/promlib healthcheck.go and heuristics.go on "Save
// & test"; language_provider.ts and datasource.ts when Explore opens and
// runs a query, with the default POST method) and checks each answer's
// status, content type and data shape as Grafana decodes them.
func TestGrafanaDataSourceCallSequence(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "g.yaml"), []byte(`groups:
  - name: grafana
    rules:
      - record: job:gf_requests:rate5m
        expr: sum by (job) (rate(gf_requests_total[5m]))
      - alert: GfDown
        expr: absent(gf_requests_total{job="nope"})
`), 0o600))
	_, sinkAddr := startSink(t)
	e := startCollectorWith(t, sinkAddr, fmt.Sprintf(`
receivers:
  metrics_service:
    rules:
      files: [%q]
      evaluation_interval: 1s
`, filepath.Join(dir, "*.yaml")))

	// a counter with an exemplar and a described gauge, 3 points a minute apart
	now := time.Now().Truncate(time.Second)
	for i := 2; i >= 0; i-- {
		ts := now.Add(-time.Duration(i) * time.Minute)
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "shop")
		rm.Resource().Attributes().PutStr("service.instance.id", "shop-1")
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		c := ms.AppendEmpty()
		c.SetName("gf_requests")
		c.SetDescription("Requests served.")
		sum := c.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetDoubleValue(float64(100 * (3 - i)))
		dp.Attributes().PutStr("route", "/cart")
		ex := dp.Exemplars().AppendEmpty()
		ex.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		ex.SetDoubleValue(1)
		ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		g := ms.AppendEmpty()
		g.SetName("gf_temperature")
		g.SetUnit("Cel")
		g.SetDescription("Room temperature.")
		gdp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		gdp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		gdp.SetDoubleValue(21)
		postOTLP(t, e.otlpHTTP, md)
	}
	// the recording rule has run once (Explore lists its output)
	require.Eventually(t, func() bool {
		return len(promQuery(t, e.promAPI, "job:gf_requests:rate5m")) == 1
	}, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		var a struct {
			Data struct {
				Alerts []any `json:"alerts"`
			} `json:"data"`
		}
		getJSON(t, "http://"+e.promAPI+"/api/v1/alerts", &a)
		return len(a.Data.Alerts) == 1
	}, 20*time.Second, 50*time.Millisecond, "the alerting rule has run once")

	sec := func(tm time.Time) string { return strconv.FormatInt(tm.Unix(), 10) }
	rng := url.Values{"start": {sec(now.Add(-time.Hour))}, "end": {sec(now.Add(time.Minute))}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = append([]string(nil), vs...)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	strings_ := func(want ...string) func(*testing.T, json.RawMessage) {
		return func(t *testing.T, data json.RawMessage) {
			var got []string
			require.NoError(t, json.Unmarshal(data, &got), "data is a list of strings")
			for _, w := range want {
				assert.Contains(t, got, w)
			}
		}
	}
	calls := []grafanaCall{
		// Save & test: the health check, then the heuristics
		{"health check query", "POST", "/api/v1/query", url.Values{"query": {"1+1"}, "time": {"4"}}, func(t *testing.T, data json.RawMessage) {
			var d struct {
				ResultType string          `json:"resultType"`
				Result     json.RawMessage `json:"result"`
			}
			require.NoError(t, json.Unmarshal(data, &d))
			assert.Equal(t, "scalar", d.ResultType)
			var r []any
			require.NoError(t, json.Unmarshal(d.Result, &r))
			require.Len(t, r, 2)
			assert.InDelta(t, 4, r[0], 0)
			assert.Equal(t, "2", r[1])
		}},
		{"buildinfo", "GET", "/api/v1/status/buildinfo", nil, func(t *testing.T, data json.RawMessage) {
			var d struct {
				Version  string            `json:"version"`
				Revision string            `json:"revision"`
				Features map[string]string `json:"features"`
			}
			require.NoError(t, json.Unmarshal(data, &d))
			assert.Regexp(t, `^3\.\d+\.\d+$`, d.Version, "semver: Grafana picks features by it")
			assert.Empty(t, d.Features, "no features: Grafana treats the source as Prometheus, not Mimir")
		}},
		// Explore opens: metric names, metadata, label keys
		{"metric names", "GET", "/api/v1/label/__name__/values", rng, strings_("gf_requests_total", "gf_temperature_celsius", "job:gf_requests:rate5m")},
		{"metadata", "GET", "/api/v1/metadata", nil, func(t *testing.T, data json.RawMessage) {
			var d map[string][]struct {
				Type string `json:"type"`
				Help string `json:"help"`
				Unit string `json:"unit"`
			}
			require.NoError(t, json.Unmarshal(data, &d))
			require.NotEmpty(t, d["gf_requests_total"])
			assert.Equal(t, "counter", d["gf_requests_total"][0].Type)
			assert.Equal(t, "Requests served.", d["gf_requests_total"][0].Help)
			assert.Equal(t, "celsius", d["gf_temperature_celsius"][0].Unit)
		}},
		{"labels", "POST", "/api/v1/labels", rng, strings_("__name__", "job", "instance", "route")},
		{"default series keys: job values", "GET", "/api/v1/label/job/values", rng, strings_("shop")},
		{"default series keys: instance values", "GET", "/api/v1/label/instance/values", rng, strings_("shop-1")},
		// a metric picked in the metrics browser / query builder
		{"labels of a metric", "GET", "/api/v1/labels", with(rng, "match[]", "gf_requests_total"), strings_("route", "job")},
		{"values with match", "GET", "/api/v1/label/route/values", with(rng, "match[]", `gf_requests_total{job="shop"}`), strings_("/cart")},
		{"series", "GET", "/api/v1/series", with(rng, "match[]", "gf_requests_total", "limit", "40000"), func(t *testing.T, data json.RawMessage) {
			var d []map[string]string
			require.NoError(t, json.Unmarshal(data, &d), "data is a list of label sets")
			require.Len(t, d, 1)
			assert.Equal(t, "/cart", d[0]["route"])
		}},
		// run query: range query, exemplars, recording rules
		{"query_range", "POST", "/api/v1/query_range", url.Values{
			"query": {`sum by (job) (rate(gf_requests_total[5m]))`}, "start": {sec(now.Add(-10 * time.Minute))}, "end": {sec(now)}, "step": {"60"},
		}, func(t *testing.T, data json.RawMessage) {
			var d struct {
				ResultType string `json:"resultType"`
				Result     []struct {
					Metric map[string]string `json:"metric"`
					Values [][]any           `json:"values"`
				} `json:"result"`
			}
			require.NoError(t, json.Unmarshal(data, &d))
			assert.Equal(t, "matrix", d.ResultType)
			require.Len(t, d.Result, 1)
			assert.Equal(t, map[string]string{"job": "shop"}, d.Result[0].Metric)
			require.NotEmpty(t, d.Result[0].Values)
			for _, p := range d.Result[0].Values {
				require.Len(t, p, 2)
				assert.IsType(t, float64(0), p[0], "timestamp in seconds")
				assert.IsType(t, "", p[1], "value as a string")
			}
		}},
		{"query_exemplars", "POST", "/api/v1/query_exemplars", url.Values{
			"query": {`sum by (job) (rate(gf_requests_total[5m]))`}, "start": {sec(now.Add(-10 * time.Minute))}, "end": {sec(now.Add(time.Minute))},
		}, func(t *testing.T, data json.RawMessage) {
			var d []struct {
				SeriesLabels map[string]string `json:"seriesLabels"`
				Exemplars    []struct {
					Labels    map[string]string `json:"labels"`
					Value     string            `json:"value"`
					Timestamp float64           `json:"timestamp"`
				} `json:"exemplars"`
			}
			require.NoError(t, json.Unmarshal(data, &d))
			require.Len(t, d, 1)
			assert.Equal(t, "gf_requests_total", d[0].SeriesLabels["__name__"])
			require.Len(t, d[0].Exemplars, 3)
			assert.Equal(t, "0102030405060708090a0b0c0d0e0f10", d[0].Exemplars[0].Labels["trace_id"])
			assert.Equal(t, "1", d[0].Exemplars[0].Value)
		}},
		{"rules", "GET", "/api/v1/rules", nil, func(t *testing.T, data json.RawMessage) {
			var d struct {
				Groups []struct {
					Name  string `json:"name"`
					File  string `json:"file"`
					Rules []struct {
						Name   string `json:"name"`
						Query  string `json:"query"`
						Type   string `json:"type"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			}
			require.NoError(t, json.Unmarshal(data, &d))
			require.Len(t, d.Groups, 1)
			require.Len(t, d.Groups[0].Rules, 2)
			assert.Equal(t, "recording", d.Groups[0].Rules[0].Type)
			assert.Equal(t, `sum by (job) (rate(gf_requests_total[5m]))`, d.Groups[0].Rules[0].Query)
			assert.Equal(t, "alerting", d.Groups[0].Rules[1].Type)
		}},
		{"alerts", "GET", "/api/v1/alerts", nil, func(t *testing.T, data json.RawMessage) {
			var d struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			}
			require.NoError(t, json.Unmarshal(data, &d))
			require.Len(t, d.Alerts, 1)
			assert.Equal(t, "GfDown", d.Alerts[0].Labels["alertname"])
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			u := "http://" + e.promAPI + c.path
			var req *http.Request
			var err error
			if c.method == "POST" {
				req, err = http.NewRequest(http.MethodPost, u, strings.NewReader(c.params.Encode()))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				if len(c.params) > 0 {
					u += "?" + c.params.Encode()
				}
				req, err = http.NewRequest(http.MethodGet, u, nil)
				require.NoError(t, err)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var env struct {
				Status string          `json:"status"`
				Data   json.RawMessage `json:"data"`
			}
			require.NoError(t, json.Unmarshal(body, &env))
			require.Equal(t, "success", env.Status, string(body))
			c.check(t, env.Data)
		})
	}
}
