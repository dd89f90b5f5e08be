package provider

import (
	"errors"
	"testing"
	"time"

	promexporter "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	prwexporter "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter"
	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// distribution is the exporters of the distribution (no pushgateway/statsd).
func distribution() *testHost {
	return newTestHost(otlpexporter.NewFactory(), otlphttpexporter.NewFactory(), prwexporter.NewFactory(),
		promexporter.NewFactory(), debugexporter.NewFactory(), sinkFactory())
}

func parseConfig(t *testing.T, js string) *pb.ProviderConfig {
	t.Helper()
	pc := &pb.ProviderConfig{}
	require.NoError(t, protojson.Unmarshal([]byte(js), pc))
	return pc
}

func mustBuild(t *testing.T, host *testHost, pc *pb.ProviderConfig) *built {
	t.Helper()
	require.Empty(t, errorsOf(validateConfig(pc)))
	b, err := buildConfig(host, pc)
	require.NoError(t, err)
	return b
}

func errorsOf(issues []*pb.ValidationIssue) []string {
	var out []string
	for _, i := range issues {
		if i.GetSeverity() == pb.Severity_SEVERITY_ERROR {
			out = append(out, i.GetField()+": "+i.GetMessage())
		}
	}
	return out
}

func TestMapOTLPGRPC(t *testing.T) {
	pc := parseConfig(t, `{"provider_id": "otel", "type": "PROVIDER_TYPE_OPENTELEMETRY",
		"settings": {"opentelemetry": {"endpoint": "collector:4317", "compression": "zstd", "timeout": "3s", "headers": {"X-Tenant": "a"}}},
		"security": {"tls": {"insecure": true}, "bearer_token": "s3cret"},
		"retry": {"enabled": true, "initial_interval": "1s", "max_elapsed_time": "60s"}}`)
	b := mustBuild(t, distribution(), pc)
	assert.Equal(t, "otlp_grpc", b.exporterType.String())
	cfg := b.cfg.(*otlpexporter.Config)
	assert.Equal(t, "collector:4317", cfg.ClientConfig.Endpoint)
	assert.Equal(t, "zstd", string(cfg.ClientConfig.Compression))
	assert.True(t, cfg.ClientConfig.TLS.Insecure)
	assert.Equal(t, 3*time.Second, cfg.TimeoutConfig.Timeout)
	auth, _ := cfg.ClientConfig.Headers.Get("Authorization")
	assert.Equal(t, "Bearer s3cret", string(auth))
	tenant, _ := cfg.ClientConfig.Headers.Get("X-Tenant")
	assert.Equal(t, "a", string(tenant))
	assert.False(t, cfg.QueueConfig.HasValue(), "the provider queues itself; the exporter's queue is off")
	assert.True(t, cfg.RetryConfig.Enabled)
	assert.Equal(t, time.Second, cfg.RetryConfig.InitialInterval)
	assert.Equal(t, time.Minute, cfg.RetryConfig.MaxElapsedTime)
}

func TestMapOTLPHTTPJSON(t *testing.T) {
	pc := parseConfig(t, `{"provider_id": "otel-http", "type": "PROVIDER_TYPE_OPENTELEMETRY",
		"settings": {"opentelemetry": {"endpoint": "https://collector:4318", "protocol": "OTLP_PROTOCOL_HTTP_JSON"}},
		"security": {"basic_auth": {"username": "u", "password": "p"}}, "retry": {"enabled": false}}`)
	b := mustBuild(t, distribution(), pc)
	assert.Equal(t, "otlp_http", b.exporterType.String())
	cfg := b.cfg.(*otlphttpexporter.Config)
	assert.Equal(t, "https://collector:4318", cfg.ClientConfig.Endpoint)
	assert.Equal(t, otlphttpexporter.EncodingJSON, cfg.Encoding)
	auth, _ := cfg.ClientConfig.Headers.Get("Authorization")
	assert.Equal(t, "Basic dTpw", string(auth))
	assert.False(t, cfg.RetryConfig.Enabled)
	assert.False(t, cfg.QueueConfig.HasValue())
}

func TestMapRemoteWrite(t *testing.T) {
	pc := parseConfig(t, `{"provider_id": "prw", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"remote_write_url": "http://prom:9090/api/v1/write", "namespace": "app",
			"external_labels": {"cluster": "eu1"}, "headers": {"X-Scope-OrgID": "t1"}, "timeout": "2s"}}}`)
	b := mustBuild(t, distribution(), pc)
	assert.Equal(t, "prometheus_remote_write", b.exporterType.String())
	assert.Equal(t, 1, b.defaultConcurrency, "remote write sends one request at a time unless told otherwise")
	cfg := b.cfg.(*prwexporter.Config)
	assert.Equal(t, "http://prom:9090/api/v1/write", cfg.HTTP.Endpoint)
	assert.Equal(t, 2*time.Second, cfg.HTTP.Timeout)
	assert.Equal(t, "app", cfg.Namespace)
	assert.Equal(t, map[string]string{"cluster": "eu1"}, cfg.ExternalLabels)
	assert.False(t, cfg.RemoteWriteQueue.Enabled, "the exporter sends synchronously: the provider queues")
	org, _ := cfg.HTTP.Headers.Get("X-Scope-OrgID")
	assert.Equal(t, "t1", string(org))
}

func TestMapScrapeEndpoint(t *testing.T) {
	pc := parseConfig(t, `{"provider_id": "scrape", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"scrape_endpoint": "127.0.0.1:9464", "external_labels": {"env": "prod"}, "headers": {"a": "b"}}}}`)
	b := mustBuild(t, distribution(), pc)
	assert.Equal(t, "prometheus", b.exporterType.String())
	cfg := b.cfg.(*promexporter.Config)
	assert.Equal(t, "127.0.0.1:9464", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, "prod", cfg.ConstLabels["env"])
	require.Len(t, b.warnings, 1)
	assert.Equal(t, "config.settings.prometheus.headers", b.warnings[0].GetField())
}

// The specification's example, verbatim: until the pushgateway exporter is
// compiled in, FAILED_PRECONDITION names the missing exporter type.
func TestSpecExampleNeedsPushgateway(t *testing.T) {
	pc := parseConfig(t, `{"provider_id": "prod-prometheus", "name": "Production Prometheus",
		"type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp"}}}`)
	require.Empty(t, errorsOf(validateConfig(pc)))
	_, err := buildConfig(distribution(), pc)
	var me *MissingExporterError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "pushgateway", me.Type)
	assert.True(t, errors.Is(err, ErrFailedPrecondition))
	assert.Contains(t, err.Error(), `"pushgateway" is not compiled into this collector`)
}

