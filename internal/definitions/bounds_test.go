package definitions

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// A backup whose definition carries an allowed value over the bounds (a
// file edited by hand, or written before the bounds) is refused naming the
// version and the field, on a dry run too, and nothing of it is applied:
// neither its data nor its definition.
func TestRestoreRefusesBackupOverBoundsWithoutApplyingIt(t *testing.T) {
	ctx := context.Background()
	g, st, reg := setup(t)
	res, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total", DeleteData: true, Backup: true})
	require.NoError(t, err)

	// Edit the backup: its one version gets a label with an oversized allowed value.
	raw, err := os.ReadFile(res.BackupPath)
	require.NoError(t, err)
	e, data, err := Decode(raw)
	require.NoError(t, err)
	require.NotEmpty(t, data, "the backup holds data")
	e.Versions[0].Definition.Labels = []*pb.LabelDefinition{{Name: "shop", AllowedValues: []string{"eu", "us", strings.Repeat("x", 2049)}}}
	entry, err := registry.EncodeEntry(e)
	require.NoError(t, err)
	raw, err = json.Marshal(file{Entry: entry, Data: data})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(res.BackupPath, raw, 0o600))

	for _, dry := range []bool{true, false} {
		_, err = g.Restore(ctx, res.BackupID, dry)
		var inv *registry.InvalidError
		require.True(t, errors.As(err, &inv), "dry run %v: %v", dry, err)
		assert.Equal(t, "versions[0].definition.labels[0].allowed_values[2]", inv.Issues[0].GetField())
		assert.Contains(t, inv.Error(), "allowed value is 2049 bytes, the limit is 2048 (limits.max_label_value_bytes)")
		assert.Equal(t, "raise limits.max_label_value_bytes to restore this backup", inv.Issues[0].GetSuggestion())
	}
	assert.Empty(t, st.backfilled, "no data written back")
	_, ok := reg.Get("orders_total")
	assert.False(t, ok, "no definition restored")

	// Within a raised limit, the same backup restores.
	lim := convert.DefaultConfig().Limits
	lim.MaxLabelValueBytes = 4096
	reg.SetLimits(lim)
	_, err = g.Restore(ctx, res.BackupID, false)
	require.NoError(t, err)
	assert.Len(t, st.backfilled, 2)
}
