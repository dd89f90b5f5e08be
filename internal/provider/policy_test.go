package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func otelProvider(endpoint string, proto pb.OtlpProtocol) *pb.ProviderConfig {
	return &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
		Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{Endpoint: endpoint, Protocol: proto}}}
}

func promProvider(p *pb.PrometheusSettings) *pb.ProviderConfig {
	return &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
		Settings: &pb.ProviderSettings{Prometheus: p}}
}

func customProvider(t *testing.T, typ string, cfg map[string]any) *pb.ProviderConfig {
	t.Helper()
	st, err := structpb.NewStruct(cfg)
	require.NoError(t, err)
	return &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_CUSTOM,
		Settings: &pb.ProviderSettings{Custom: &pb.CustomSettings{ExporterType: typ, Config: st}}}
}

func withTLS(pc *pb.ProviderConfig, tls *pb.TlsSettings) *pb.ProviderConfig {
	pc.Security = &pb.SecurityConfig{Tls: tls}
	return pc
}

// Each class is refused by the default policy, naming the field, the class
// and the config key, and allowed by its config key.
func TestPolicyRefusesEachClassByDefault(t *testing.T) {
	t.Parallel()
	self := DestinationPolicy{SelfEndpoints: []string{"localhost:4317", "0.0.0.0:4318", "[::1]:4320"}}
	tests := []struct {
		name   string
		pc     *pb.ProviderConfig
		base   DestinationPolicy
		field  string
		class  string
		allow  func(*DestinationPolicy)
		always bool // no key allows it
	}{
		{
			name:  "remote write to the cloud metadata service",
			pc:    promProvider(&pb.PrometheusSettings{RemoteWriteUrl: "http://169.254.169.254/latest/meta-data"}),
			field: "config.settings.prometheus.remote_write_url", class: ClassCloudMetadata,
			allow: func(p *DestinationPolicy) { p.AllowLinkLocal = true },
		},
		{
			name: "otlp grpc to a link-local address", pc: otelProvider("169.254.10.1:4317", 0),
			field: "config.settings.opentelemetry.endpoint", class: ClassLinkLocal,
			allow: func(p *DestinationPolicy) { p.AllowLinkLocal = true },
		},
		{
			name: "otlp http to an IPv6 link-local address with a zone", pc: otelProvider("http://[fe80::1%25eth0]:4318", pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_PROTOBUF),
			field: "config.settings.opentelemetry.endpoint", class: ClassLinkLocal,
			allow: func(p *DestinationPolicy) { p.AllowLinkLocal = true },
		},
		{
			name: "IPv4-mapped IPv6 metadata address", pc: otelProvider("[::ffff:169.254.169.254]:80", 0),
			field: "config.settings.opentelemetry.endpoint", class: ClassCloudMetadata,
			allow: func(p *DestinationPolicy) { p.AllowLinkLocal = true },
		},
		{
			name:  "push gateway on a metadata host name (case, trailing dot)",
			pc:    promProvider(&pb.PrometheusSettings{PushGatewayUrl: "http://Metadata.Google.Internal./computeMetadata", JobName: "j"}),
			field: "config.settings.prometheus.push_gateway_url", class: ClassCloudMetadata,
			allow: func(p *DestinationPolicy) { p.AllowLinkLocal = true },
		},
		{
			name: "statsd to the Alibaba metadata address",
			pc: &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_STATSD,
				Settings: &pb.ProviderSettings{Statsd: &pb.StatsdSettings{Address: "100.100.100.200:8125"}}},
			field: "config.settings.statsd.address", class: ClassCloudMetadata,
			allow: func(p *DestinationPolicy) { p.AllowLinkLocal = true },
		},
		{
			name:  "custom exporter endpoint to the metadata service",
			pc:    customProvider(t, "otlp_http", map[string]any{"metrics_endpoint": "http://169.254.169.254:80/v1/metrics"}),
			field: "config.settings.custom.config.metrics_endpoint", class: ClassCloudMetadata,
			allow: func(p *DestinationPolicy) { p.AllowLinkLocal = true },
		},
		{
			name: "scrape endpoint on 0.0.0.0", pc: promProvider(&pb.PrometheusSettings{ScrapeEndpoint: "0.0.0.0:9464"}),
			field: "config.settings.prometheus.scrape_endpoint", class: ClassUnspecifiedBind,
			allow: func(p *DestinationPolicy) { p.AllowUnspecifiedBind = true },
		},
		{
			name: "scrape endpoint on ::", pc: promProvider(&pb.PrometheusSettings{ScrapeEndpoint: "[::]:9464"}),
			field: "config.settings.prometheus.scrape_endpoint", class: ClassUnspecifiedBind,
			allow: func(p *DestinationPolicy) { p.AllowUnspecifiedBind = true },
		},
		{
			name: "scrape endpoint without a host", pc: promProvider(&pb.PrometheusSettings{ScrapeEndpoint: ":9464"}),
			field: "config.settings.prometheus.scrape_endpoint", class: ClassUnspecifiedBind,
			allow: func(p *DestinationPolicy) { p.AllowUnspecifiedBind = true },
		},
		{
			name:  "custom prometheus exporter listening on every interface",
			pc:    customProvider(t, "prometheus", map[string]any{"endpoint": "0.0.0.0:9464"}),
			field: "config.settings.custom.config.endpoint", class: ClassUnspecifiedBind,
			allow: func(p *DestinationPolicy) { p.AllowUnspecifiedBind = true },
		},
		{
			name: "loop: 127.0.0.1 to a receiver on localhost", pc: otelProvider("127.0.0.1:4317", 0), base: self,
			field: "config.settings.opentelemetry.endpoint", class: ClassSelf,
			allow: func(p *DestinationPolicy) { p.AllowSelf = true },
		},
		{
			name: "loop: localhost URL to a receiver on every interface", base: self,
			pc:    otelProvider("http://localhost:4318/v1/metrics", pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_PROTOBUF),
			field: "config.settings.opentelemetry.endpoint", class: ClassSelf,
			allow: func(p *DestinationPolicy) { p.AllowSelf = true },
		},
		{
			name: "loop: 0.0.0.0 as a destination reaches this machine", pc: otelProvider("0.0.0.0:4317", 0), base: self,
			field: "config.settings.opentelemetry.endpoint", class: ClassSelf,
			allow: func(p *DestinationPolicy) { p.AllowSelf = true },
		},
		{
			name: "loop: ::1 to a receiver on [::1]", pc: otelProvider("[::1]:4320", 0), base: self,
			field: "config.settings.opentelemetry.endpoint", class: ClassSelf,
			allow: func(p *DestinationPolicy) { p.AllowSelf = true },
		},
		{
			name: "loop through a custom exporter", base: self,
			pc:    customProvider(t, "otlp_grpc", map[string]any{"endpoint": "localhost:4317"}),
			field: "config.settings.custom.config.endpoint", class: ClassSelf,
			allow: func(p *DestinationPolicy) { p.AllowSelf = true },
		},
		{
			name: "TLS ca_file without allowed directories", pc: withTLS(otelProvider("collector:4317", 0), &pb.TlsSettings{CaFile: "/etc/shadow"}),
			field: "config.security.tls.ca_file", class: ClassFileOutsideDirs,
			allow: func(p *DestinationPolicy) { p.FileDirs = []string{"/etc"} },
		},
		{
			name:  "custom exporter *_file setting",
			pc:    customProvider(t, "otlp_grpc", map[string]any{"endpoint": "collector:4317", "tls": map[string]any{"key_file": "/etc/ssl/private/k.pem"}}),
			field: "config.settings.custom.config.tls.key_file", class: ClassFileOutsideDirs,
			allow: func(p *DestinationPolicy) { p.FileDirs = []string{"/"} },
		},
		{
			name: "decimal IPv4 a resolver may read as 169.254.169.254", pc: otelProvider("http://2852039166/", pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_PROTOBUF),
			field: "config.settings.opentelemetry.endpoint", class: ClassNonCanonicalHost, always: true,
		},
		{
			name: "octal IPv4", pc: otelProvider("0251.0376.0251.0376:80", 0),
			field: "config.settings.opentelemetry.endpoint", class: ClassNonCanonicalHost, always: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(tt.base)
			p.evalSymlinks = func(s string) (string, error) { return s, nil } // no file system
			v := p.check(tt.pc)
			require.Len(t, v, 1, "%+v", v)
			assert.Equal(t, tt.field, v[0].Field)
			assert.Equal(t, tt.class, v[0].Class)
			assert.Contains(t, v[0].Message, tt.field)
			if tt.always {
				assert.Empty(t, v[0].ConfigKey)
				return
			}
			require.NotEmpty(t, v[0].ConfigKey)
			assert.Contains(t, v[0].Message, v[0].ConfigKey, "the message names the key that allows it")
			allowed := tt.base
			tt.allow(&allowed)
			p = newPolicy(allowed)
			p.evalSymlinks = func(s string) (string, error) { return s, nil }
			assert.Empty(t, p.check(tt.pc), "allowed by %s", v[0].ConfigKey)
		})
	}
}

