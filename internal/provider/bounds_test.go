package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// manyTags returns n tags k0..k(n-1) with short values.
func manyTags(n int) map[string]string {
	tags := make(map[string]string, n)
	for i := range n {
		tags[fmt.Sprintf("k%d", i)] = "v"
	}
	return tags
}

// The free-text fields of a provider are bounded: at the limit accepted,
// one byte (or one tag) over refused, naming the field, the size, the limit
// and the fix.
func TestValidateBoundsFreeText(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		edit  func(pc *pb.ProviderConfig)
		field string // empty: accepted
		want  []string
	}{
		{name: "description at the limit", edit: func(pc *pb.ProviderConfig) { pc.Description = long(maxDescriptionBytes) }},
		{
			name: "description one byte over", edit: func(pc *pb.ProviderConfig) { pc.Description = long(maxDescriptionBytes + 1) },
			field: "config.description", want: []string{"4097 bytes", "at most 4096", "shorten it"},
		},
		{name: "64 tags", edit: func(pc *pb.ProviderConfig) { pc.Tags = manyTags(maxTags) }},
		{
			name: "65 tags", edit: func(pc *pb.ProviderConfig) { pc.Tags = manyTags(maxTags + 1) },
			field: "config.tags", want: []string{"65 tags", "at most 64", "drop some tags"},
		},
		{name: "tag key at the limit", edit: func(pc *pb.ProviderConfig) { pc.Tags = map[string]string{long(maxTagKeyBytes): "v"} }},
		{
			name: "tag key one byte over", edit: func(pc *pb.ProviderConfig) { pc.Tags = map[string]string{long(maxTagKeyBytes + 1): "v"} },
			field: `config.tags["` + long(64) + `"]`, want: []string{"tag key has 129 bytes", "at most 128", "shorten the key"},
		},
		{name: "tag value at the limit", edit: func(pc *pb.ProviderConfig) { pc.Tags = map[string]string{"team": long(maxTagValueBytes)} }},
		{
			name: "tag value one byte over", edit: func(pc *pb.ProviderConfig) { pc.Tags = map[string]string{"team": long(maxTagValueBytes + 1)} },
			field: `config.tags["team"]`, want: []string{"tag value has 1025 bytes", "at most 1024", "shorten the value"},
		},
		{
			name: "empty tag key", edit: func(pc *pb.ProviderConfig) { pc.Tags = map[string]string{"": "v"} },
			field: "config.tags", want: []string{"must not be empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pc := sinkProvider("p", "s")
			tt.edit(pc)
			errs := errorIssues(validateConfig(pc))
			if tt.field == "" {
				require.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			assert.Equal(t, tt.field, errs[0].GetField())
			for _, w := range tt.want {
				assert.Contains(t, errs[0].GetMessage(), w)
			}
		})
	}
}

// Tag issues come in key order, whatever the map order.
func TestValidateTagsInKeyOrder(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", maxTagValueBytes+1)
	iss := validateTags(map[string]string{"c": long, "a": long, "b": long})
	require.Len(t, iss, 3)
	for i, k := range []string{"a", "b", "c"} {
		assert.Equal(t, `config.tags["`+k+`"]`, iss[i].GetField())
	}
}

// Create, a full update and a masked update all refuse an oversized
// description or tag; nothing changes.
func TestCreateAndUpdateRefuseOversizedText(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	_, name := newSink(t, "a")
	oversized := func() *pb.ProviderConfig {
		pc := sinkProvider("p", name)
		pc.Description = strings.Repeat("d", maxDescriptionBytes+1)
		return pc
	}
	_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: oversized(), AutoStart: true})
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Contains(t, ve.Error(), "config.description: description has 4097 bytes, at most 4096 are allowed")

	create(t, e, sinkProvider("p", name))
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: func() *pb.ProviderConfig {
		pc := oversized()
		pc.ProviderId = ""
		return pc
	}()})
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "config.description", ve.Issues[0].GetField())

	_, err = e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: &pb.ProviderConfig{Tags: map[string]string{"team": strings.Repeat("t", maxTagValueBytes+1)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"tags"}},
	})
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, `config.tags["team"]`, ve.Issues[0].GetField())

	got, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.Len(t, got.GetProviders(), 1)
	assert.Empty(t, got.GetProviders()[0].GetConfig().GetDescription())
	assert.Empty(t, got.GetProviders()[0].GetConfig().GetTags())
	assert.Equal(t, uint64(1), got.GetProviders()[0].GetVersion())
}

