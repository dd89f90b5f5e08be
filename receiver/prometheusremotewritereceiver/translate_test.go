package prometheusremotewritereceiver

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
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
	require.Equal(t, 5, n)
	checkGolden(t, "v1.json", md)
}

func TestFromV2MatchesGolden(t *testing.T) {
	md, n, err := fromV2(v2Request())
	require.NoError(t, err)
	require.Equal(t, 3, n)
	checkGolden(t, "v2.json", md)
}

func TestStaleMarkerIsFlaggedNoRecordedValue(t *testing.T) {
	stale := math.Float64frombits(value.StaleNaN)
	md, n, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  lbls("__name__", "up", "job", "j"),
		Samples: []prompb.Sample{{Timestamp: 1000, Value: 1}, {Timestamp: 2000, Value: stale}, {Timestamp: 3000, Value: math.NaN()}},
	}}})
	require.NoError(t, err)
	require.Equal(t, 3, n)
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
		{"v1 native histogram", func() error {
			_, _, err := fromV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "lat"), Histograms: []prompb.Histogram{{Timestamp: 1}}}}})
			return err
		}, `series {__name__="lat"}: native histogram samples are not accepted`},
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
		{"v2 native histogram", func() error {
			_, _, err := fromV2(&writev2.Request{Symbols: []string{"", "__name__", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Histograms: []writev2.Histogram{{Timestamp: 1}}}}})
			return err
		}, "native histogram samples are not accepted"},
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
