package prometheusremotewritereceiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/metricsmodule/metricsmodule/receiver/prometheusremotewritereceiver/internal/metadata"
)

const (
	ctV1 = "application/x-protobuf;proto=prometheus.WriteRequest"
	ctV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

// startReceiver starts a receiver on 127.0.0.1:0 in front of next and
// returns its write URL.
func startReceiver(t *testing.T, next consumer.Metrics) string {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	require.NoError(t, cfg.Validate())
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	rr := r.(*rwReceiver)
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return "http://" + rr.addr + cfg.Path
}

func marshalV1(t *testing.T, req *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

func marshalV2(t *testing.T, req *writev2.Request) []byte {
	t.Helper()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

func post(t *testing.T, url, contentType, encoding string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	msg, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(msg)
}

func TestHTTPStatusSemantics(t *testing.T) {
	v1 := marshalV1(t, v1Request())
	v2 := marshalV2(t, v2Request())
	native := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "lat"), Histograms: []prompb.Histogram{{Timestamp: 1, Count: &prompb.Histogram_CountFloat{CountFloat: 1}}}}}})
	permanent := consumertest.NewErr(consumererror.NewPermanent(errors.New("store refused 1 sample (too_old)")))
	retryable := consumertest.NewErr(errors.New("memory limiter: data refused"))
	tests := []struct {
		name        string
		next        consumer.Metrics
		ct, enc     string
		body        []byte
		wantStatus  int
		wantPoints  int    // points the sink got
		wantBody    string // part of the answer
		wantWritten string // X-Prometheus-Remote-Write-Samples-Written ("" = absent)
	}{
		{name: "v1 accepted", ct: ctV1, enc: "snappy", body: v1, wantStatus: 204, wantPoints: 5},
		{name: "v1 plain application/x-protobuf", ct: "application/x-protobuf", enc: "snappy", body: v1, wantStatus: 204, wantPoints: 5},
		{name: "v1 without Content-Encoding", ct: ctV1, body: v1, wantStatus: 204, wantPoints: 5},
		{name: "v1 without Content-Type", enc: "snappy", body: v1, wantStatus: 204, wantPoints: 5},
		{name: "v2 accepted with written headers", ct: ctV2, enc: "snappy", body: v2, wantStatus: 204, wantPoints: 3, wantWritten: "3"},
		{name: "v1 metadata only", ct: ctV1, enc: "snappy", body: marshalV1(t, &prompb.WriteRequest{Metadata: v1Request().Metadata}), wantStatus: 204},
		{name: "unsupported proto", ct: "application/x-protobuf;proto=foo.Bar", enc: "snappy", body: v1, wantStatus: 415, wantBody: "foo.Bar"},
		{name: "unsupported media type", ct: "application/json", enc: "snappy", body: v1, wantStatus: 415, wantBody: "application/x-protobuf"},
		{name: "unsupported content encoding", ct: ctV1, enc: "br", body: v1, wantStatus: 415, wantBody: "unsupported Content-Encoding: br"},
		{name: "gzip content encoding", ct: ctV1, enc: "gzip", body: v1, wantStatus: 415, wantBody: "Content-Encoding: snappy"},
		{name: "not snappy", ct: ctV1, enc: "snappy", body: []byte("not snappy at all"), wantStatus: 400},
		{name: "not protobuf", ct: ctV1, enc: "snappy", body: snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), wantStatus: 400, wantBody: "decode prometheus.WriteRequest"},
		{name: "float native histogram", ct: ctV1, enc: "snappy", body: native, wantStatus: 400, wantBody: `series {__name__="lat"}: float native histograms`},
		{name: "v2 bad symbols", ct: ctV2, enc: "snappy", body: marshalV2(t, &writev2.Request{Symbols: []string{""}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}}}}), wantStatus: 400, wantBody: "labels_refs", wantWritten: "0"},
		{name: "permanent pipeline refusal", next: permanent, ct: ctV1, enc: "snappy", body: v1, wantStatus: 400, wantBody: "too_old"},
		{name: "retryable pipeline refusal", next: retryable, ct: ctV1, enc: "snappy", body: v1, wantStatus: 503, wantBody: "memory limiter"},
		{name: "v2 permanent refusal reports 0 written", next: permanent, ct: ctV2, enc: "snappy", body: v2, wantStatus: 400, wantWritten: "0"},
		{name: "v2 retryable refusal", next: retryable, ct: ctV2, enc: "snappy", body: v2, wantStatus: 503, wantWritten: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.MetricsSink)
			next := tt.next
			if next == nil {
				next = sink
			}
			url := startReceiver(t, next)
			resp, msg := post(t, url, tt.ct, tt.enc, tt.body)
			require.Equal(t, tt.wantStatus, resp.StatusCode, msg)
			require.Contains(t, msg, tt.wantBody)
			require.Equal(t, tt.wantPoints, sink.DataPointCount())
			require.Equal(t, tt.wantWritten, resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"))
		})
	}
}

func TestGetIsNotAllowed(t *testing.T) {
	url := startReceiver(t, new(consumertest.MetricsSink))
	resp, err := http.Get(url) //nolint:noctx // test
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestShutdownWithoutStart(t *testing.T) {
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), createDefaultConfig(), new(consumertest.MetricsSink))
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
}
