package pushgatewayexporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter/internal/cumulative"
	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter/internal/metadata"
)

// request is what a fake Pushgateway saw.
type request struct {
	method, path, auth, contentType, orgID string
	families                               map[string]*dto.MetricFamily
}

type fakeGateway struct {
	mu     sync.Mutex
	status int
	reqs   []request
}

func (f *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, request{
		method: r.Method, path: r.URL.EscapedPath(), auth: r.Header.Get("Authorization"),
		contentType: r.Header.Get("Content-Type"), orgID: r.Header.Get("X-Scope-OrgID"), families: fams,
	})
	if f.status != 0 {
		http.Error(w, "refused by the fake", f.status)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (f *fakeGateway) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// syncConfig returns a config without queue and retry, so that
// ConsumeMetrics returns the push result.
func syncConfig(endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = endpoint
	cfg.Job = "batch"
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.Enabled = false
	return cfg
}

func startExporter(t *testing.T, cfg *Config) exporter.Metrics {
	t.Helper()
	require.NoError(t, cfg.Validate())
	exp, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp
}

var tBase = time.Now().Truncate(time.Second)

func tsAt(sec int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(tBase.Add(time.Duration(sec) * time.Second))
}

// counterMetrics returns one delta or cumulative monotonic sum.
func counterMetrics(resAttrs map[string]any, name string, delta bool, sec int, v int64, attrs map[string]any) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(resAttrs)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	if delta {
		s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	}
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(tsAt(0))
	dp.SetTimestamp(tsAt(sec))
	dp.SetIntValue(v)
	_ = dp.Attributes().FromRaw(attrs)
	return md
}

func TestPushPathMethodHeadersAndBody(t *testing.T) {
	fake := &fakeGateway{}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	cfg := syncConfig(srv.URL + "/")
	cfg.Method = "post"
	cfg.GroupingLabels = map[string]string{"env": "prod"}
	cfg.GroupingFromResource = []string{"service.instance.id"}
	cfg.BasicAuth = BasicAuthConfig{Username: "pusher", Password: "s3cret"}
	cfg.ClientConfig.Headers.Set("X-Scope-OrgID", "tenant-1")
	exp := startExporter(t, cfg)

	md := counterMetrics(map[string]any{"service.instance.id": "a/b"}, "jobs.done", true, 1, 5, map[string]any{"queue": "q1"})
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
	md = counterMetrics(map[string]any{"service.instance.id": "a/b"}, "jobs.done", true, 2, 7, map[string]any{"queue": "q1"})
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))

	reqs := fake.requests()
	require.Len(t, reqs, 2)
	r := reqs[1]
	assert.Equal(t, http.MethodPost, r.method)
	assert.Equal(t, "/metrics/job/batch/env/prod/service_instance_id@base64/YS9i", r.path)
	assert.Equal(t, "Basic cHVzaGVyOnMzY3JldA==", r.auth)
	assert.Equal(t, "tenant-1", r.orgID)
	assert.True(t, strings.HasPrefix(r.contentType, "text/plain; version=0.0.4"), r.contentType)
	fam := r.families["jobs_done_total"]
	require.NotNil(t, fam)
	assert.Equal(t, dto.MetricType_COUNTER, fam.GetType())
	require.Len(t, fam.Metric, 1)
	assert.InDelta(t, 12.0, fam.Metric[0].GetCounter().GetValue(), 0)
	assert.Equal(t, "queue", fam.Metric[0].Label[0].GetName())
}

func TestBearerToken(t *testing.T) {
	fake := &fakeGateway{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := syncConfig(srv.URL)
	cfg.BearerToken = "t0ken"
	exp := startExporter(t, cfg)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), counterMetrics(nil, "c", false, 1, 1, nil)))
	reqs := fake.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "Bearer t0ken", reqs[0].auth)
	assert.Equal(t, http.MethodPut, reqs[0].method)
	assert.Equal(t, "/metrics/job/batch", reqs[0].path)
}

func TestErrorsArePermanentOrRetryable(t *testing.T) {
	for _, tt := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusTooManyRequests, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			fake := &fakeGateway{status: tt.status}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			exp := startExporter(t, syncConfig(srv.URL))
			err := exp.ConsumeMetrics(context.Background(), counterMetrics(nil, "c", false, 1, 1, nil))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "refused by the fake")
			assert.Equal(t, tt.permanent, consumererror.IsPermanent(err), err)
		})
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	exp := startExporter(t, syncConfig(url))
	err := exp.ConsumeMetrics(context.Background(), counterMetrics(nil, "c", false, 1, 1, nil))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
}

func TestTimeoutBoundsAnAttempt(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := syncConfig(srv.URL)
	cfg.ClientConfig.Timeout = 100 * time.Millisecond
	exp := startExporter(t, cfg)
	start := time.Now()
	err := exp.ConsumeMetrics(context.Background(), counterMetrics(nil, "c", false, 1, 1, nil))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestGroupPath(t *testing.T) {
	for _, tt := range []struct {
		job    string
		labels []cumulative.Label
		want   string
	}{
		{"batch", nil, "/metrics/job/batch"},
		{"a/b", nil, "/metrics/job@base64/YS9i"},
		{"batch", []cumulative.Label{{Name: "instance", Value: ""}}, "/metrics/job/batch/instance@base64/="},
		{"batch", []cumulative.Label{{Name: "env", Value: "prod x"}, {Name: "zone", Value: "eu?1"}}, "/metrics/job/batch/env/prod%20x/zone/eu%3F1"},
	} {
		assert.Equal(t, tt.want, groupPath(tt.job, tt.labels))
	}
}

func TestPushBeforeStartFails(t *testing.T) {
	e := newExporter(syncConfig("http://127.0.0.1:1"), exportertest.NewNopSettings(metadata.Type))
	require.ErrorContains(t, e.pushMetrics(context.Background(), pmetric.NewMetrics()), "not started")
	require.NoError(t, e.shutdown(context.Background()))
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	assert.Equal(t, metadata.MetricsStability, f.MetricsStability())
}
