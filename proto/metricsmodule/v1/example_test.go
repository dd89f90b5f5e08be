package metricsmodulev1_test

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// sameAsJSON reports whether the JSON a grpcurl user writes decodes to msg.
func sameAsJSON(msg proto.Message, js string) bool {
	fromJSON := msg.ProtoReflect().New().Interface()
	if err := protojson.Unmarshal([]byte(js), fromJSON); err != nil {
		fmt.Println("json:", err)
		return false
	}
	return proto.Equal(msg, fromJSON)
}

// The specification's "Recording Metrics" example.
func ExampleRecordMetricRequest() {
	req := &pb.RecordMetricRequest{
		Metric: &pb.MetricData{
			Name:  "http_requests_total",
			Type:  pb.MetricType_METRIC_TYPE_COUNTER,
			Value: 1.0,
			Labels: map[string]string{
				"method": "GET",
				"path":   "/api/v1/users",
			},
		},
	}
	fmt.Println(req.GetMetric().GetName(), req.GetMetric().GetType())
	fmt.Println(sameAsJSON(req, `{"metric": {"name": "http_requests_total", "type": "METRIC_TYPE_COUNTER", "value": 1,
		"labels": {"method": "GET", "path": "/api/v1/users"}}}`))
	// Output:
	// http_requests_total METRIC_TYPE_COUNTER
	// true
}

// The specification's "Streaming Metrics" example.
func ExampleStreamMetricsRequest() {
	req := &pb.StreamMetricsRequest{
		Filter: &pb.MetricFilter{
			Names: []string{"http_*", "db_*"},
		},
		Options: &pb.StreamOptions{
			BatchSize:      100,
			BatchTimeoutMs: 1000,
			Compression:    pb.StreamCompression_STREAM_COMPRESSION_GZIP,
		},
	}
	fmt.Println(req.GetFilter().GetNames(), req.GetOptions().GetCompression())
	fmt.Println(sameAsJSON(req, `{"filter": {"names": ["http_*", "db_*"]},
		"options": {"batch_size": 100, "batch_timeout_ms": 1000, "compression": "STREAM_COMPRESSION_GZIP"}}`))
	// Output:
	// [http_* db_*] STREAM_COMPRESSION_GZIP
	// true
}

// The specification's "Provider Management" example.
func ExampleCreateProviderRequest() {
	req := &pb.CreateProviderRequest{
		Config: &pb.ProviderConfig{
			ProviderId: "prod-prometheus",
			Name:       "Production Prometheus",
			Type:       pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
			Settings: &pb.ProviderSettings{
				Prometheus: &pb.PrometheusSettings{
					PushGatewayUrl: "http://pushgateway:9091",
					JobName:        "myapp",
				},
			},
		},
		ValidateConfig: true,
		AutoStart:      true,
	}
	fmt.Println(req.GetConfig().GetProviderId(), req.GetConfig().GetType())
	fmt.Println(sameAsJSON(req, `{"config": {"provider_id": "prod-prometheus", "name": "Production Prometheus",
		"type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp"}}},
		"validate_config": true, "auto_start": true}`))
	// Output:
	// prod-prometheus PROVIDER_TYPE_PROMETHEUS
	// true
}
