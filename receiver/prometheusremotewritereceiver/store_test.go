package prometheusremotewritereceiver

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

// rawSample is a stored sample with the value's bits, so that stale markers
// compare exactly.
type rawSample struct {
	T    int64
	Bits uint64
}

// startStore starts the metrics_store extension and processor and a
// receiver in front of them; it returns the write URL and the pipeline.
func startStore(t *testing.T) (string, *storepipeline.Pipeline) {
	t.Helper()
	p, err := storepipeline.Start(context.Background(), t.TempDir(), nil, consumertest.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop(context.Background())) })
	return startReceiver(t, p.Next), p
}

// storedSamples returns every stored series (but target_info) with its raw
// samples in [mint, maxt].
func storedSamples(t *testing.T, q storage.Queryable, mint, maxt int64) map[string][]rawSample {
	t.Helper()
	qr, err := q.Querier(mint, maxt)
	require.NoError(t, err)
	defer qr.Close()
	ss := qr.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	out := map[string][]rawSample{}
	for ss.Next() {
		s := ss.At()
		if s.Labels().Get("__name__") == "target_info" {
			continue
		}
		it := s.Iterator(nil)
		var got []rawSample
		for it.Next() != 0 {
			ts, v := it.At()
			got = append(got, rawSample{T: ts, Bits: math.Float64bits(v)})
		}
		require.NoError(t, it.Err())
		out[s.Labels().String()] = got
	}
	require.NoError(t, ss.Err())
	return out
}

func TestRemoteWriteRoundTripsThroughTheStore(t *testing.T) {
	url, p := startStore(t)
	now := time.Now().UnixMilli()
	stale := math.Float64frombits(value.StaleNaN)
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  lbls("__name__", "http_requests_total", "job", "shop/api", "instance", "10.0.0.1:9090", "code", "200"),
				Samples: []prompb.Sample{{Timestamp: now - 30_001, Value: 1}, {Timestamp: now - 15_001, Value: 4.25}},
			},
			{
				Labels:  lbls("__name__", "temperature", "job", "sensors", "instance", "h2", "site", "b"),
				Samples: []prompb.Sample{{Timestamp: now - 20_007, Value: -21.5}, {Timestamp: now - 10_007, Value: stale}},
			},
			{
				Labels:  lbls("__name__", "up", "job", "solo"),
				Samples: []prompb.Sample{{Timestamp: now - 1, Value: 1}},
			},
			{
				Labels:  lbls("__name__", "rpc_latency_seconds_bucket", "job", "shop/api", "instance", "10.0.0.1:9090", "le", "+Inf"),
				Samples: []prompb.Sample{{Timestamp: now - 30_001, Value: 12}},
			},
		},
		Metadata: []prompb.MetricMetadata{
			{MetricFamilyName: "http_requests_total", Type: prompb.MetricMetadata_COUNTER},
			{MetricFamilyName: "rpc_latency_seconds", Type: prompb.MetricMetadata_HISTOGRAM},
		},
	}
	resp, msg := post(t, url, ctV1, "snappy", marshalV1(t, req))
	require.Equal(t, http.StatusNoContent, resp.StatusCode, msg)

	want := map[string][]rawSample{}
	for _, ts := range req.Timeseries {
		var b labels.ScratchBuilder
		for _, l := range ts.Labels {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		for _, s := range ts.Samples {
			want[b.Labels().String()] = append(want[b.Labels().String()], rawSample{T: s.Timestamp, Bits: math.Float64bits(s.Value)})
		}
	}
	require.Equal(t, want, storedSamples(t, p.Sink.Store().Queryable(), now-time.Hour.Milliseconds(), now+1))
}

func TestRemoteWrite2RoundTripsThroughTheStore(t *testing.T) {
	url, p := startStore(t)
	now := time.Now().UnixMilli()
	syms := []string{"", "__name__", "jobs_done_total", "job", "worker", "instance", "w1", "queue", "q1"}
	req := &writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{
		LabelsRefs: []uint32{1, 2, 3, 4, 5, 6, 7, 8},
		Samples:    []writev2.Sample{{Timestamp: now - 2000, Value: 10, StartTimestamp: now - 60_000}, {Timestamp: now - 1000, Value: 11, StartTimestamp: now - 60_000}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
	}}}
	resp, msg := post(t, url, ctV2, "snappy", marshalV2(t, req))
	require.Equal(t, http.StatusNoContent, resp.StatusCode, msg)
	require.Equal(t, "2", resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, map[string][]rawSample{
		`{__name__="jobs_done_total", instance="w1", job="worker", queue="q1"}`: {
			{T: now - 2000, Bits: math.Float64bits(10)}, {T: now - 1000, Bits: math.Float64bits(11)},
		},
	}, storedSamples(t, p.Sink.Store().Queryable(), now-time.Hour.Milliseconds(), now+1))
}

