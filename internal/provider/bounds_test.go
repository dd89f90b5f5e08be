package provider

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

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
			var errs []*pb.ValidationIssue
			for _, iss := range validateConfig(pc) {
				if iss.GetSeverity() == pb.Severity_SEVERITY_ERROR {
					errs = append(errs, iss)
				}
			}
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