// The default policy leaves ordinary destinations alone: host names (no DNS
// lookup), private and loopback addresses that are not the collector's, and
// the specification's example.
func TestPolicyAllowsOrdinaryDestinations(t *testing.T) {
	t.Parallel()
	p := newPolicy(DestinationPolicy{SelfEndpoints: []string{"localhost:4317"}})
	for _, pc := range []*pb.ProviderConfig{
		promProvider(&pb.PrometheusSettings{PushGatewayUrl: "http://pushgateway:9091", JobName: "myapp"}),
		promProvider(&pb.PrometheusSettings{RemoteWriteUrl: "https://prometheus.example.com/api/v1/write"}),
		promProvider(&pb.PrometheusSettings{ScrapeEndpoint: "localhost:9464"}),
		otelProvider("10.0.0.5:4317", 0),
		otelProvider("127.0.0.1:14317", 0),
		otelProvider("otel-collector:4317", 0),
		customProvider(t, "otlp_http", map[string]any{"endpoint": "http://1password.example:4318"}),
	} {
		assert.Empty(t, p.check(pc), "%v", pc)
	}
}

// File settings: only in the allowed directories, cleaned and with
// symlinks resolved; a path outside them is refused before the file system
// is looked at, and the file is never opened.
func TestPolicyFileDirs(t *testing.T) {
	t.Parallel()
	allowed := t.TempDir()
	outside := t.TempDir()
	ca := filepath.Join(allowed, "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("not read"), 0o600))
	secret := filepath.Join(outside, "secret.pem")
	require.NoError(t, os.WriteFile(secret, []byte("x"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(allowed, "escape.pem")))
	require.NoError(t, os.Symlink(ca, filepath.Join(allowed, "inside.pem")))

	var mu sync.Mutex
	var looked []string
	p := newPolicy(DestinationPolicy{FileDirs: []string{allowed + "/"}})
	real := p.evalSymlinks
	p.evalSymlinks = func(s string) (string, error) {
		mu.Lock()
		looked = append(looked, s)
		mu.Unlock()
		return real(s)
	}
	resolvedAllowed, err := filepath.EvalSymlinks(allowed)
	require.NoError(t, err)
	tests := []struct {
		path   string
		ok     bool
		looked bool // the file system was consulted
	}{
		{path: ca, ok: true, looked: true},
		{path: filepath.Join(allowed, "sub", "..", "ca.pem"), ok: true, looked: true},
		{path: filepath.Join(allowed, "inside.pem"), ok: true, looked: true},
		{path: filepath.Join(allowed, "escape.pem"), looked: true},
		{path: filepath.Join(allowed, "missing.pem"), looked: true},
		{path: filepath.Join(allowed, "..", filepath.Base(outside), "secret.pem")},
		{path: "/etc/shadow"},
		{path: "ca.pem"},
		{path: allowed + "-sibling/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			mu.Lock()
			looked = nil
			mu.Unlock()
			v := p.check(withTLS(otelProvider("collector:4317", 0), &pb.TlsSettings{CaFile: tt.path}))
			if tt.ok {
				assert.Empty(t, v)
			} else {
				require.Len(t, v, 1)
				assert.Equal(t, ClassFileOutsideDirs, v[0].Class)
				assert.Equal(t, "config.security.tls.ca_file", v[0].Field)
				assert.Equal(t, "destination_policy.file_dirs", v[0].ConfigKey)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.looked {
				require.Len(t, looked, 1)
				assert.True(t, filepath.IsAbs(looked[0]))
			} else {
				assert.Empty(t, looked, "a path outside the allowed directories is not looked at")
			}
		})
	}
	assert.Equal(t, []string{resolvedAllowed}, p.dirs)
}

// The engine refuses a policy violation with a *PolicyError whether or not
// validate_config is set, creates nothing, and never builds the exporter (so
// /etc/shadow is never opened); updates and dry runs are refused the same way.
func TestEnginePolicyRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, name := newSink(t, "s")
	e := newTestEngine(t, newTestHost(sinkFactory()), nil)
	e.policy.evalSymlinks = func(s string) (string, error) {
		t.Errorf("the file system was consulted for %q", s)
		return s, nil
	}
	bad := sinkProvider("bad", name)
	bad.Security = &pb.SecurityConfig{Tls: &pb.TlsSettings{CaFile: "/etc/shadow"}}
	for _, req := range []*pb.CreateProviderRequest{
		{Config: bad, AutoStart: true},
		{Config: bad, ValidateConfig: true, AutoStart: true},
		{Config: bad, DryRun: true},
	} {
		_, err := e.Create(ctx, req)
		var pe *PolicyError
		require.True(t, errors.As(err, &pe), "%v", err)
		assert.Equal(t, "config.security.tls.ca_file", pe.Violations[0].Field)
		assert.Contains(t, err.Error(), "destination_policy.file_dirs")
	}
	list, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Zero(t, list.GetTotalCount(), "nothing was created")

	_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("good", name), AutoStart: true, ValidateConfig: true})
	require.NoError(t, err)
	bad.ProviderId = "good"
	for _, validateOnly := range []bool{true, false} {
		_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "good", Config: bad, ValidateOnly: validateOnly})
		var pe *PolicyError
		require.True(t, errors.As(err, &pe), "%v", err)
	}
}