// A backup whose config is over the bounds (written before them, or edited)
// is refused on restore naming the field; nothing is created.
func TestRestoreRefusesBackupOverBounds(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), newMemStorage())
	_, name := newSink(t, "a")
	create(t, e, sinkProvider("p", name))
	del, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", Backup: true, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)
	require.NotEmpty(t, del.GetBackupId())

	e.mu.Lock()
	for _, v := range e.backups[del.GetBackupId()].Record.Versions {
		pc, err := v.config()
		require.NoError(t, err)
		pc.Tags = map[string]string{"team": strings.Repeat("t", maxTagValueBytes+1)}
		v.cfg = pc
	}
	e.mu.Unlock()

	_, err = e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), AutoStart: true})
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, `config.tags["team"]: tag value has 1025 bytes, at most 1024 are allowed; shorten the value`, ve.Error())
	got, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Empty(t, got.GetProviders())
}

// padTo calls set with the longest padding that makes size() at most n,
// and requires it to be exactly n.
func padTo(t *testing.T, n int, set func(pad int), size func() int) {
	t.Helper()
	set(0)
	for pad := n - size(); pad >= 0; pad-- {
		set(pad)
		if size() <= n {
			break
		}
	}
	require.Equal(t, n, size())
}

// paddedConfig returns sinkProvider's exporter config with an "endpoint"
// (which the sink does not use) that makes it exactly n bytes encoded.
func paddedConfig(t *testing.T, sink string, n int) *structpb.Struct {
	t.Helper()
	cfg, err := structpb.NewStruct(map[string]any{"name": sink})
	require.NoError(t, err)
	padTo(t, n, func(pad int) { cfg.Fields["endpoint"] = structpb.NewStringValue(strings.Repeat("p", pad)) },
		func() int { return proto.Size(cfg) })
	return cfg
}

// nested returns a map nested levels deep ({"n": {"n": ... {"v": 1}}}), or
// with list, a list of lists ([[... [1]]]).
func nested(levels int, list bool) *structpb.Value {
	v := structpb.NewNumberValue(1)
	for range levels {
		if list {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		} else if v.GetStructValue() == nil && v.GetListValue() == nil {
			v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"v": v}})
		} else {
			v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"n": v}})
		}
	}
	return v
}

