package metricsservicereceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// badRequestFields returns the BadRequest field names of st.
func badRequestFields(st *status.Status) []string {
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// A definition's allowed values are bounded by limits.max_label_value_bytes
// (here 64): over gRPC, one byte over is INVALID_ARGUMENT naming the field,
// the size, the limit, the config key and the fix; at the limit it is
// accepted. A backup edited to carry an oversized value is refused the same
// way on restore, and neither its definition nor its data comes back.
func TestRegisterMetricBoundsAllowedValues(t *testing.T) {
	c, r, _ := runReceiverWith(t, t.TempDir(), func(cfg *Config) { cfg.Limits.MaxLabelValueBytes = 64 })
	ctx := context.Background()

	def := requestsDef()
	def.Labels[0].AllowedValues = append(def.Labels[0].AllowedValues, strings.Repeat("x", 65))
	_, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: def})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "definition invalid: definition.labels[0].allowed_values[2]: allowed value is 65 bytes, the limit is 64 "+
		"(limits.max_label_value_bytes) (fix: shorten the value, or raise limits.max_label_value_bytes)", st.Message())
	assert.Equal(t, []string{"definition.labels[0].allowed_values[2]"}, badRequestFields(st))
	_, ok := r.defs.registry.Get("http_requests_total")
	assert.False(t, ok)

	def.Labels[0].AllowedValues[2] = strings.Repeat("x", 64)
	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: def})
	require.NoError(t, err, "at the limit")

	// An update over the limit is refused too.
	over := requestsDef()
	over.Labels[0].AllowedValues = append(over.Labels[0].AllowedValues, strings.Repeat("x", 64), strings.Repeat("y", 65))
	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: over})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	// Backup, edit it, restore: refused before anything is applied.
	recordRequests(t, c)
	del, err := c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true, Backup: true})
	require.NoError(t, err)
	editBackup(t, del.BackupPath, func(d *pb.MetricDefinition) { d.Labels[0].AllowedValues[0] = strings.Repeat("z", 100) })
	_, n := sumRequests(t, c)
	require.Zero(t, n, "data is deleted")

	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{RestoreBackupId: del.BackupId})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "definition invalid: versions[0].definition.labels[0].allowed_values[0]: backup version 1: allowed value is 100 bytes, "+
		"the limit is 64 (limits.max_label_value_bytes) (fix: raise limits.max_label_value_bytes to restore this backup)", st.Message())
	_, ok = r.defs.registry.Get("http_requests_total")
	assert.False(t, ok, "no definition restored")
	_, n = sumRequests(t, c)
	assert.Zero(t, n, "no data restored")
}

// withLabels adds optional labels l<i> to def up to n labels.
func withLabels(def *pb.MetricDefinition, n int) *pb.MetricDefinition {
	for i := len(def.Labels); i < n; i++ {
		def.Labels = append(def.Labels, &pb.LabelDefinition{Name: fmt.Sprintf("l%d", i)})
	}
	return def
}

// The labels a definition declares are bounded by limits.max_labels (here
// 4): over gRPC, one more is INVALID_ARGUMENT naming definition.labels, the
// count, the limit, the config key and the fix; at the limit it is
// accepted. An update over it is refused, and so is the restore of a
// backup edited to declare more, before anything is applied.
func TestRegisterMetricBoundsLabelCount(t *testing.T) {
	c, r, _ := runReceiverWith(t, t.TempDir(), func(cfg *Config) { cfg.Limits.MaxLabels = 4 })
	ctx := context.Background()

	_, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: withLabels(requestsDef(), 5)})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "definition invalid: definition.labels: the definition declares 5 labels, the limit is 4 (limits.max_labels): "+
		"a record carries at most that many (fix: drop labels that do not identify the series, or raise limits.max_labels)", st.Message())
	assert.Equal(t, []string{"definition.labels"}, badRequestFields(st))
	_, ok := r.defs.registry.Get("http_requests_total")
	assert.False(t, ok)

	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: withLabels(requestsDef(), 4)})
	require.NoError(t, err, "at the limit")

	// An update over the limit is refused too; version 1 stays.
	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: withLabels(requestsDef(), 5)})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, []string{"definition.labels"}, badRequestFields(st))
	e, ok := r.defs.registry.Get("http_requests_total")
	require.True(t, ok)
	assert.Len(t, e.Versions, 1)

	// Backup, edit it to declare 6 labels, restore: refused before anything is applied.
	recordRequests(t, c)
	del, err := c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true, Backup: true})
	require.NoError(t, err)
	editBackup(t, del.BackupPath, func(d *pb.MetricDefinition) { withLabels(d, 6) })
	_, err = c.RegisterMetric(ctx, &pb.RegisterMetricRequest{RestoreBackupId: del.BackupId})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "definition invalid: versions[0].definition.labels: backup version 1: the definition declares 6 labels, the limit is 4 "+
		"(limits.max_labels): a record carries at most that many (fix: raise limits.max_labels to restore this backup)", st.Message())
	_, ok = r.defs.registry.Get("http_requests_total")
	assert.False(t, ok, "no definition restored")
	_, n := sumRequests(t, c)
	assert.Zero(t, n, "no data restored")
}

// editBackup rewrites every version's definition of the backup file at path.
func editBackup(t *testing.T, path string, edit func(*pb.MetricDefinition)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var f map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &f))
	e, err := registry.DecodeEntry(f["entry"])
	require.NoError(t, err)
	for _, v := range e.Versions {
		edit(v.Definition)
	}
	f["entry"], err = registry.EncodeEntry(e)
	require.NoError(t, err)
	raw, err = json.Marshal(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, raw, 0o600))
}
