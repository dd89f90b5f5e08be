package registry

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ptr(v float64) *float64 { return &v }

func baseDef() *pb.MetricDefinition {
	return &pb.MetricDefinition{
		Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Unit: "1",
		Labels: []*pb.LabelDefinition{
			{Name: "method", Required: true, AllowedValues: []string{"GET", "POST"}},
			{Name: "path", Pattern: "/[a-z0-9/]*"},
			{Name: "user", MaxCardinality: 2},
			{Name: "region", DefaultValue: "eu"},
		},
		Constraints: &pb.ValueConstraints{NonNegative: true, Max: ptr(1000)},
	}
}

func TestCompatibilityRules(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(d *pb.MetricDefinition)
		breaking bool
		field    string
	}{
		{"add optional label", func(d *pb.MetricDefinition) { d.Labels = append(d.Labels, &pb.LabelDefinition{Name: "zone"}) }, false, "labels[zone]"},
		{"add required label", func(d *pb.MetricDefinition) {
			d.Labels = append(d.Labels, &pb.LabelDefinition{Name: "zone", Required: true})
		}, true, "labels[zone]"},
		{"remove label", func(d *pb.MetricDefinition) { d.Labels = d.Labels[:3] }, true, "labels[region]"},
		{"remove label with undeclared allowed", func(d *pb.MetricDefinition) { d.Labels = d.Labels[:3]; d.AllowUndeclaredLabels = true }, false, "labels[region]"},
		{"optional becomes required", func(d *pb.MetricDefinition) { d.Labels[1].Required = true }, true, "labels[path].required"},
		{"required becomes optional", func(d *pb.MetricDefinition) { d.Labels[0].Required = false }, false, "labels[method].required"},
		{"type change", func(d *pb.MetricDefinition) { d.Type = pb.MetricType_METRIC_TYPE_GAUGE }, true, "type"},
		{"unit change", func(d *pb.MetricDefinition) { d.Unit = "s" }, true, "unit"},
		{"narrow allowed values", func(d *pb.MetricDefinition) { d.Labels[0].AllowedValues = []string{"GET"} }, true, "labels[method].allowed_values"},
		{"widen allowed values", func(d *pb.MetricDefinition) { d.Labels[0].AllowedValues = []string{"GET", "POST", "PUT"} }, false, "labels[method].allowed_values"},
		{"pattern change", func(d *pb.MetricDefinition) { d.Labels[1].Pattern = "/v1/.*" }, true, "labels[path].pattern"},
		{"pattern removed", func(d *pb.MetricDefinition) { d.Labels[1].Pattern = "" }, false, "labels[path].pattern"},
		{"lower max cardinality", func(d *pb.MetricDefinition) { d.Labels[2].MaxCardinality = 1 }, true, "labels[user].max_cardinality"},
		{"raise max cardinality", func(d *pb.MetricDefinition) { d.Labels[2].MaxCardinality = 10 }, false, "labels[user].max_cardinality"},
		{"raise min", func(d *pb.MetricDefinition) { d.Constraints.Min = ptr(1) }, true, "constraints.min"},
		{"lower max", func(d *pb.MetricDefinition) { d.Constraints.Max = ptr(10) }, true, "constraints.max"},
		{"remove max", func(d *pb.MetricDefinition) { d.Constraints.Max = nil }, false, "constraints.max"},
		{"drop non-negative", func(d *pb.MetricDefinition) { d.Constraints.NonNegative = false }, false, "constraints.non_negative"},
		{"forbid undeclared", func(d *pb.MetricDefinition) { d.AllowUndeclaredLabels = true }, false, "allow_undeclared_labels"},
		{"description", func(d *pb.MetricDefinition) { d.Description = "requests" }, false, "description"},
		{"owner", func(d *pb.MetricDefinition) { d.Owner = "team-a" }, false, "owner"},
		{"buckets", func(d *pb.MetricDefinition) { d.HistogramBuckets = []float64{1, 2} }, true, "histogram_buckets"},
		{"lower max series", func(d *pb.MetricDefinition) { d.MaxSeries = 10 }, true, "max_series"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := proto.Clone(baseDef()).(*pb.MetricDefinition)
			tt.mutate(next)
			changes := Compare(baseDef(), next)
			var found *pb.SchemaChange
			for _, c := range changes {
				if c.Field == tt.field {
					found = c
				}
			}
			require.NotNil(t, found, "changes: %v", changes)
			assert.Equal(t, tt.breaking, found.Breaking, found.Description)
			assert.Equal(t, tt.breaking, Breaking(changes))
		})
	}
}