// The settings of the provider's type (for a custom exporter, its config)
// are bounded: at most 64 KiB encoded, a custom config at most 32 levels of
// maps and lists deep. At the limit accepted, one over refused naming the
// field path, the size or depth, the limit and the fix.
func TestValidateBoundsSettings(t *testing.T) {
	t.Parallel()
	// otel makes pc an OpenTelemetry provider whose settings are n bytes encoded.
	otel := func(t *testing.T, pc *pb.ProviderConfig, n int) {
		o := &pb.OpenTelemetrySettings{Endpoint: "127.0.0.1:4317"}
		pc.Type, pc.Settings = pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY, &pb.ProviderSettings{Opentelemetry: o}
		padTo(t, n, func(pad int) { o.Headers = map[string]string{"X-Pad": strings.Repeat("h", pad)} },
			func() int { return proto.Size(o) })
	}
	prom := func(pc *pb.ProviderConfig) {
		pc.Type = pb.ProviderType_PROVIDER_TYPE_PROMETHEUS
		pc.Settings = &pb.ProviderSettings{Prometheus: &pb.PrometheusSettings{
			RemoteWriteUrl: "http://127.0.0.1:9090/api/v1/write",
			ExternalLabels: map[string]string{"pad": strings.Repeat("e", maxSettingsBytes)},
		}}
	}
	tests := []struct {
		name  string
		edit  func(t *testing.T, pc *pb.ProviderConfig)
		field string // empty: accepted
		want  []string
	}{
		{name: "custom config at the limit", edit: func(t *testing.T, pc *pb.ProviderConfig) {
			pc.Settings.Custom.Config = paddedConfig(t, "s", maxSettingsBytes)
		}},
		{
			name: "custom config one byte over", edit: func(t *testing.T, pc *pb.ProviderConfig) {
				pc.Settings.Custom.Config = paddedConfig(t, "s", maxSettingsBytes+1)
			},
			field: "config.settings.custom.config",
			want:  []string{"the exporter config has 65537 bytes encoded, at most 65536 are allowed", "shorten it"},
		},
		{
			// a large config is not walked for other checks: only its size is reported
			name: "custom config over, with a negative value", edit: func(t *testing.T, pc *pb.ProviderConfig) {
				pc.Settings.Custom.Config = paddedConfig(t, "s", maxSettingsBytes+1)
				pc.Settings.Custom.Config.Fields["timeout"] = structpb.NewNumberValue(-1)
			},
			field: "config.settings.custom.config", want: []string{"bytes encoded"},
		},
		{name: "custom config 32 levels deep", edit: func(_ *testing.T, pc *pb.ProviderConfig) {
			pc.Settings.Custom.Config.Fields["n"] = nested(maxConfigDepth-1, false)
		}},
		{
			name: "custom config 33 levels deep", edit: func(_ *testing.T, pc *pb.ProviderConfig) {
				pc.Settings.Custom.Config.Fields["n"] = nested(maxConfigDepth, false)
			},
			field: "config.settings.custom.config" + strings.Repeat(".n", maxConfigDepth),
			want:  []string{"nests more than 32 levels of maps and lists here; flatten it"},
		},
		{name: "custom config lists 32 levels deep", edit: func(_ *testing.T, pc *pb.ProviderConfig) {
			pc.Settings.Custom.Config.Fields["l"] = nested(maxConfigDepth-1, true)
		}},
		{
			name: "custom config lists 33 levels deep", edit: func(_ *testing.T, pc *pb.ProviderConfig) {
				pc.Settings.Custom.Config.Fields["l"] = nested(maxConfigDepth, true)
			},
			field: "config.settings.custom.config.l" + strings.Repeat("[0]", maxConfigDepth-1),
			want:  []string{"more than 32 levels"},
		},
		{
			name: "deep under a long key", edit: func(_ *testing.T, pc *pb.ProviderConfig) {
				pc.Settings.Custom.Config.Fields[strings.Repeat("k", 100)] = nested(maxConfigDepth, false)
			},
			field: "config.settings.custom.config." + strings.Repeat("k", 64) + "…" + strings.Repeat(".n", maxConfigDepth-1),
			want:  []string{"more than 32 levels"},
		},
		{name: "opentelemetry settings at the limit", edit: func(t *testing.T, pc *pb.ProviderConfig) { otel(t, pc, maxSettingsBytes) }},
		{
			name: "opentelemetry settings one byte over", edit: func(t *testing.T, pc *pb.ProviderConfig) { otel(t, pc, maxSettingsBytes+1) },
			field: "config.settings.opentelemetry",
			want:  []string{"settings.opentelemetry has 65537 bytes encoded, at most 65536 are allowed; shorten the headers"},
		},
		{
			name: "prometheus settings over", edit: func(_ *testing.T, pc *pb.ProviderConfig) { prom(pc) },
			field: "config.settings.prometheus",
			want:  []string{"settings.prometheus has 655", "at most 65536 are allowed; shorten the headers, grouping_labels and external_labels"},
		},
		{
			name: "statsd settings over", edit: func(_ *testing.T, pc *pb.ProviderConfig) {
				pc.Type = pb.ProviderType_PROVIDER_TYPE_STATSD
				pc.Settings = &pb.ProviderSettings{Statsd: &pb.StatsdSettings{Address: "127.0.0.1:8125", Prefix: strings.Repeat("s", maxSettingsBytes)}}
			},
			field: "config.settings.statsd", want: []string{"at most 65536 are allowed; shorten the address and prefix"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pc := sinkProvider("p", "s")
			tt.edit(t, pc)
			errs := errorIssues(validateConfig(pc))
			if tt.field == "" {
				require.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1, "%v", errs)
			assert.Equal(t, tt.field, errs[0].GetField())
			for _, w := range tt.want {
				assert.Contains(t, errs[0].GetMessage(), w)
			}
		})
	}
}