func TestMapPushgateway(t *testing.T) {
	host := withPushgatewayAndStatsd(distribution())
	pc := parseConfig(t, `{"provider_id": "pg", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp", "namespace": "app",
			"push_method": "PUSH_METHOD_POST", "grouping_labels": {"instance": "a"}, "headers": {"X": "y"},
			"external_labels": {"env": "prod"}, "timeout": "4s"}},
		"security": {"basic_auth": {"username": "u", "password": "p"}}}`)
	b := mustBuild(t, host, pc)
	assert.Equal(t, 1, b.defaultConcurrency, "pushes stay in order")
	cfg := b.cfg.(*pushgatewayexporter.Config)
	assert.Equal(t, "http://pushgateway:9091", cfg.ClientConfig.Endpoint)
	assert.Equal(t, "myapp", cfg.Job)
	assert.Equal(t, "POST", cfg.Method)
	assert.Equal(t, map[string]string{"instance": "a"}, cfg.GroupingLabels)
	assert.Equal(t, "app", cfg.Namespace)
	assert.Equal(t, "u", cfg.BasicAuth.Username)
	assert.Equal(t, "p", string(cfg.BasicAuth.Password))
	x, _ := cfg.ClientConfig.Headers.Get("X")
	assert.Equal(t, "y", string(x))
	assert.Equal(t, 4*time.Second, cfg.ClientConfig.Timeout)
	assert.False(t, cfg.QueueConfig.HasValue())
	require.Len(t, b.warnings, 1, "external_labels: the pushgateway exporter has no such setting")
	assert.Equal(t, "config.settings.prometheus.external_labels", b.warnings[0].GetField())
	assert.Equal(t, "unsupported_setting", b.warnings[0].GetCode())

	// The specification's example builds as it is.
	spec := parseConfig(t, `{"provider_id": "prod-prometheus", "name": "Production Prometheus",
		"type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp"}}}`)
	b = mustBuild(t, host, spec)
	assert.Equal(t, "PUT", b.cfg.(*pushgatewayexporter.Config).Method)
}

