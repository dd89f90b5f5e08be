package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter"
	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The secrets of the test configs; none may appear in any output.
const (
	secURLUser  = "UrlUserName"
	secURLPass  = "S3cr3tPassw0rd"
	secQuery    = "ApiKeyValue123"
	secHeader   = "HeaderValue456"
	secBearer   = "BearerTok789"
	secBasicPw  = "BasicPassw0rd"
	secKeyPEM   = "PRIVATEKEYPEMDATA"
	secCertPEM  = "CLIENTCERTPEMDATA"
	secNestedPw = "NestedAuthPw"
)

var allSecrets = []string{secURLUser, secURLPass, secQuery, secHeader, secBearer, secBasicPw, secKeyPEM, secCertPEM, secNestedPw}

// leakyType is a test exporter that echoes its secrets everywhere it can:
// creation errors, logs (string, error, reflected and stringer fields),
// component status, export errors.
var leakyType = component.MustNewType("leaky")

type leakyConfig struct {
	Endpoint  string            `mapstructure:"endpoint"`
	Headers   map[string]string `mapstructure:"headers"`
	BasicAuth struct {
		Username string `mapstructure:"username"`
		Password string `mapstructure:"password"`
	} `mapstructure:"basic_auth"`
	TLS struct {
		KeyPEM  string `mapstructure:"key_pem"`
		CertPEM string `mapstructure:"cert_pem"`
	} `mapstructure:"tls"`
	FailCreate bool `mapstructure:"fail_create"`
}

type stringer string

func (s stringer) String() string { return string(s) }

