package provider

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FuzzProviderFilter compiles any filter that validateFilter accepts (the
// compiler panics on what validation should have refused) and applies it:
// the input is not changed and no point is added.
func FuzzProviderFilter(f *testing.F) {
	f.Add("http_*", "http_debug_*", "http_.*", "GET|POST", uint8(3))
	f.Add("[a-c]?", "", "", "eu", uint8(1))
	f.Add("*", "x", "(", "", uint8(4))
	f.Add("[!a]", "\\", "a)|(b", ".*", uint8(9))
	f.Fuzz(func(t *testing.T, glob, exclude, re, value string, op uint8) {
		mf := &pb.MetricFilter{NameRegex: re,
			LabelMatchers: []*pb.LabelMatcher{{Name: "method", Operator: pb.MatchOperator(op % 6), Value: value}}}
		if glob != "" {
			mf.Names = []string{glob}
		}
		if exclude != "" {
			mf.ExcludeNames = []string{exclude}
		}
		if len(validateFilter("filter", mf)) > 0 {
			return
		}
		flt, err := compileFilter(mf)
		if err != nil {
			t.Fatalf("validated filter does not compile: %v", err)
		}
		md := fuzzMetrics()
		before := pointsOf(md)
		out, _ := flt.apply(md)
		if pointsOf(md) != before {
			t.Fatal("apply changed its input")
		}
		if n := pointsOf(out); n > before {
			t.Fatalf("apply returned %d points out of %d", n, before)
		}
	})
}

func fuzzMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "api")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for _, name := range []string{"http_requests_total", "http_debug_x", "a1", "é"} {
		m := ms.AppendEmpty()
		m.SetName(name)
		dps := m.SetEmptyGauge().DataPoints()
		for _, v := range []string{"GET", "POST", ""} {
			dp := dps.AppendEmpty()
			dp.SetDoubleValue(1)
			if v != "" {
				dp.Attributes().PutStr("method", v)
			}
		}
	}
	return md
}

func pointsOf(md pmetric.Metrics) int { return md.DataPointCount() }

var providerSeeds = []string{
	`{"provider_id": "otel", "type": "PROVIDER_TYPE_OPENTELEMETRY",
		"settings": {"opentelemetry": {"endpoint": "collector:4317", "compression": "zstd", "timeout": "3s", "headers": {"X-Tenant": "a"}}},
		"security": {"tls": {"insecure": true}, "bearer_token": "s3cret"},
		"retry": {"enabled": true, "initial_interval": "1s", "max_elapsed_time": "60s"}}`,
	`{"provider_id": "otel-http", "type": "PROVIDER_TYPE_OPENTELEMETRY",
		"settings": {"opentelemetry": {"endpoint": "https://collector:4318", "protocol": "OTLP_PROTOCOL_HTTP_JSON"}},
		"security": {"basic_auth": {"username": "u", "password": "p"}}, "retry": {"enabled": false}}`,
	`{"provider_id": "prw", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"remote_write_url": "http://prom:9090/api/v1/write", "namespace": "app",
			"external_labels": {"cluster": "eu1"}, "headers": {"X-Scope-OrgID": "t1"}, "timeout": "2s"}}}`,
	`{"provider_id": "scrape", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"scrape_endpoint": "127.0.0.1:9464", "external_labels": {"env": "prod"}, "headers": {"a": "b"}}}}`,
	`{"provider_id": "pg", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp", "namespace": "app",
			"push_method": "PUSH_METHOD_POST", "grouping_labels": {"instance": "a"}, "headers": {"X": "y"},
			"external_labels": {"env": "prod"}, "timeout": "4s"}}}`,
	`{"provider_id": "sd", "type": "PROVIDER_TYPE_STATSD",
		"settings": {"statsd": {"address": "statsd:8125", "transport": "STATSD_TRANSPORT_TCP", "prefix": "app",
			"tag_format": "STATSD_TAG_FORMAT_INFLUXDB", "sample_rate": 0.5, "max_packet_size": 1400, "flush_interval": "1s"}}}`,
	`{"provider_id": "x", "type": "PROVIDER_TYPE_CUSTOM",
		"settings": {"custom": {"exporter_type": "otlp_grpc", "config": {"endpoint": "a:4317", "sending_queue": {"enabled": true}}}}}`,
}

// FuzzProviderMapping maps any decodable provider config to an exporter
// config: validation and mapping never panic; a config that validates maps
// to an exporter type; building it either succeeds or is refused with a
// field-level *ValidationError or a *MissingExporterError.
func FuzzProviderMapping(f *testing.F) {
	for _, js := range providerSeeds {
		pc := &pb.ProviderConfig{}
		if err := protojson.Unmarshal([]byte(js), pc); err != nil {
			f.Fatal(err)
		}
		b, err := pc.MarshalVT()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	host := withPushgatewayAndStatsd(distribution())
	f.Fuzz(func(t *testing.T, data []byte) {
		pc := &pb.ProviderConfig{}
		if pc.UnmarshalVT(data) != nil {
			return
		}
		p := planExporter(pc)
		if len(errorsOf(validateConfig(pc))) > 0 {
			return
		}
		if p == nil || p.exporterType == "" && pc.GetType() != pb.ProviderType_PROVIDER_TYPE_CUSTOM {
			t.Fatalf("a valid config maps to no exporter: %v", pc)
		}
		conf := map[string]any{}
		for _, a := range p.assigns {
			setPath(conf, a.key, a.value)
		}
		_ = confmap.NewFromStringMap(conf)
		_, err := buildConfig(host, pc)
		var ve *ValidationError
		var me *MissingExporterError
		if err != nil && !errors.As(err, &ve) && !errors.As(err, &me) {
			t.Fatalf("build: %T %v", err, err)
		}
	})
}