// A provider that runs before the collector's endpoints are known is
// stopped and FAILED when they turn out to include its destination.
func TestSetSelfEndpointsStopsALoop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, name := newSink(t, "s")
	e := newTestEngine(t, newTestHost(sinkFactory()), nil)
	loop := sinkProvider("loop", name)
	loop.GetSettings().GetCustom().GetConfig().Fields["endpoint"] = structpb.NewStringValue("localhost:4317")
	other := sinkProvider("other", name)
	for _, pc := range []*pb.ProviderConfig{loop, other} {
		_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: pc, AutoStart: true})
		require.NoError(t, err)
	}
	require.Equal(t, 2, e.Router().Routes())

	e.SetSelfEndpoints(ctx, []string{"0.0.0.0:4317", "localhost:4318"})
	assert.Equal(t, []string{"0.0.0.0:4317", "localhost:4318"}, e.SelfEndpoints())
	list, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	states := map[string]pb.ProviderState{}
	for _, p := range list.GetProviders() {
		states[p.GetConfig().GetProviderId()] = p.GetState()
		if p.GetConfig().GetProviderId() == "loop" {
			assert.Contains(t, p.GetLastError(), "destination_policy.allow_self")
		}
	}
	assert.Equal(t, map[string]pb.ProviderState{"loop": pb.ProviderState_PROVIDER_STATE_FAILED, "other": pb.ProviderState_PROVIDER_STATE_RUNNING}, states)
	assert.Equal(t, 1, e.Router().Routes())
}