// The pushgateway contract (endpoint, job, method, grouping_labels) on a
// stand-in with exactly these keys: everything else is optional.
func TestMapPushgatewayContract(t *testing.T) {
	host := distribution()
	f := fakeFactory("pushgateway", func() component.Config { return &pushgatewayConfig{} })
	host.factories[f.Type()] = f
	pc := parseConfig(t, `{"provider_id": "pg", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp",
			"push_method": "PUSH_METHOD_POST", "grouping_labels": {"instance": "a"}, "headers": {"X": "y"}}}}`)
	b := mustBuild(t, host, pc)
	assert.Equal(t, &pushgatewayConfig{
		Endpoint: "http://pushgateway:9091", Job: "myapp", Method: "POST",
		GroupingLabels: map[string]string{"instance": "a"},
	}, b.cfg)
	require.Len(t, b.warnings, 1, "headers are dropped with a warning when the exporter has no such setting")
	assert.Equal(t, "unsupported_setting", b.warnings[0].GetCode())
}

func TestMapStatsd(t *testing.T) {
	host := distribution()
	pc := parseConfig(t, `{"provider_id": "sd", "type": "PROVIDER_TYPE_STATSD",
		"settings": {"statsd": {"address": "statsd:8125", "transport": "STATSD_TRANSPORT_TCP", "prefix": "app",
			"tag_format": "STATSD_TAG_FORMAT_INFLUXDB", "sample_rate": 0.5, "max_packet_size": 1400, "flush_interval": "1s"}}}`)
	_, err := buildConfig(host, pc)
	var me *MissingExporterError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "statsd", me.Type)

	host = withPushgatewayAndStatsd(host)
	b := mustBuild(t, host, pc)
	cfg := b.cfg.(*statsdexporter.Config)
	assert.Equal(t, "statsd:8125", cfg.Endpoint)
	assert.Equal(t, "tcp", cfg.Transport)
	assert.Equal(t, "app", cfg.Prefix)
	assert.Equal(t, "influxdb", cfg.TagFormat)
	assert.Equal(t, 0.5, cfg.SampleRate)
	assert.Equal(t, 1400, cfg.MaxPacketSize)
	assert.False(t, cfg.QueueConfig.HasValue())
	require.Len(t, b.warnings, 1)
	assert.Equal(t, "config.settings.statsd.flush_interval", b.warnings[0].GetField())

	pc.GetSettings().GetStatsd().TagFormat = pb.StatsdTagFormat_STATSD_TAG_FORMAT_UNSPECIFIED
	pc.GetSettings().GetStatsd().Transport = pb.StatsdTransport_STATSD_TRANSPORT_UNSPECIFIED
	b = mustBuild(t, host, pc)
	assert.Equal(t, "dogstatsd", b.cfg.(*statsdexporter.Config).TagFormat)
	assert.Equal(t, "udp", b.cfg.(*statsdexporter.Config).Transport)

	// The contract keys on a stand-in with exactly these keys.
	f := fakeFactory("statsd", func() component.Config { return &statsdConfig{} })
	host.factories[f.Type()] = f
	pc.GetSettings().GetStatsd().FlushInterval = nil
	b = mustBuild(t, host, pc)
	assert.Equal(t, &statsdConfig{
		Endpoint: "statsd:8125", Transport: "udp", Prefix: "app", TagFormat: "dogstatsd",
		SampleRate: 0.5, MaxPacketSize: 1400,
	}, b.cfg)
}

