package metricsservicereceiver

import (
	"context"
	"encoding/json"
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