// Create, a full update, a masked update, a rollback to a version stored
// before the bounds and a restore of such a backup all refuse settings over
// the bounds, naming the field; nothing changes.
func TestEveryPathRefusesSettingsOverBounds(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), newMemStorage())
	_, name := newSink(t, "a")
	oversized := func(id string) *pb.ProviderConfig {
		pc := sinkProvider(id, name)
		pc.Settings.Custom.Config = paddedConfig(t, name, maxSettingsBytes+1)
		return pc
	}
	refused := func(err error, field string) {
		t.Helper()
		var ve *ValidationError
		require.True(t, errors.As(err, &ve), "%v", err)
		require.Len(t, ve.Issues, 1, "%v", ve.Issues)
		assert.Equal(t, field, ve.Issues[0].GetField())
	}
	_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: oversized("p"), AutoStart: true})
	refused(err, "config.settings.custom.config")

	create(t, e, sinkProvider("p", name))
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: oversized("")})
	refused(err, "config.settings.custom.config")
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: oversized(""), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"settings.custom.config"}},
	})
	refused(err, "config.settings.custom.config")
	deep := sinkProvider("", name)
	deep.Settings.Custom.Config.Fields["n"] = nested(maxConfigDepth, false)
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: deep, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"settings"}},
	})
	refused(err, "config.settings.custom.config"+strings.Repeat(".n", maxConfigDepth))

	// version 2, then version 1 made oversized (as if stored before the bounds)
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: withName(sinkProvider("", name), "two")})
	require.NoError(t, err)
	e.mu.Lock()
	e.providers["p"].rec.find(1).cfg = oversized("p")
	e.mu.Unlock()
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", RollbackToVersion: 1})
	refused(err, "config.settings.custom.config")

	got, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.Len(t, got.GetProviders(), 1)
	assert.Equal(t, uint64(2), got.GetProviders()[0].GetVersion(), "no refused change was applied")
	assert.Len(t, got.GetProviders()[0].GetConfig().GetSettings().GetCustom().GetConfig().GetFields(), 1)

	// a backup whose config nests too deep is refused on restore
	del, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", Backup: true, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)
	e.mu.Lock()
	for _, v := range e.backups[del.GetBackupId()].Record.Versions {
		pc, err := v.config()
		require.NoError(t, err)
		pc.Settings.Custom.Config.Fields["n"] = nested(maxConfigDepth, false)
		v.cfg = pc
	}
	e.mu.Unlock()
	_, err = e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), AutoStart: true})
	refused(err, "config.settings.custom.config"+strings.Repeat(".n", maxConfigDepth))
	got, err = e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Empty(t, got.GetProviders())
}

// TestStoredRecordsAreNotHTMLEscaped: '<', '>' and '&' are stored as sent,
// not as six-byte escapes, and read back the same.
func TestStoredRecordsAreNotHTMLEscaped(t *testing.T) {
	desc := strings.Repeat("<&>", 1000)
	b, err := marshalRecord(map[string]string{"description": desc})
	require.NoError(t, err)
	require.Less(t, len(b), len(desc)+64)
	var back map[string]string
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, desc, back["description"])
}

