package prometheusremotewritereceiver

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func lbls(kv ...string) []prompb.Label {
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// v1Request has a counter (with metadata), a gauge without metadata, a
// classic histogram bucket (metadata histogram), and a counter whose name
// the store would change.
func v1Request() *prompb.WriteRequest {
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  lbls("__name__", "http_requests_total", "job", "shop/api", "instance", "10.0.0.1:9090", "code", "200"),
				Samples: []prompb.Sample{{Timestamp: 1_700_000_000_123, Value: 1}, {Timestamp: 1_700_000_015_123, Value: 4}},
			},
			{
				Labels:  lbls("__name__", "temperature", "job", "sensors", "instance", "h2", "room", "", "site", "b"),
				Samples: []prompb.Sample{{Timestamp: 1_700_000_000_001, Value: 21.5}},
			},
			{
				Labels:  lbls("__name__", "rpc_latency_seconds_bucket", "job", "shop/api", "instance", "10.0.0.1:9090", "le", "0.5"),
				Samples: []prompb.Sample{{Timestamp: 1_700_000_000_123, Value: 7}},
			},
			{
				Labels:  lbls("__name__", "odd_counter", "job", "shop/api", "instance", "10.0.0.1:9090"),
				Samples: []prompb.Sample{{Timestamp: 1_700_000_000_123, Value: 2}},
			},
		},
		Metadata: []prompb.MetricMetadata{
			{MetricFamilyName: "http_requests_total", Type: prompb.MetricMetadata_COUNTER, Help: "Requests served."},
			{MetricFamilyName: "rpc_latency_seconds", Type: prompb.MetricMetadata_HISTOGRAM, Help: "RPC latency."},
			{MetricFamilyName: "odd_counter", Type: prompb.MetricMetadata_COUNTER},
		},
	}
}

// v2Request has the same counter with per-series metadata and a start
// timestamp, and a gauge.
func v2Request() *writev2.Request {
	syms := []string{"", "__name__", "http_requests_total", "job", "shop/api", "instance", "10.0.0.1:9090", "code", "200", "Requests served.", "queue_depth"}
	return &writev2.Request{
		Symbols: syms,
		Timeseries: []writev2.TimeSeries{
			{
				LabelsRefs: []uint32{1, 2, 3, 4, 5, 6, 7, 8},
				Samples:    []writev2.Sample{{Timestamp: 1_700_000_000_123, Value: 1, StartTimestamp: 1_699_999_000_000}, {Timestamp: 1_700_000_015_123, Value: 4, StartTimestamp: 1_699_999_000_000}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: 9},
			},
			{
				LabelsRefs: []uint32{1, 10, 3, 4, 5, 6},
				Samples:    []writev2.Sample{{Timestamp: 1_700_000_000_500, Value: 3}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
			},
		},
	}
}

func checkGolden(t *testing.T, name string, md pmetric.Metrics) {
	t.Helper()
	// JSON, not golden.WriteMetrics: that normalizes timestamps, and exact
	// timestamps are part of what is checked.
	path := filepath.Join("testdata", name)
	if *update {
		b, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
		require.NoError(t, err)
		var out bytes.Buffer
		require.NoError(t, json.Indent(&out, b, "", "  "))
		require.NoError(t, os.WriteFile(path, append(out.Bytes(), '\n'), 0o600))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(b)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(want, md,
		pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricsOrder()))
}

func TestFromV1MatchesGolden(t *testing.T) {
	md, n, err := fromV1(v1Request())
	require.NoError(t, err)
	require.Equal(t, counts{samples: 5}, n)
	checkGolden(t, "v1.json", md)
}

func TestFromV2MatchesGolden(t *testing.T) {
	md, n, err := fromV2(v2Request())
	require.NoError(t, err)
	require.Equal(t, counts{samples: 3}, n)
	checkGolden(t, "v2.json", md)
}

func TestStaleMarkerIsFlaggedNoRecordedValue(t *testing.T) {
	stale := math.Float64frombits(value.StaleNaN)
	md, n, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  lbls("__name__", "up", "job", "j"),
		Samples: []prompb.Sample{{Timestamp: 1000, Value: 1}, {Timestamp: 2000, Value: stale}, {Timestamp: 3000, Value: math.NaN()}},
	}}})
	require.NoError(t, err)
	require.Equal(t, counts{samples: 3}, n)
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	require.False(t, dps.At(0).Flags().NoRecordedValue())
	require.True(t, dps.At(1).Flags().NoRecordedValue())
	require.True(t, value.IsStaleNaN(dps.At(1).DoubleValue()))
	require.False(t, dps.At(2).Flags().NoRecordedValue(), "a plain NaN is a value, not a stale marker")
	require.True(t, math.IsNaN(dps.At(2).DoubleValue()))
}