func withPushgatewayAndStatsd(h *testHost) *testHost {
	for _, f := range []exporter.Factory{pushgatewayexporter.NewFactory(), statsdexporter.NewFactory()} {
		h.factories[f.Type()] = f
	}
	return h
}

func TestMapCustom(t *testing.T) {
	raw, err := structpb.NewStruct(map[string]any{"verbosity": "detailed", "sampling_initial": 5})
	require.NoError(t, err)
	pc := &pb.ProviderConfig{
		ProviderId: "dbg", Type: pb.ProviderType_PROVIDER_TYPE_CUSTOM,
		Settings: &pb.ProviderSettings{Custom: &pb.CustomSettings{ExporterType: "debug", Config: raw}},
	}
	b := mustBuild(t, distribution(), pc)
	assert.Equal(t, "debug", b.exporterType.String())

	raw.Fields["no_such_key"] = structpb.NewBoolValue(true)
	_, err = buildConfig(distribution(), pc)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "config.settings.custom.config", ve.Issues[0].GetField())
	assert.Contains(t, ve.Issues[0].GetMessage(), "no_such_key")

	pc.GetSettings().GetCustom().ExporterType = "kafka"
	_, err = buildConfig(distribution(), pc)
	var me *MissingExporterError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "kafka", me.Type)
}

func TestExporterValidationIsFieldLevel(t *testing.T) {
	// otlp_http validates its own config: a bad compression value is refused by
	// the exporter's unmarshal and names the request field.
	pc := parseConfig(t, `{"provider_id": "x", "type": "PROVIDER_TYPE_CUSTOM",
		"settings": {"custom": {"exporter_type": "otlp_grpc", "config": {}}}}`)
	_, err := buildConfig(distribution(), pc)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "config.settings.custom.config", ve.Issues[0].GetField())
	assert.Contains(t, ve.Issues[0].GetMessage(), "endpoint")
}

