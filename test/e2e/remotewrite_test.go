package e2e

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPrometheusRemoteWriteIsReadableAndStreamed: a remote write 1.0 push to
// the default config's prometheus_remote_write receiver is acknowledged with
// 204 once stored, read back with its job and instance labels through the
// Prometheus API and QueryMetrics, and streamed.
func TestPrometheusRemoteWriteIsReadableAndStreamed(t *testing.T) {
	e, c := startWithSink(t)
	stream := subscribe(t, c, "rw_*")
	now := time.Now().UnixMilli()
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{
			{Name: "__name__", Value: "rw_queue_depth"}, {Name: "instance", Value: "10.1.2.3:9100"},
			{Name: "job", Value: "node"}, {Name: "queue", Value: "q1"},
		},
		Samples: []prompb.Sample{{Timestamp: now - 1000, Value: 3}, {Timestamp: now, Value: 5}},
	}}}
	raw, err := req.Marshal()
	require.NoError(t, err)
	hreq, err := http.NewRequest(http.MethodPost, "http://"+e.remoteWrite+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hreq)
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", answer)

	assert.Equal(t, map[string]float64{"map[__name__:rw_queue_depth instance:10.1.2.3:9100 job:node queue:q1]": 5},
		promQuery(t, e.promAPI, `rw_queue_depth`))
	assert.Equal(t, 5.0, queryOne(t, c, `rw_queue_depth{job="node",instance="10.1.2.3:9100"}`))
	got := streamed(t, stream, "rw_queue_depth")
	assert.Contains(t, []float64{3, 5}, got["rw_queue_depth"].Value)
}