func TestConversionRefusals(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"v1 no name", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("job", "j"), Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}}}})
			return err
		}, "label __name__ is missing"},
		{"v1 duplicate label", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "a", "x", "1", "x", "2"), Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}}}})
			return err
		}, `label "x" appears more than once`},
		{"v1 float native histogram", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "lat"), Histograms: []prompb.Histogram{{Timestamp: 1, Count: &prompb.Histogram_CountFloat{CountFloat: 1}}}}}})
			return err
		}, `series {__name__="lat"}: float native histograms are not accepted`},
		{"v1 custom buckets", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "lat"), Histograms: []prompb.Histogram{{Timestamp: 1, Schema: -53, CustomValues: []float64{1}}}}}})
			return err
		}, "custom buckets (schema -53)"},
		{"v1 gauge histogram", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "lat"), Histograms: []prompb.Histogram{{Timestamp: 1, ResetHint: prompb.Histogram_GAUGE}}}}})
			return err
		}, "gauge native histograms are not accepted"},
		{"v1 inconsistent histogram", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "lat"), Histograms: []prompb.Histogram{{Timestamp: 1, Count: &prompb.Histogram_CountInt{CountInt: 1}, PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 1}}, PositiveDeltas: []int64{5}}}}}})
			return err
		}, "invalid native histogram"},
		{"v1 negative timestamp", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "a"), Samples: []prompb.Sample{{Timestamp: -1, Value: 1}}}}})
			return err
		}, "before 1970-01-01"},
		{"v2 symbol out of range", func() error {
			_, _, err := fromV2(&writev2.Request{Symbols: []string{"", "__name__"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 7}}}})
			return err
		}, "timeseries[0]: labels_refs"},
		{"v2 help out of range", func() error {
			_, _, err := fromV2(&writev2.Request{Symbols: []string{"", "__name__", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Metadata: writev2.Metadata{HelpRef: 9}}}})
			return err
		}, "metadata: metadata help_ref 9"},
		{"v2 float native histogram", func() error {
			_, _, err := fromV2(&writev2.Request{Symbols: []string{"", "__name__", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Histograms: []writev2.Histogram{{Timestamp: 1, Count: &writev2.Histogram_CountFloat{CountFloat: 2}}}}}})
			return err
		}, "float native histograms are not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			var re *requestError
			require.ErrorAs(t, err, &re)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// nativeHistogram has positive buckets at indexes 1, 2 and 6 (a gap of
// three) and one negative bucket at index -1.
func nativeHistogram() *histogram.Histogram {
	return &histogram.Histogram{
		Schema:          0,
		ZeroThreshold:   1e-128,
		ZeroCount:       1,
		Count:           12,
		Sum:             42.5,
		PositiveSpans:   []histogram.Span{{Offset: 1, Length: 2}, {Offset: 3, Length: 1}},
		PositiveBuckets: []int64{2, 1, -1}, // 2, 3, 2
		NegativeSpans:   []histogram.Span{{Offset: -1, Length: 1}},
		NegativeBuckets: []int64{4},
	}
}

func TestNativeHistogramIsExponentialHistogram(t *testing.T) {
	for _, tt := range []struct {
		name string
		conv func() (pmetric.Metrics, counts, error)
	}{
		{"v1", func() (pmetric.Metrics, counts, error) {
			return fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels:     lbls("__name__", "rpc_duration_seconds", "job", "api"),
				Histograms: []prompb.Histogram{prompb.FromIntHistogram(1_700_000_000_123, nativeHistogram())},
			}}})
		}},
		{"v2", func() (pmetric.Metrics, counts, error) {
			return fromV2(&writev2.Request{Symbols: []string{"", "__name__", "rpc_duration_seconds", "job", "api"}, Timeseries: []writev2.TimeSeries{{
				LabelsRefs: []uint32{1, 2, 3, 4},
				Histograms: []writev2.Histogram{writev2.FromIntHistogram(0, 1_700_000_000_123, nativeHistogram())},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM},
			}}})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			md, n, err := tt.conv()
			require.NoError(t, err)
			require.Equal(t, counts{histograms: 1}, n)
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
			require.Equal(t, "rpc_duration_seconds", m.Name())
			require.Equal(t, pmetric.AggregationTemporalityCumulative, m.ExponentialHistogram().AggregationTemporality())
			dp := m.ExponentialHistogram().DataPoints().At(0)
			require.Equal(t, int64(1_700_000_000_123_000_000), int64(dp.Timestamp()))
			require.Equal(t, int32(0), dp.Scale())
			require.Equal(t, uint64(12), dp.Count())
			require.Equal(t, 42.5, dp.Sum())
			require.Equal(t, uint64(1), dp.ZeroCount())
			require.Equal(t, 1e-128, dp.ZeroThreshold())
			require.Equal(t, int32(0), dp.Positive().Offset())
			require.Equal(t, []uint64{2, 3, 0, 0, 0, 2}, dp.Positive().BucketCounts().AsRaw())
			require.Equal(t, int32(-2), dp.Negative().Offset())
			require.Equal(t, []uint64{4}, dp.Negative().BucketCounts().AsRaw())
		})
	}
}

// TestNativeHistogramBucketsFarApartAreKeptAtALowerScale: sparse buckets
// far apart would take that many zero buckets in OTel's dense form; the
// histogram is kept at the highest scale whose buckets fit, every
// observation counted.
func TestNativeHistogramBucketsFarApartAreKeptAtALowerScale(t *testing.T) {
	h := &histogram.Histogram{
		Schema: 8, Count: 3, Sum: 1e30,
		// OTel indexes 0 and 25,000 (about 2^97.7) at scale 8
		PositiveSpans:   []histogram.Span{{Offset: 1, Length: 1}, {Offset: 24_999, Length: 1}},
		PositiveBuckets: []int64{1, 0}, // deltas: 1 and 1
		ZeroCount:       1, ZeroThreshold: 1e-128,
	}
	md, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:     lbls("__name__", "wide_seconds", "job", "api"),
		Histograms: []prompb.Histogram{prompb.FromIntHistogram(1_700_000_000_123, h)},
	}}})
	require.NoError(t, err)
	dp := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).ExponentialHistogram().DataPoints().At(0)
	// 25,000 >> 3 = 3125: 3,126 buckets at scale 5
	require.Equal(t, int32(5), dp.Scale())
	require.Equal(t, int32(0), dp.Positive().Offset())
	got := dp.Positive().BucketCounts().AsRaw()
	require.Len(t, got, 3126)
	require.Equal(t, uint64(1), got[0])
	require.Equal(t, uint64(1), got[3125])
	require.Equal(t, uint64(3), dp.Count())
}
