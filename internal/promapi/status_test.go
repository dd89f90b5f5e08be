package promapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/store"
)

// newStoreServer serves the API over a real store holding two series of
// the gauge "room_temp".
func newStoreServer(t *testing.T) *httptest.Server {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.Path = t.TempDir()
	st, err := store.Open(cfg, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })

	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("room_temp")
	g := m.SetEmptyGauge()
	for _, room := range []string{"a", "b"} {
		dp := g.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("room", room)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		dp.SetDoubleValue(21)
	}
	// a counter with an exemplar (Prometheus' translator keeps exemplars
	// of sums and histograms, not of gauges)
	c := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	c.SetName("room_heatings")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, room := range []string{"a", "b"} {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("room", room)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		dp.SetDoubleValue(3)
		if room == "a" {
			ex := dp.Exemplars().AppendEmpty()
			ex.SetTimestamp(dp.Timestamp())
			ex.SetDoubleValue(1.5)
			ex.FilteredAttributes().PutStr("sensor", "s1")
		}
	}
	// a gauge with a unit and a description: metadata carries both
	sz := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	sz.SetName("room_size")
	sz.SetUnit("m")
	sz.SetDescription("Floor length of the room.")
	szp := sz.SetEmptyGauge().DataPoints().AppendEmpty()
	szp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	szp.SetDoubleValue(4)
	txn, err := st.Stage(context.Background(), md)
	require.NoError(t, err)
	require.NoError(t, txn.Commit())

	qcfg := query.DefaultConfig()
	eng, err := query.New(qcfg, st.Queryable(), zap.NewNop())
	require.NoError(t, err)
	h, err := Handler(eng, st, "", nil, WithStatus(StatusInfo{Version: "1.2.3-test", Query: qcfg}))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, srv *httptest.Server) v1.API {
	t.Helper()
	c, err := promclient.NewClient(promclient.Config{Address: srv.URL})
	require.NoError(t, err)
	return v1.NewAPI(c)
}

func TestStatusEndpointsAnswerThePrometheusClient(t *testing.T) {
	srv := newStoreServer(t)
	c := newClient(t, srv)
	ctx := context.Background()

	bi, err := c.Buildinfo(ctx)
	require.NoError(t, err)
	assert.Equal(t, "metricsmodule 1.2.3-test", bi.Revision)
	assert.Regexp(t, `^3\.\d+\.\d+$`, bi.Version, "semver of the embedded engine, for Grafana")
	assert.Equal(t, runtime.Version(), bi.GoVersion)

	cfg, err := c.Config(ctx)
	require.NoError(t, err)
	assert.Contains(t, cfg.YAML, "global: {}")

	flags, err := c.Flags(ctx)
	require.NoError(t, err)
	assert.Equal(t, query.DefaultConfig().Timeout.String(), flags["query.timeout"])
	assert.NotEmpty(t, flags["query.max_samples"])

	ri, err := c.Runtimeinfo(ctx)
	require.NoError(t, err)
	assert.False(t, ri.StartTime.IsZero())
	assert.Positive(t, ri.GoroutineCount)
	assert.Equal(t, runtime.GOMAXPROCS(0), ri.GOMAXPROCS)
	assert.NotEmpty(t, ri.CWD)

	ts, err := c.TSDB(ctx, v1.WithLimit(5))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ts.HeadStats.NumSeries, 2)
	assert.Contains(t, ts.SeriesCountByMetricName, v1.Stat{Name: "room_temp", Value: 2})
	assert.Contains(t, ts.LabelValueCountByLabelName, v1.Stat{Name: "room", Value: 2})
	assert.LessOrEqual(t, ts.HeadStats.MinTime, ts.HeadStats.MaxTime)
	assert.NotNil(t, ts.MemoryInBytesByLabelName)

	wr, err := c.WalReplay(ctx)
	require.NoError(t, err)
	assert.Equal(t, v1.WalReplayStatus{}, wr)

	rules, err := c.Rules(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, rules.Groups)

	alerts, err := c.Alerts(ctx)
	require.NoError(t, err)
	assert.Empty(t, alerts.Alerts)

	ex, err := c.QueryExemplars(ctx, `rate(room_heatings_total{room="a"}[5m])`, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, ex, 1, "the exemplar recorded with the point")
	assert.Equal(t, model.LabelSet{"__name__": "room_heatings_total", "room": "a"}, ex[0].SeriesLabels)
	require.Len(t, ex[0].Exemplars, 1)
	assert.Equal(t, model.LabelSet{"sensor": "s1"}, ex[0].Exemplars[0].Labels)
	assert.InDelta(t, 1.5, float64(ex[0].Exemplars[0].Value), 0)

	none, err := c.QueryExemplars(ctx, `room_heatings_total{room="b"}`, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.Empty(t, none)

	// promtool query instant uses the same client
	v, _, _, err := c.Query(ctx, `count(room_temp)`, time.Now())
	require.NoError(t, err)
	vec, isVec := v.(model.Vector)
	require.True(t, isVec, "%T", v)
	require.Len(t, vec, 1)
	assert.InDelta(t, 2, float64(vec[0].Value), 0)
}