func openTest(t *testing.T, mode Mode) (*Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	kv, err := OpenBolt(path)
	require.NoError(t, err)
	r, err := Open(context.Background(), kv, mode)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, path
}

func TestValidationRules(t *testing.T) {
	r, _ := openTest(t, ModeOpen)
	_, err := r.Register(context.Background(), baseDef(), RegisterOptions{})
	require.NoError(t, err)
	rec := func(mut func(m *pb.MetricData)) *pb.MetricData {
		m := &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1,
			Labels: map[string]string{"method": "GET", "path": "/api"}}
		mut(m)
		return m
	}
	tests := []struct {
		name  string
		m     *pb.MetricData
		code  string
		field string
		msg   string
	}{
		{"ok", rec(func(*pb.MetricData) {}), "", "", ""},
		{"type", rec(func(m *pb.MetricData) { m.Type = pb.MetricType_METRIC_TYPE_GAUGE }), "schema_type_mismatch", ".type", `registered as a counter (schema v1)`},
		{"required", rec(func(m *pb.MetricData) { delete(m.Labels, "method") }), "schema_missing_label", ".labels", `requires label "method"`},
		{"undeclared", rec(func(m *pb.MetricData) { m.Labels["host"] = "a" }), "schema_undeclared_label", `.labels["host"]`, `label "host" is not declared`},
		{"allowed", rec(func(m *pb.MetricData) { m.Labels["method"] = "FETCH" }), "schema_value_not_allowed", `.labels["method"]`, `"FETCH" is not one of GET, POST`},
		{"pattern", rec(func(m *pb.MetricData) { m.Labels["path"] = "/API" }), "schema_pattern_mismatch", `.labels["path"]`, `does not match "/[a-z0-9/]*"`},
		{"negative", rec(func(m *pb.MetricData) { m.Value = -1 }), "schema_negative", ".value", "declared non_negative"},
		{"max", rec(func(m *pb.MetricData) { m.Value = 5000 }), "schema_above_max", ".value", "above its maximum 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := r.Validate(tt.m)
			if tt.code == "" {
				require.Nil(t, iss)
				assert.Equal(t, "eu", tt.m.Labels["region"], "the default of an optional label is filled in")
				return
			}
			require.NotNil(t, iss)
			assert.Equal(t, tt.code, iss.Code)
			assert.Equal(t, tt.field, iss.Field)
			assert.Contains(t, iss.Message, tt.msg)
			assert.NotEmpty(t, iss.Suggestion)
		})
	}
	// cardinality: two values of user are fine, a third is refused
	for _, u := range []string{"a", "b", "a"} {
		require.Nil(t, r.Validate(rec(func(m *pb.MetricData) { m.Labels["user"] = u })))
	}
	iss := r.Validate(rec(func(m *pb.MetricData) { m.Labels["user"] = "c" }))
	require.NotNil(t, iss)
	assert.Equal(t, "schema_cardinality_limit", iss.Code)

	n, last := r.Rejections("http_requests_total")
	assert.Equal(t, int64(8), n)
	assert.Contains(t, last, "max_cardinality")

	// NaN needs allow_nan
	g := &pb.MetricDefinition{Name: "ratio", Type: pb.MetricType_METRIC_TYPE_GAUGE, Constraints: &pb.ValueConstraints{AllowNan: true}}
	_, err = r.Register(context.Background(), g, RegisterOptions{})
	require.NoError(t, err)
	assert.True(t, r.AllowsNaN("ratio"))
	assert.Nil(t, r.Validate(&pb.MetricData{Name: "ratio", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: math.NaN()}))
}