func leakyFactory() exporter.Factory {
	return exporter.NewFactory(leakyType, func() component.Config { return &leakyConfig{} },
		exporter.WithMetrics(func(_ context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
			c := cfg.(*leakyConfig)
			all := fmt.Sprintf("%s %v %s %s %s", c.Endpoint, c.Headers, c.BasicAuth.Password, c.TLS.KeyPEM, c.TLS.CertPEM)
			set.Logger.Info("leaky created "+all, zap.String("endpoint", c.Endpoint), zap.Any("headers", c.Headers),
				zap.Reflect("tls", c.TLS), zap.Stringer("auth", stringer(c.BasicAuth.Password)), zap.ByteString("raw", []byte(all)))
			if c.FailCreate {
				return nil, fmt.Errorf("cannot create an exporter for %s", all)
			}
			log := set.Logger.With(zap.String("with", all))
			return sinkExporter{
				StartFunc: func(_ context.Context, host component.Host) error {
					log.Warn("starting", zap.Error(errors.New(all)), zap.Strings("list", []string{all}))
					componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(errors.New("degraded: "+all)))
					return nil
				},
				ConsumeMetricsFunc: func(context.Context, pmetric.Metrics) error {
					return fmt.Errorf("export to %s failed", all)
				},
			}, nil
		}, component.StabilityLevelAlpha))
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func secretCases(t *testing.T) []struct {
	name string
	pc   *pb.ProviderConfig
	// broken is a variant refused by validation or by the build, whose
	// error would echo a secret.
	broken *pb.ProviderConfig
	// wantLog is a log message that must appear (scrubbed).
	wantLog string
} {
	addr := closedAddr(t)
	secretURL := "http://" + secURLUser + ":" + secURLPass + "@" + addr
	query := "?api_key=" + secQuery + "&tenant=t1"
	noRetry := &pb.RetryPolicy{Enabled: false}
	timeout := durationpb.New(time.Second)
	basic := &pb.SecurityConfig{BasicAuth: &pb.BasicAuth{Username: "u", Password: secBasicPw}}
	bearer := &pb.SecurityConfig{BearerToken: secBearer}

	prom := func(s *pb.PrometheusSettings, sec *pb.SecurityConfig) *pb.ProviderConfig {
		s.Timeout = timeout
		return &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
			Settings: &pb.ProviderSettings{Prometheus: s}, Security: sec, Retry: noRetry}
	}
	otel := func(ep string, proto pb.OtlpProtocol, sec *pb.SecurityConfig) *pb.ProviderConfig {
		return &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
			Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{Endpoint: ep, Protocol: proto,
				Headers: map[string]string{"X-Api-Key": secHeader}, Timeout: timeout}}, Security: sec, Retry: noRetry}
	}
	leaky := func(fail bool) *pb.ProviderConfig {
		cfg, err := structpb.NewStruct(map[string]any{
			"endpoint":    secretURL + "/v1" + query,
			"headers":     map[string]any{"X-Api-Key": secHeader},
			"basic_auth":  map[string]any{"username": "u", "password": secNestedPw},
			"tls":         map[string]any{"key_pem": secKeyPEM, "cert_pem": secCertPEM},
			"fail_create": fail,
		})
		require.NoError(t, err)
		return &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_CUSTOM,
			Settings: &pb.ProviderSettings{Custom: &pb.CustomSettings{ExporterType: "leaky", Config: cfg}}, Security: bearer}
	}
	ftp := func(pc *pb.ProviderConfig, set func(*pb.ProviderConfig, string)) *pb.ProviderConfig {
		c := proto.Clone(pc).(*pb.ProviderConfig)
		set(c, "ftp://"+secURLUser+":"+secURLPass+"@"+addr+"/x"+query)
		return c
	}
	// The pushgateway exporter refuses a query string: user info only, so that it starts (and logs its endpoint).
	pushgw := prom(&pb.PrometheusSettings{PushGatewayUrl: secretURL, JobName: "j", Headers: map[string]string{"X-Api-Key": secHeader}}, bearer)
	rw := prom(&pb.PrometheusSettings{RemoteWriteUrl: secretURL + "/api/v1/write" + query, Headers: map[string]string{"X-Api-Key": secHeader}}, basic)
	scrape := prom(&pb.PrometheusSettings{ScrapeEndpoint: closedAddr(t), Headers: map[string]string{"X-Api-Key": secHeader}}, bearer)
	grpc := otel(addr, pb.OtlpProtocol_OTLP_PROTOCOL_GRPC, bearer)
	http := otel(secretURL+query, pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_PROTOBUF, basic)
	statsd := &pb.ProviderConfig{ProviderId: "p", Type: pb.ProviderType_PROVIDER_TYPE_STATSD,
		Settings: &pb.ProviderSettings{Statsd: &pb.StatsdSettings{Address: addr}}, Security: bearer, Retry: noRetry}
	setOTel := func(c *pb.ProviderConfig, v string) { c.Settings.Opentelemetry.Endpoint = v }
	return []struct {
		name    string
		pc      *pb.ProviderConfig
		broken  *pb.ProviderConfig
		wantLog string
	}{
		{"prometheus push gateway", pushgw, ftp(pushgw, func(c *pb.ProviderConfig, v string) { c.Settings.Prometheus.PushGatewayUrl = v }), "Pushgateway exporter started"},
		{"prometheus remote write", rw, ftp(rw, func(c *pb.ProviderConfig, v string) { c.Settings.Prometheus.RemoteWriteUrl = v }), ""},
		{"prometheus scrape endpoint", scrape, nil, ""},
		{"opentelemetry grpc", grpc, ftp(grpc, setOTel), ""},
		{"opentelemetry http", http, ftp(http, setOTel), ""},
		{"statsd", statsd, nil, ""},
		{"custom with nested tls, headers and auth", leaky(false), leaky(true), "starting"},
	}
}

