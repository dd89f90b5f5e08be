package parity

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// expected holds the samples a Prometheus-compatible store must hold after
// the records, computed here from the records alone: counters as running
// totals, histograms as cumulative bucket counts, gauges as recorded.
type expected map[string]*prompb.TimeSeries

func (e expected) add(name string, labels map[string]string, t time.Time, v float64) {
	ls := map[string]string{"__name__": name}
	for k, v := range labels {
		ls[k] = v
	}
	key := metricKey(ls)
	ts := e[key]
	if ts == nil {
		ts = &prompb.TimeSeries{}
		for k, v := range ls {
			ts.Labels = append(ts.Labels, prompb.Label{Name: k, Value: v})
		}
		sort.Slice(ts.Labels, func(i, j int) bool { return ts.Labels[i].Name < ts.Labels[j].Name })
		e[key] = ts
	}
	ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: v})
}

// remoteWrite sends e to Prometheus, each series' samples in time order.
func (e expected) remoteWrite(t *testing.T, promURL string) {
	t.Helper()
	req := &prompb.WriteRequest{}
	for _, ts := range e {
		sort.Slice(ts.Samples, func(i, j int) bool { return ts.Samples[i].Timestamp < ts.Samples[j].Timestamp })
		req.Timeseries = append(req.Timeseries, *ts)
	}
	raw, err := req.Marshal()
	require.NoError(t, err)
	hreq, err := http.NewRequest(http.MethodPost, promURL+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hreq)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 2, resp.StatusCode/100, "remote write: %s: %s", resp.Status, body)
}

// TestManyPointsPerSeriesPerRequestMatchPrometheus records counters (as
// increments), gauges and histograms with several points per series in every
// request, each at its own timestamp and out of order within the request; it
// remote-writes the samples those records mean to a real Prometheus, and
// compares the raw samples of both stores.
func TestManyPointsPerSeriesPerRequestMatchPrometheus(t *testing.T) {
	prom := startPrometheus(t)
	client, ours := startReceiver(t, consumertest.NewNop(), "")
	rng := rand.New(rand.NewPCG(7, 11))
	// timestamps off the query grid: ms offsets
	base := time.Now().Add(-40 * time.Minute).Truncate(time.Second).Add(123 * time.Millisecond)
	job := map[string]string{"job": "parity-ts"}
	want := expected{}
	totals := map[string]float64{}
	type histState struct {
		counts []float64 // cumulative per bound, then +Inf
		sum    float64
		n      float64
	}
	hists := map[string]*histState{}
	bounds := convert.DefaultBuckets
	const batches, perBatch = 30, 6
	for b := range batches {
		var ms []*pb.MetricData
		for k := range perBatch {
			at := base.Add(time.Duration(b)*time.Minute + time.Duration(k)*7*time.Second + time.Duration(k)*time.Millisecond)
			tsp := timestamppb.New(at)
			for _, path := range []string{"/a", "/b"} {
				inc := float64(rng.IntN(20))
				totals[path] += inc
				ms = append(ms, &pb.MetricData{Name: "ts_requests", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: inc, Timestamp: tsp,
					Labels: map[string]string{"path": path}})
				want.add("ts_requests_total", map[string]string{"job": "parity-ts", "path": path}, at, totals[path])
			}
			for _, room := range []string{"kitchen", "hall"} {
				v := float64(rng.IntN(400)) / 10
				ms = append(ms, &pb.MetricData{Name: "ts_temperature", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: v, Timestamp: tsp,
					Labels: map[string]string{"room": room}})
				want.add("ts_temperature", map[string]string{"job": "parity-ts", "room": room}, at, v)
			}
			obs := []float64{rng.Float64() * 2, rng.Float64() * 0.1, rng.Float64() * 20}
			ms = append(ms, &pb.MetricData{Name: "ts_latency", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: obs, Timestamp: tsp})
			h := hists["ts_latency"]
			if h == nil {
				h = &histState{counts: make([]float64, len(bounds)+1)}
				hists["ts_latency"] = h
			}
			for _, o := range obs {
				h.sum += o
				h.n++
				for i, ub := range bounds {
					if o <= ub {
						h.counts[i]++
					}
				}
				h.counts[len(bounds)]++
			}
			for i, ub := range bounds {
				want.add("ts_latency_bucket", map[string]string{"job": "parity-ts", "le": strconv.FormatFloat(ub, 'f', -1, 64)}, at, h.counts[i])
			}
			want.add("ts_latency_bucket", map[string]string{"job": "parity-ts", "le": "+Inf"}, at, h.counts[len(bounds)])
			want.add("ts_latency_sum", job, at, h.sum)
			want.add("ts_latency_count", job, at, h.n)
		}
		// out of order within the request
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		resp, err := client.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
			Resource: &pb.Resource{Attributes: map[string]string{"service.name": "parity-ts"}},
			Metrics:  ms,
		})
		require.NoError(t, err)
		require.EqualValues(t, len(ms), resp.AcceptedCount)
		require.EqualValues(t, perBatch*(2+2+1), resp.GetStats().GetDatapointsAccepted(), "one point per series per timestamp")
	}
	want.remoteWrite(t, prom.URL())

	q := `{__name__=~"ts_.*"}[45m]`
	params := url.Values{"query": {q}, "time": {strconv.FormatInt(time.Now().Unix(), 10)}}
	theirs, err := queryAPI(t, prom.URL(), "/api/v1/query", params)
	require.NoError(t, err)
	mine, err := queryAPI(t, ours, "/api/v1/query", params)
	require.NoError(t, err)
	tn, on := normalize(t, theirs), normalize(t, mine)
	require.Len(t, tn, len(want), "prometheus holds every expected series")
	compare(t, q, on, tn)
	samples := 0
	for _, s := range tn {
		samples += len(s)
	}
	t.Logf("%d series, %d raw samples equal in both stores", len(tn), samples)
}