func TestStrictMode(t *testing.T) {
	r, _ := openTest(t, ModeStrict)
	iss := r.Validate(&pb.MetricData{Name: "unknown", Type: pb.MetricType_METRIC_TYPE_GAUGE})
	require.NotNil(t, iss)
	assert.Equal(t, "unregistered_metric", iss.Code)
	assert.Contains(t, iss.Message, "registry is strict")
	_, err := r.Register(context.Background(), &pb.MetricDefinition{Name: "unknown", Type: pb.MetricType_METRIC_TYPE_GAUGE, AllowUndeclaredLabels: true}, RegisterOptions{})
	require.NoError(t, err)
	assert.Nil(t, r.Validate(&pb.MetricData{Name: "unknown", Type: pb.MetricType_METRIC_TYPE_GAUGE}))
}

func TestVersionsBreakingDryRunAndPersistence(t *testing.T) {
	ctx := context.Background()
	r, path := openTest(t, ModeOpen)
	res, err := r.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Equal(t, uint64(1), res.Version)

	same, err := r.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)
	assert.True(t, same.Unchanged)
	assert.Equal(t, uint64(1), same.Version)

	compatible := baseDef()
	compatible.Labels = append(compatible.Labels, &pb.LabelDefinition{Name: "zone"})
	dry, err := r.Register(ctx, compatible, RegisterOptions{DryRun: true})
	require.NoError(t, err)
	assert.True(t, dry.Compatible)
	assert.Equal(t, uint64(2), dry.Version)
	e, _ := r.Get("http_requests_total")
	assert.Len(t, e.Versions, 1, "a dry run saves nothing")

	res, err = r.Register(ctx, compatible, RegisterOptions{})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Version)

	breaking := proto.Clone(compatible).(*pb.MetricDefinition)
	breaking.Type = pb.MetricType_METRIC_TYPE_GAUGE
	res, err = r.Register(ctx, breaking, RegisterOptions{})
	require.ErrorIs(t, err, ErrBreaking)
	assert.False(t, res.Compatible)
	_, err = r.Register(ctx, breaking, RegisterOptions{AllowBreaking: true})
	require.NoError(t, err)

	_, err = r.Register(ctx, &pb.MetricDefinition{Name: "bad name", Labels: []*pb.LabelDefinition{{Name: "__x"}}}, RegisterOptions{})
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Len(t, inv.Issues, 3)

	_, err = r.Unregister(ctx, "http_requests_total", time.Now().Add(time.Hour))
	require.NoError(t, err)
	_, err = r.Register(ctx, &pb.MetricDefinition{Name: "kept", Type: pb.MetricType_METRIC_TYPE_GAUGE}, RegisterOptions{})
	require.NoError(t, err)
	require.NoError(t, r.Close(ctx))

	kv, err := OpenBolt(path)
	require.NoError(t, err)
	r2, err := Open(ctx, kv, ModeOpen)
	require.NoError(t, err)
	defer r2.Close(ctx)
	_, ok := r2.Get("http_requests_total")
	assert.False(t, ok, "unregistration survives a restart")
	k, ok := r2.Get("kept")
	require.True(t, ok, "definitions survive a restart")
	assert.Equal(t, uint64(1), k.Current().Version)
	require.Len(t, r2.Pending(), 1, "scheduled deletions survive a restart")
	due, err := r2.DueDeletions(ctx, time.Now().Add(2*time.Hour))
	require.NoError(t, err)
	assert.Len(t, due, 1)
	assert.Empty(t, r2.Pending())
}

func TestBackupEntryRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, _ := openTest(t, ModeOpen)
	_, err := r.Register(ctx, baseDef(), RegisterOptions{Index: true})
	require.NoError(t, err)
	require.Nil(t, r.Validate(&pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": "POST"}}))
	vals, ok := r.IndexedValues("http_requests_total", "method")
	require.True(t, ok)
	assert.Equal(t, []string{"POST"}, vals)

	e, err := r.Unregister(ctx, "http_requests_total", time.Time{})
	require.NoError(t, err)
	raw, err := EncodeEntry(e)
	require.NoError(t, err)
	back, err := DecodeEntry(raw)
	require.NoError(t, err)
	require.NoError(t, r.Restore(ctx, back))
	got, ok := r.Get("http_requests_total")
	require.True(t, ok)
	assert.True(t, proto.Equal(baseDef(), got.Current().Definition))
	assert.Error(t, r.Restore(ctx, back), "restoring over a registered metric is refused")
}