// rawBody is a JSON answer decoded loosely.
type rawBody struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func TestStatusEndpointsShapeAndRefusals(t *testing.T) {
	srv := newStoreServer(t)
	tests := []struct {
		name, method, path string
		code               int
		errorType          string
		data               string // substring of data, when set
	}{
		{"buildinfo", "GET", "/api/v1/status/buildinfo", 200, "", `"revision":"metricsmodule 1.2.3-test"`},
		{"config", "GET", "/api/v1/status/config", 200, "", `"yaml":`},
		{"flags", "GET", "/api/v1/status/flags", 200, "", `"query.lookback_delta":`},
		{"runtimeinfo", "GET", "/api/v1/status/runtimeinfo", 200, "", `"GOMAXPROCS":`},
		{"tsdb", "GET", "/api/v1/status/tsdb", 200, "", `"seriesCountByLabelValuePair":[]`},
		{"tsdb limit 1", "GET", "/api/v1/status/tsdb?limit=1", 200, "", `"headStats":`},
		{"tsdb limit 0", "GET", "/api/v1/status/tsdb?limit=0", 400, "bad_data", ""},
		{"tsdb limit x", "GET", "/api/v1/status/tsdb?limit=x", 400, "bad_data", ""},
		{"tsdb limit too big", "GET", "/api/v1/status/tsdb?limit=10001", 400, "bad_data", ""},
		{"walreplay", "GET", "/api/v1/status/walreplay", 200, "", `{"min":0,"max":0,"current":0}`},
		{"rules", "GET", "/api/v1/rules", 200, "", `{"groups":[]}`},
		{"alerts", "GET", "/api/v1/alerts", 200, "", `{"alerts":[]}`},
		{"exemplars", "GET", "/api/v1/query_exemplars?query=up", 200, "", `[]`},
		{"exemplars post", "POST", "/api/v1/query_exemplars?query=up", 200, "", `[]`},
		{"exemplars bad query", "GET", "/api/v1/query_exemplars?query=up{", 400, "bad_data", ""},
		{"exemplars no query", "GET", "/api/v1/query_exemplars", 400, "bad_data", ""},
		{"exemplars bad start", "GET", "/api/v1/query_exemplars?query=up&start=x", 400, "bad_data", ""},
		{"exemplars bad end", "GET", "/api/v1/query_exemplars?query=up&end=x", 400, "bad_data", ""},
		{"exemplars end before start", "GET", "/api/v1/query_exemplars?query=up&start=100&end=50", 400, "bad_data", ""},
		{"format_query", "GET", "/api/v1/format_query?query=sum(rate(x[5m]))by(job)", 200, "", `"sum by (job) (rate(x[5m]))"`},
		{"format_query post", "POST", "/api/v1/format_query?query=foo%7Bbar%3D%22baz%22%7D", 200, "", `"foo{bar=\"baz\"}"`},
		{"format_query bad", "GET", "/api/v1/format_query?query=sum(", 400, "bad_data", ""},
		{"rules bad type", "GET", "/api/v1/rules?type=both", 400, "bad_data", ""},
		{"rules bad group_limit", "GET", "/api/v1/rules?group_limit=0", 400, "bad_data", ""},
		{"rules token without limit", "GET", "/api/v1/rules?group_next_token=x", 400, "bad_data", ""},
		{"rules bad match", "GET", "/api/v1/rules?match[]=up{", 400, "bad_data", ""},
		{"rules type record", "GET", "/api/v1/rules?type=record", 200, "", `{"groups":[]}`},
		{"alertmanagers", "GET", "/api/v1/alertmanagers", 200, "", `{"activeAlertmanagers":[],"droppedAlertmanagers":[]}`},
		{"exemplars no selector", "GET", "/api/v1/query_exemplars?query=1%2B1", 200, "", `[]`},
		{"metadata with help and unit", "GET", "/api/v1/metadata?metric=room_size_meters", 200, "", `{"room_size_meters":[{"type":"gauge","help":"Floor length of the room.","unit":"meters"}]}`},
		{"unknown path", "GET", "/api/v1/nope", 404, "not_found", ""},
		{"unknown status path", "GET", "/api/v1/status/nope", 404, "not_found", ""},
		{"wrong method", "DELETE", "/api/v1/status/buildinfo", 405, "bad_data", ""},
		{"wrong method rules", "POST", "/api/v1/rules", 405, "bad_data", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.code, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body rawBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			if tt.errorType != "" {
				assert.Equal(t, "error", body.Status)
				assert.Equal(t, tt.errorType, body.ErrorType)
				assert.NotEmpty(t, body.Error)
				return
			}
			assert.Equal(t, "success", body.Status)
			assert.Contains(t, string(body.Data), tt.data)
		})
	}
}

func TestHealthAndReady(t *testing.T) {
	srv := newStoreServer(t)
	for _, path := range []string{"/-/healthy", "/-/ready"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, string(b), "metricsmodule Prometheus API is", path)
	}
}

func TestReadyIsRefusedWithoutAStore(t *testing.T) {
	srv, _, _ := newServer(t, nil)
	resp, err := http.Get(srv.URL + "/-/ready")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, err = http.Get(srv.URL + "/-/healthy")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestTSDBStatusWithoutAStoreIsUnavailable(t *testing.T) {
	srv, _, _ := newServer(t, nil)
	code, body := get(t, srv.URL+"/api/v1/status/tsdb")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "unavailable", body.ErrorType)
}

func TestPromRelease(t *testing.T) {
	for mod, want := range map[string]string{
		"v0.316.0":          "3.16.0",
		"v0.300.1":          "3.0.1",
		"v0.55.1":           "x",
		"v1.2.3":            "x",
		"v0.316.0-rc.0":     "3.16.0",
		"garbage":           "x",
		"v0.316.0+incompat": "3.16.0",
	} {
		assert.Equal(t, want, promRelease(mod, "x"), mod)
	}
}

func TestHealthWithARemoteBackend(t *testing.T) {
	h, err := Handler(nil, nil, "http://127.0.0.1:1", nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, path := range []string{"/-/healthy", "/-/ready"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}
