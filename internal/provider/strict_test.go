package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Unknown enum values and negative numbers are refused naming the field,
// never taken as the default.
func TestStrictInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, name := newSink(t, "s")
	e := newTestEngine(t, newTestHost(sinkFactory()), nil)
	_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("existing", name), AutoStart: true})
	require.NoError(t, err)

	neg := durationpb.New(-time.Second)
	otel := func(f func(*pb.OpenTelemetrySettings)) *pb.ProviderConfig {
		pc := otelProvider("collector:4317", 0)
		f(pc.Settings.Opentelemetry)
		return pc
	}
	prom := func(f func(*pb.PrometheusSettings)) *pb.ProviderConfig {
		s := &pb.PrometheusSettings{PushGatewayUrl: "http://pushgateway:9091", JobName: "j"}
		f(s)
		return promProvider(s)
	}
	statsd := func(f func(*pb.StatsdSettings)) *pb.ProviderConfig {
		s := &pb.StatsdSettings{Address: "statsd:8125"}
		f(s)
		return &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_STATSD, Settings: &pb.ProviderSettings{Statsd: s}}
	}
	sink := func(f func(*pb.ProviderConfig)) *pb.ProviderConfig {
		pc := sinkProvider("p", name)
		f(pc)
		return pc
	}
	create := func(pc *pb.ProviderConfig) func() error {
		return func() error {
			_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: pc})
			return err
		}
	}
	update := func(req *pb.UpdateProviderRequest) func() error {
		return func() error {
			req.ProviderId = "existing"
			if req.Config == nil {
				req.Config = sinkProvider("existing", name)
				req.Config.Name = "changed"
			}
			_, err := e.Update(ctx, req)
			return err
		}
	}
	tests := []struct {
		field string
		call  func() error
	}{
		{"config.type", create(&pb.ProviderConfig{ProviderId: "p", Type: 99})},
		{"config.settings.opentelemetry.protocol", create(otel(func(s *pb.OpenTelemetrySettings) { s.Protocol = 9 }))},
		{"config.settings.opentelemetry.timeout", create(otel(func(s *pb.OpenTelemetrySettings) { s.Timeout = neg }))},
		{"config.settings.prometheus.push_method", create(prom(func(s *pb.PrometheusSettings) { s.PushMethod = 7 }))},
		{"config.settings.prometheus.timeout", create(prom(func(s *pb.PrometheusSettings) { s.Timeout = neg }))},
		{"config.settings.statsd.transport", create(statsd(func(s *pb.StatsdSettings) { s.Transport = 5 }))},
		{"config.settings.statsd.tag_format", create(statsd(func(s *pb.StatsdSettings) { s.TagFormat = -1 }))},
		{"config.settings.statsd.sample_rate", create(statsd(func(s *pb.StatsdSettings) { s.SampleRate = -0.5 }))},
		{"config.settings.statsd.flush_interval", create(statsd(func(s *pb.StatsdSettings) { s.FlushInterval = neg }))},
		{"config.filter.label_matchers[0].operator", create(sink(func(pc *pb.ProviderConfig) {
			pc.Filter = &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a", Operator: 42}}}
		}))},
		{"config.filter.types[0]", create(sink(func(pc *pb.ProviderConfig) { pc.Filter = &pb.MetricFilter{Types: []pb.MetricType{77}} }))},
		{"config.limits.max_datapoints_per_second", create(sink(func(pc *pb.ProviderConfig) { pc.Limits = &pb.ResourceLimits{MaxDatapointsPerSecond: -1} }))},
		{"config.retry.initial_interval", create(sink(func(pc *pb.ProviderConfig) { pc.Retry = &pb.RetryPolicy{InitialInterval: neg} }))},
		{"config.health_check.window", create(sink(func(pc *pb.ProviderConfig) { pc.HealthCheck = &pb.HealthCheckSettings{Window: neg} }))},
		{"config.health_check.degraded_error_ratio", create(sink(func(pc *pb.ProviderConfig) {
			pc.HealthCheck = &pb.HealthCheckSettings{DegradedErrorRatio: -0.1}
		}))},
		{"strategy", update(&pb.UpdateProviderRequest{Strategy: 12})},
		{"drain_timeout", update(&pb.UpdateProviderRequest{DrainTimeout: neg})},
		{"verify_period", update(&pb.UpdateProviderRequest{VerifyPeriod: neg, Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN})},
		{"cleanup_strategy", func() error {
			_, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "existing", CleanupStrategy: 9})
			return err
		}},
		{"drain_timeout", func() error {
			_, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "existing", DrainTimeout: neg})
			return err
		}},
		{"sort_by", func() error { _, err := e.List(ctx, &pb.ListProvidersRequest{SortBy: 99}); return err }},
		{"types[1]", func() error {
			_, err := e.List(ctx, &pb.ListProvidersRequest{Types: []pb.ProviderType{pb.ProviderType_PROVIDER_TYPE_CUSTOM, 50}})
			return err
		}},
		{"states[0]", func() error {
			_, err := e.List(ctx, &pb.ListProvidersRequest{States: []pb.ProviderState{-3}})
			return err
		}},
		{"health[0]", func() error {
			_, err := e.List(ctx, &pb.ListProvidersRequest{Health: []pb.HealthStatus{40}})
			return err
		}},
		{"page_size", func() error { _, err := e.List(ctx, &pb.ListProvidersRequest{PageSize: -1}); return err }},
		{"top_n", func() error {
			_, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "existing", TopN: -5})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			err := tt.call()
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "refused as a validation error: %v", err)
			var fields []string
			for _, iss := range ve.Issues {
				if iss.GetSeverity() == pb.Severity_SEVERITY_ERROR {
					fields = append(fields, iss.GetField())
				}
			}
			assert.Contains(t, fields, tt.field)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
	// Nothing above changed the existing provider.
	list, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetProviders(), 1)
	assert.Equal(t, uint64(1), list.GetProviders()[0].GetVersion())
	assert.True(t, proto.Equal(sinkProvider("existing", name), list.GetProviders()[0].GetConfig()))
}

// Negative numbers and durations in a custom exporter config are refused
// naming the key; the rest by the exporter's own validation, naming the
// custom config.
func TestStrictCustomConfigNegatives(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg   map[string]any
		field string
	}{
		{map[string]any{"endpoint": "http://collector:4318", "timeout": "-1s"}, "config.settings.custom.config.timeout"},
		{map[string]any{"sending_queue": map[string]any{"queue_size": -5}}, "config.settings.custom.config.sending_queue.queue_size"},
		{map[string]any{"list": []any{1, -1}}, "config.settings.custom.config.list[1]"},
	} {
		iss := errorsOf(validateConfig(customProvider(t, "otlp_http", tt.cfg)))
		require.Len(t, iss, 1, "%v", tt.cfg)
		assert.Contains(t, iss[0], tt.field+": ")
	}
}

func TestStrictCustomConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		typ string
		cfg map[string]any
	}{
		{"otlp_http", map[string]any{"endpoint": "http://collector:4318", "compression": "bogus"}},
		{"otlp_grpc", map[string]any{"endpoint": "collector:4317", "sending_queue": map[string]any{"enabled": true, "sizer": "nonsense"}}},
	} {
		pc := customProvider(t, tt.typ, tt.cfg)
		require.Empty(t, errorsOf(validateConfig(pc)))

		_, err := buildConfig(distribution(), pc)
		var ve *ValidationError
		if assert.True(t, errors.As(err, &ve), "%s %v: refused, got %v", tt.typ, tt.cfg, err) {
			assert.Equal(t, "config.settings.custom.config", ve.Issues[0].GetField())
		}
	}
}