// The strings of config.security are bounded (the token and password at 16
// KiB, the others at 4 KiB): at the limit accepted, one byte over refused
// naming the field, the size, the limit and the fix, never the value.
func TestValidateBoundsSecurity(t *testing.T) {
	t.Parallel()
	secret := func(n int) string { return strings.Repeat("S", n) }
	tests := []struct {
		name  string
		sec   *pb.SecurityConfig
		field string // empty: accepted
		want  string
	}{
		{name: "bearer token at the limit", sec: &pb.SecurityConfig{BearerToken: secret(maxSecretBytes)}},
		{
			name: "bearer token one byte over", sec: &pb.SecurityConfig{BearerToken: secret(maxSecretBytes + 1)},
			field: "config.security.bearer_token", want: "bearer_token has 16385 bytes, at most 16384 are allowed; send the token itself",
		},
		{name: "password at the limit", sec: &pb.SecurityConfig{BasicAuth: &pb.BasicAuth{Username: "u", Password: secret(maxSecretBytes)}}},
		{
			name: "password one byte over", sec: &pb.SecurityConfig{BasicAuth: &pb.BasicAuth{Username: "u", Password: secret(maxSecretBytes + 1)}},
			field: "config.security.basic_auth.password", want: "password has 16385 bytes, at most 16384 are allowed; use a shorter password",
		},
		{name: "username at the limit", sec: &pb.SecurityConfig{BasicAuth: &pb.BasicAuth{Username: secret(maxSecurityTextBytes), Password: "p"}}},
		{
			name: "username one byte over", sec: &pb.SecurityConfig{BasicAuth: &pb.BasicAuth{Username: secret(maxSecurityTextBytes + 1), Password: "p"}},
			field: "config.security.basic_auth.username", want: "username has 4097 bytes, at most 4096 are allowed; shorten the user name",
		},
		{name: "ca_file at the limit", sec: &pb.SecurityConfig{Tls: &pb.TlsSettings{CaFile: secret(maxSecurityTextBytes)}}},
		{
			name: "ca_file one byte over", sec: &pb.SecurityConfig{Tls: &pb.TlsSettings{CaFile: secret(maxSecurityTextBytes + 1)}},
			field: "config.security.tls.ca_file", want: "tls.ca_file has 4097 bytes, at most 4096 are allowed; use a shorter path to the file",
		},
		{
			name: "cert_file one byte over", sec: &pb.SecurityConfig{Tls: &pb.TlsSettings{CertFile: secret(maxSecurityTextBytes + 1), KeyFile: "k"}},
			field: "config.security.tls.cert_file", want: "tls.cert_file has 4097 bytes",
		},
		{
			name: "key_file one byte over", sec: &pb.SecurityConfig{Tls: &pb.TlsSettings{CertFile: "c", KeyFile: secret(maxSecurityTextBytes + 1)}},
			field: "config.security.tls.key_file", want: "tls.key_file has 4097 bytes",
		},
		{name: "server_name at the limit", sec: &pb.SecurityConfig{Tls: &pb.TlsSettings{ServerName: secret(maxSecurityTextBytes)}}},
		{
			name: "server_name one byte over", sec: &pb.SecurityConfig{Tls: &pb.TlsSettings{ServerName: secret(maxSecurityTextBytes + 1)}},
			field: "config.security.tls.server_name", want: "tls.server_name has 4097 bytes, at most 4096 are allowed; use the server's host name",
		},
		{
			// refused for its size only, not also as a malformed component id
			name: "authenticator one byte over", sec: &pb.SecurityConfig{Authenticator: secret(maxSecurityTextBytes + 1)},
			field: "config.security.authenticator", want: "authenticator has 4097 bytes, at most 4096 are allowed; use the component id of an auth extension",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pc := sinkProvider("p", "s")
			pc.Security = tt.sec
			errs := errorIssues(validateConfig(pc))
			if tt.field == "" {
				require.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1, "%v", errs)
			assert.Equal(t, tt.field, errs[0].GetField())
			assert.Equal(t, "too_long", errs[0].GetCode())
			assert.Contains(t, errs[0].GetMessage(), tt.want)
			assert.NotContains(t, (&ValidationError{Issues: errs}).Error(), "SSSS", "the value is not repeated")
		})
	}
}