func TestStoreRefusalIsABadRequestAndKeepsNothing(t *testing.T) {
	url, p := startStore(t)
	now := time.Now().UnixMilli()
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "fresh", "job", "j"), Samples: []prompb.Sample{{Timestamp: now, Value: 1}}},
		{Labels: lbls("__name__", "ancient", "job", "j"), Samples: []prompb.Sample{{Timestamp: now - 48*time.Hour.Milliseconds(), Value: 1}}},
	}}
	resp, msg := post(t, url, ctV1, "snappy", marshalV1(t, req))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, msg)
	require.Contains(t, msg, "too_old")
	require.Contains(t, msg, `"ancient"`)
	require.Empty(t, storedSamples(t, p.Sink.Store().Queryable(), now-72*time.Hour.Milliseconds(), now+1))
}

// bucketsOf lists (index, count) of a histogram's non-empty buckets.
func bucketsOf(it histogram.BucketIterator[uint64]) [][2]int64 {
	var out [][2]int64
	for it.Next() {
		if b := it.At(); b.Count > 0 {
			out = append(out, [2]int64{int64(b.Index), int64(b.Count)})
		}
	}
	return out
}

func TestNativeHistogramRoundTripsThroughTheStore(t *testing.T) {
	url, p := startStore(t)
	now := time.Now().UnixMilli()
	want := nativeHistogram()
	req := &writev2.Request{Symbols: []string{"", "__name__", "rpc_duration_seconds", "job", "api", "instance", "i1"}, Timeseries: []writev2.TimeSeries{{
		LabelsRefs: []uint32{1, 2, 3, 4, 5, 6},
		Histograms: []writev2.Histogram{
			writev2.FromIntHistogram(now-60_000, now-2000, want),
			{Timestamp: now - 1000, Sum: math.Float64frombits(value.StaleNaN), Count: &writev2.Histogram_CountInt{CountInt: value.StaleNaN}},
		},
		Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM},
	}}}
	resp, msg := post(t, url, ctV2, "snappy", marshalV2(t, req))
	require.Equal(t, http.StatusNoContent, resp.StatusCode, msg)
	require.Equal(t, "0", resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, "2", resp.Header.Get("X-Prometheus-Remote-Write-Histograms-Written"))

	qr, err := p.Sink.Store().Queryable().Querier(now-time.Hour.Milliseconds(), now+1)
	require.NoError(t, err)
	defer qr.Close()
	ss := qr.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "rpc_duration_seconds"))
	require.True(t, ss.Next(), "no series stored")
	require.Equal(t, `{__name__="rpc_duration_seconds", instance="i1", job="api"}`, ss.At().Labels().String())
	it := ss.At().Iterator(nil)
	require.Equal(t, chunkenc.ValHistogram, it.Next())
	ts, got := it.AtHistogram(nil)
	require.Equal(t, now-2000, ts)
	require.Equal(t, want.Count, got.Count)
	require.Equal(t, want.Sum, got.Sum)
	require.Equal(t, want.ZeroCount, got.ZeroCount)
	require.Equal(t, want.Schema, got.Schema)
	require.Equal(t, bucketsOf(want.PositiveBucketIterator()), bucketsOf(got.PositiveBucketIterator()))
	require.Equal(t, bucketsOf(want.NegativeBucketIterator()), bucketsOf(got.NegativeBucketIterator()))
	require.Equal(t, chunkenc.ValHistogram, it.Next())
	ts, got = it.AtHistogram(nil)
	require.Equal(t, now-1000, ts)
	require.True(t, value.IsStaleNaN(got.Sum), "the stale marker is stored")
	require.Equal(t, chunkenc.ValNone, it.Next())
	require.False(t, ss.Next())
}