// Every provider type's secrets, through every output: Create (plain, dry
// run, restore from a backup), Update (validate only, applied), List,
// GetProviderStats (last error, health history), Delete, error messages
// (validation and exporter build errors), and every log line of the engine
// and of the runtime exporters. The secrets stay in storage, and a config
// read back with placeholders keeps them.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	for _, tc := range secretCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			core, logs := observer.New(zapcore.DebugLevel)
			set := Settings{TelemetrySettings: componenttest.NewNopTelemetrySettings(), MaxVersions: 5, MaxBackups: 10}
			set.Logger = zap.New(core)
			e := NewEngine(set)
			host := newTestHost(pushgatewayexporter.NewFactory(), statsdexporter.NewFactory(), leakyFactory())
			for _, f := range distribution().factories {
				host.factories[f.Type()] = f
			}
			store := newMemStorage()
			require.NoError(t, e.Start(ctx, host, store))
			t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })

			var outputs []string
			out := func(what string, m proto.Message, err error) {
				t.Helper()
				if err != nil {
					outputs = append(outputs, what+" error: "+err.Error())
					var pe *PolicyError
					require.False(t, errors.As(err, &pe), "%s: %v", what, err)
				}
				if m != nil && m.ProtoReflect().IsValid() {
					js, jerr := protojson.Marshal(m)
					require.NoError(t, jerr)
					outputs = append(outputs, what+": "+string(js))
				}
			}
			present := secretsIn(tc.pc)
			require.NotEmpty(t, present, "the case carries secrets")

			created, err := e.Create(ctx, &pb.CreateProviderRequest{Config: tc.pc, AutoStart: true})
			require.NoError(t, err)
			out("create", created, nil)
			dry := proto.Clone(tc.pc).(*pb.ProviderConfig)
			dry.ProviderId = "dry"
			resp, err := e.Create(ctx, &pb.CreateProviderRequest{Config: dry, DryRun: true})
			out("dry run", resp, err)
			if tc.broken != nil {
				broken := proto.Clone(tc.broken).(*pb.ProviderConfig)
				broken.ProviderId = "broken"
				resp, err := e.Create(ctx, &pb.CreateProviderRequest{Config: broken, ValidateConfig: true, AutoStart: true})
				require.Error(t, err)
				out("broken validated", resp, err)
				resp, err = e.Create(ctx, &pb.CreateProviderRequest{Config: broken, AutoStart: true})
				out("broken created", resp, err)
			}

			for i := range 20 {
				require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("load", i*5, 5)))
			}
			if created.GetProvider().GetState() == pb.ProviderState_PROVIDER_STATE_RUNNING && tc.pc.GetType() != pb.ProviderType_PROVIDER_TYPE_STATSD &&
				tc.pc.GetSettings().GetPrometheus().GetScrapeEndpoint() == "" {
				eventually(t, func() bool {
					st, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p"})
					return err == nil && st.GetStats().GetExportErrors() > 0
				}, "the exports fail (nothing listens)")
			}
			stats, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p", IncludeHealthHistory: true, IncludeTopMetrics: true})
			out("stats", stats, err)
			list, err := e.List(ctx, &pb.ListProvidersRequest{})
			out("list", list, err)

			// The redacted config sent back keeps the stored secrets.
			read := list.GetProviders()[0].GetConfig()
			upd, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: read, ValidateOnly: true})
			out("update validate_only", upd, err)
			read.Name = "renamed"
			upd, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: read, Backup: true,
				Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE, DrainTimeout: durationpb.New(time.Second)})
			out("update", upd, err)
			e.mu.Lock()
			stored := proto.Clone(e.providers["p"].cfg).(*pb.ProviderConfig)
			e.mu.Unlock()
			stored.Name = tc.pc.GetName()
			assert.True(t, proto.Equal(tc.pc, stored), "the stored config keeps its secrets:\n%v\n%v", tc.pc, stored)

			del, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", Backup: true, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
			out("delete", del, err)
			require.NotEmpty(t, del.GetBackupId())
			restored, err := e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), AutoStart: true})
			out("restore", restored, err)

			// Storage keeps the secrets (a restart needs them).
			var persisted strings.Builder
			for _, k := range store.keys() {
				v, _ := store.Get(ctx, k)
				persisted.Write(v)
			}
			assert.Contains(t, persisted.String(), present[0])

			for _, ent := range logs.All() {
				line := ent.Message
				for k, v := range ent.ContextMap() {
					line += fmt.Sprintf(" %s=%v", k, v)
				}
				outputs = append(outputs, "log: "+line)
			}
			require.NotEmpty(t, logs.All())
			if tc.wantLog != "" {
				assert.NotEmpty(t, logs.FilterMessage(tc.wantLog).All(), "the exporter logged %q", tc.wantLog)
			}
			assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, created.GetProvider().GetState(), created.GetProvider().GetLastError())
			for _, o := range outputs {
				for _, s := range allSecrets {
					assert.NotContains(t, o, s)
				}
			}
		})
	}
}

// secretsIn returns the test secrets pc carries.
func secretsIn(pc *pb.ProviderConfig) []string {
	js, _ := protojson.Marshal(pc)
	var out []string
	for _, s := range allSecrets {
		if strings.Contains(string(js), s) {
			out = append(out, s)
		}
	}
	return out
}

