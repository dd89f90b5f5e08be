package metricsservicereceiver

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

func TestPrometheusAPIStatusReportsTheCollector(t *testing.T) {
	c, base := startWithStore(t, t.TempDir())
	recordSome(t, c)

	code, body := getJSON(t, base+"/api/v1/status/buildinfo")
	require.Equal(t, http.StatusOK, code)
	data := body["data"].(map[string]any)
	want := receivertest.NewNopSettings(metadata.Type).BuildInfo.Version
	assert.Equal(t, "metricsmodule "+want, data["revision"], "the collector's own version")
	assert.Regexp(t, `^3\.\d+\.\d+$`, data["version"])

	code, body = getJSON(t, base+"/api/v1/status/tsdb")
	require.Equal(t, http.StatusOK, code)
	data = body["data"].(map[string]any)
	assert.Contains(t, data["seriesCountByMetricName"], map[string]any{"name": "http_requests_total", "value": float64(5)})

	code, body = getJSON(t, base+"/api/v1/status/flags")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, createDefaultConfig().(*Config).Query.Timeout.String(), body["data"].(map[string]any)["query.timeout"])

	code, body = getJSON(t, base+"/api/v1/no_such_endpoint")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "not_found", body["errorType"])

	resp, err := http.Get(base + "/-/ready")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