// A provider's filter over the bounds of package metricfilter is refused
// naming the field under config.filter, the size, the limit and the fix in
// the message.
func TestValidateBoundsFilter(t *testing.T) {
	t.Parallel()
	names := make([]string, 1001)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	values := []*pb.LabelMatcher{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d", Value: strings.Repeat("v", 4097)}}
	tests := []struct {
		name   string
		filter *pb.MetricFilter
		field  string // empty: accepted
		want   string
	}{
		{name: "1000 names", filter: &pb.MetricFilter{Names: names[:1000]}},
		{
			name: "1001 names", filter: &pb.MetricFilter{Names: names}, field: "config.filter.names",
			want: "1001 entries, at most 1000 are allowed; send at most 1000; match a family of names with a glob (http_*) or name_regex",
		},
		{
			name: "label value over", filter: &pb.MetricFilter{LabelMatchers: values}, field: "config.filter.label_matchers[3].value",
			want: "has 4097 bytes, at most 4096 are allowed; shorten the value; match a family of values with a regex matcher",
		},
		{
			name: "regex program over", filter: &pb.MetricFilter{NameRegex: strings.Repeat(".{1000}", 66)}, field: "config.filter.name_regex",
			want: "compiles to about 66000 regex instructions, 66000 with the filter's other globs and regexes; at most 65536 are allowed together; use smaller repetition counts ({n,m}), fewer alternatives, or a simpler pattern",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pc := sinkProvider("p", "s")
			pc.Filter = tt.filter
			iss := validateConfig(pc)
			if tt.field == "" {
				require.Empty(t, iss)
				_, err := compileFilter(pc.GetFilter())
				require.NoError(t, err)
				return
			}
			require.Len(t, iss, 1, "%v", iss)
			assert.Equal(t, tt.field, iss[0].GetField())
			assert.Equal(t, tt.field+": "+tt.want, (&ValidationError{Issues: iss}).Error())
			_, err := compileFilter(pc.GetFilter())
			require.Error(t, err, "the exporter refuses what validation refuses")
		})
	}
}

// Create, a full update, a masked update, a rollback to a version stored
// before the bounds and a restore of such a backup all refuse an oversized
// bearer token, naming the field and never the token; nothing changes.
func TestEveryPathRefusesSecurityOverBounds(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), newMemStorage())
	_, name := newSink(t, "a")
	token := strings.Repeat("T", maxSecretBytes+1)
	oversized := func(id string) *pb.ProviderConfig {
		pc := sinkProvider(id, name)
		pc.Security = &pb.SecurityConfig{BearerToken: token}
		return pc
	}
	refused := func(err error) {
		t.Helper()
		var ve *ValidationError
		require.True(t, errors.As(err, &ve), "%v", err)
		require.Len(t, ve.Issues, 1, "%v", ve.Issues)
		assert.Equal(t, "config.security.bearer_token", ve.Issues[0].GetField())
		assert.NotContains(t, ve.Error(), "TTTT")
		assert.NotContains(t, ve.Issues[0].GetMessage(), "TTTT")
	}
	_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: oversized("p"), AutoStart: true})
	refused(err)

	create(t, e, sinkProvider("p", name))
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: oversized("")})
	refused(err)
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: oversized(""), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"security.bearer_token"}},
	})
	refused(err)

	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: withName(sinkProvider("", name), "two")})
	require.NoError(t, err)
	e.mu.Lock()
	e.providers["p"].rec.find(1).cfg = oversized("p")
	e.mu.Unlock()
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", RollbackToVersion: 1})
	refused(err)

	got, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.Len(t, got.GetProviders(), 1)
	assert.Equal(t, uint64(2), got.GetProviders()[0].GetVersion(), "no refused change was applied")
	assert.Nil(t, got.GetProviders()[0].GetConfig().GetSecurity())

	del, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", Backup: true, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)
	e.mu.Lock()
	for _, v := range e.backups[del.GetBackupId()].Record.Versions {
		pc, err := v.config()
		require.NoError(t, err)
		pc.Security = &pb.SecurityConfig{BasicAuth: &pb.BasicAuth{Username: "u", Password: token}}
		v.cfg = pc
	}
	e.mu.Unlock()
	_, err = e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), AutoStart: true})
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "config.security.basic_auth.password: basic_auth.password has 16385 bytes, at most 16384 are allowed; use a shorter password, or an authenticator extension", ve.Error())
	got, err = e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Empty(t, got.GetProviders())
}

// errorIssues keeps the issues of severity error.
func errorIssues(issues []*pb.ValidationIssue) []*pb.ValidationIssue {
	var errs []*pb.ValidationIssue
	for _, iss := range issues {
		if iss.GetSeverity() == pb.Severity_SEVERITY_ERROR {
			errs = append(errs, iss)
		}
	}
	return errs
}