// publicFields are the string fields of ProviderConfig that carry no
// secret; with secretFields they classify every string field.
var publicFields = map[string]bool{
	"provider_id": true, "name": true, "description": true,
	"settings.prometheus.job_name": true, "settings.prometheus.namespace": true,
	"settings.prometheus.grouping_labels": true, "settings.prometheus.external_labels": true,
	"settings.opentelemetry.compression": true,
	"settings.statsd.prefix":             true,
	"settings.custom.exporter_type":      true,
	"filter.names":                       true, "filter.exclude_names": true, "filter.name_regex": true,
	"filter.label_matchers.name": true, "filter.label_matchers.value": true,
	"tags":                 true,
	"security.tls.ca_file": true, "security.tls.cert_file": true, "security.tls.key_file": true,
	"security.tls.server_name": true, "security.basic_auth.username": true, "security.authenticator": true,
	"failover.failover_provider_id": true,
}

// Every string field (and string map) of ProviderConfig is either a secret
// in secretFields or known to be public: a new field must be classified.
func TestSecretSchemaComplete(t *testing.T) {
	t.Parallel()
	secret := map[string]bool{}
	for _, f := range secretFields {
		secret[f.path] = true
	}
	var walk func(prefix string, md protoreflect.MessageDescriptor, depth int)
	walk = func(prefix string, md protoreflect.MessageDescriptor, depth int) {
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			path := prefix + string(fd.Name())
			switch {
			case secret[path]:
				continue
			case fd.IsMap():
				if fd.MapValue().Kind() == protoreflect.StringKind {
					assert.True(t, publicFields[path], "string map %s is not classified as secret or public", path)
				}
			case fd.Kind() == protoreflect.StringKind:
				assert.True(t, publicFields[path], "string field %s is not classified as secret or public", path)
			case fd.Kind() == protoreflect.MessageKind && depth < 5 && !strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf"):
				walk(path+".", fd.Message(), depth+1)
			}
		}
	}
	walk("", (&pb.ProviderConfig{}).ProtoReflect().Descriptor(), 0)
	for _, f := range secretFields {
		assert.NoError(t, secretPathError(f.path))
	}
	assert.Error(t, secretPathError("security.no_such_field"), "a path the proto does not have is found")
}

// The scrubbing logger removes secrets from messages and every kind of field.
func TestScrubLogger(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	s := newScrubber(&pb.ProviderConfig{Security: &pb.SecurityConfig{BearerToken: secBearer}})
	l := scrubLogger(zap.New(core), s).With(zap.String("with", secBearer))
	l.Debug("below the level " + secBearer)
	l.Info("msg "+secBearer, zap.Error(errors.New("e "+secBearer)), zap.Any("m", map[string]string{"k": secBearer}),
		zap.Stringer("s", stringer(secBearer)), zap.Int("n", 7), zap.Namespace("ns"), zap.String("in", secBearer))
	require.Equal(t, 1, logs.Len(), "levels are kept")
	ent := logs.All()[0]
	line := ent.Message + fmt.Sprint(ent.ContextMap())
	assert.NotContains(t, line, secBearer)
	assert.Contains(t, line, "REDACTED")
	assert.EqualValues(t, 7, ent.ContextMap()["n"])
}

// A config with one long, repetitive secret (a header value of 64 KiB of
// one letter) is scrubbed like any other: every occurrence, and nothing
// else. (strings.NewReplacer took 3 s to build for it; see oneSecret.)
func TestScrubOneLongSecret(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("h", 64<<10)
	pc := &pb.ProviderConfig{Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY, Settings: &pb.ProviderSettings{
		Opentelemetry: &pb.OpenTelemetrySettings{Endpoint: "127.0.0.1:4317", Headers: map[string]string{"X-Key": long}},
	}}
	require.Equal(t, []string{long}, secretValues(pc), "one secret")
	s := newScrubber(pc)
	assert.Equal(t, "a REDACTED b REDACTED hhh", s.str("a "+long+" b "+long+" hhh"))
	assert.Equal(t, "REDACTEDh", s.str(long+"h"), "leftmost match")
	err := s.err(&ValidationError{Issues: []*pb.ValidationIssue{issue("f", "c", "value "+long, "")}})
	assert.Equal(t, "f: value REDACTED", err.Error())
}