func TestValidateConfig(t *testing.T) {
	tests := []struct {
		name   string
		js     string
		fields []string
	}{
		{"no id", `{"type": "PROVIDER_TYPE_STATSD", "settings": {"statsd": {"address": "a:1"}}}`, []string{"config.provider_id"}},
		{"bad id", `{"provider_id": "Prod!", "type": "PROVIDER_TYPE_STATSD", "settings": {"statsd": {"address": "a:1"}}}`, []string{"config.provider_id"}},
		{"no type", `{"provider_id": "a"}`, []string{"config.type"}},
		{
			"settings of another type", `{"provider_id": "a", "type": "PROVIDER_TYPE_STATSD", "settings": {"custom": {"exporter_type": "debug"}}}`,
			[]string{"config.settings.custom", "config.settings.statsd"},
		},
		{"two prometheus targets", `{"provider_id": "a", "type": "PROVIDER_TYPE_PROMETHEUS",
			"settings": {"prometheus": {"remote_write_url": "http://a/w", "scrape_endpoint": "a:1"}}}`, []string{"config.settings.prometheus.remote_write_url"}},
		{"push gateway without job", `{"provider_id": "a", "type": "PROVIDER_TYPE_PROMETHEUS",
			"settings": {"prometheus": {"push_gateway_url": "http://pg:9091"}}}`, []string{"config.settings.prometheus.job_name"}},
		{"bad url", `{"provider_id": "a", "type": "PROVIDER_TYPE_PROMETHEUS",
			"settings": {"prometheus": {"remote_write_url": "prom:9090"}}}`, []string{"config.settings.prometheus.remote_write_url"}},
		{
			"bad label", `{"provider_id": "a", "type": "PROVIDER_TYPE_PROMETHEUS",
			"settings": {"prometheus": {"remote_write_url": "http://p/w", "external_labels": {"1x": "y"}}}}`,
			[]string{`config.settings.prometheus.external_labels["1x"]`},
		},
		{
			"otlp without endpoint", `{"provider_id": "a", "type": "PROVIDER_TYPE_OPENTELEMETRY", "settings": {"opentelemetry": {}}}`,
			[]string{"config.settings.opentelemetry.endpoint"},
		},
		{"otlp http needs url", `{"provider_id": "a", "type": "PROVIDER_TYPE_OPENTELEMETRY",
			"settings": {"opentelemetry": {"endpoint": "c:4318", "protocol": "OTLP_PROTOCOL_HTTP_PROTOBUF"}}}`, []string{"config.settings.opentelemetry.endpoint"}},
		{"bad compression", `{"provider_id": "a", "type": "PROVIDER_TYPE_OPENTELEMETRY",
			"settings": {"opentelemetry": {"endpoint": "c:4317", "compression": "lz4"}}}`, []string{"config.settings.opentelemetry.compression"}},
		{
			"statsd", `{"provider_id": "a", "type": "PROVIDER_TYPE_STATSD", "settings": {"statsd": {"address": "nohost", "sample_rate": 2}}}`,
			[]string{"config.settings.statsd.address", "config.settings.statsd.sample_rate"},
		},
		{
			"filter", `{"provider_id": "a", "type": "PROVIDER_TYPE_STATSD", "settings": {"statsd": {"address": "a:1"}},
			"filter": {"names": ["http_[", ""], "name_regex": "(", "label_matchers": [{"operator": "MATCH_OPERATOR_REGEX", "value": "("}]}}`,
			[]string{
				"config.filter.names[0]", "config.filter.names[1]", "config.filter.name_regex",
				"config.filter.label_matchers[0].name", "config.filter.label_matchers[0].value",
			},
		},
		{
			"limits and health", `{"provider_id": "a", "type": "PROVIDER_TYPE_STATSD", "settings": {"statsd": {"address": "a:1"}},
			"limits": {"concurrency": 5000}, "health_check": {"degraded_error_ratio": 0.9, "unhealthy_error_ratio": 0.5}}`,
			[]string{"config.limits.concurrency", "config.health_check.degraded_error_ratio"},
		},
		{
			"security", `{"provider_id": "a", "type": "PROVIDER_TYPE_OPENTELEMETRY",
			"settings": {"opentelemetry": {"endpoint": "c:1", "headers": {"Authorization": "x"}}},
			"security": {"bearer_token": "t", "basic_auth": {"username": "u"}, "tls": {"cert_file": "c"}}}`,
			[]string{"config.security.tls.key_file", "config.security.bearer_token", "config.security.bearer_token"},
		},
		{"failover to itself", `{"provider_id": "a", "type": "PROVIDER_TYPE_STATSD", "settings": {"statsd": {"address": "a:1"}},
			"failover": {"failover_provider_id": "a"}}`, []string{"config.failover.failover_provider_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, iss := range validateConfig(parseConfig(t, tt.js)) {
				if iss.GetSeverity() == pb.Severity_SEVERITY_ERROR {
					got = append(got, iss.GetField())
					assert.NotEmpty(t, iss.GetCode())
					assert.NotEmpty(t, iss.GetMessage())
				}
			}
			assert.ElementsMatch(t, tt.fields, got)
		})
	}
}

func TestExporterID(t *testing.T) {
	id := exporterID(component.MustNewType("otlp_grpc"), "prod-otlp", 7, 3)
	assert.Equal(t, "otlp_grpc/providers/prod-otlp/g7/v3", id.String())
	var back component.ID
	require.NoError(t, back.UnmarshalText([]byte(id.String())))
	assert.Equal(t, id, back)
}
