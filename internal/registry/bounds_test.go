package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// values returns n allowed values v0..v(n-1).
func values(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("v%d", i)
	}
	return out
}

// The text of a definition is bounded: at the limit accepted, one over
// refused, naming the field, the size, the limit and the fix (with the
// receiver's config key when the limit is one).
func TestValidateDefinitionBounds(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("x", n) }
	label := func(d *pb.MetricDefinition) *pb.LabelDefinition { return d.Labels[0] }
	tests := []struct {
		name  string
		edit  func(d *pb.MetricDefinition)
		field string // empty: accepted
		want  []string
	}{
		{name: "32 labels", edit: func(d *pb.MetricDefinition) { d.Labels = withLabels(d.Labels, 32) }},
		{
			name: "33 labels", edit: func(d *pb.MetricDefinition) { d.Labels = withLabels(d.Labels, 33) },
			field: "definition.labels", want: []string{"the definition declares 33 labels, the limit is 32 (limits.max_labels)",
				"fix: drop labels that do not identify the series, or raise limits.max_labels"},
		},
		{
			// the labels themselves are not checked (nor reported) then
			name: "33 labels, one of them invalid", edit: func(d *pb.MetricDefinition) {
				d.Labels = withLabels(d.Labels, 33)
				d.Labels[5].Name = "__reserved"
				d.Labels[6].AllowedValues = values(maxAllowedValues + 1)
			},
			field: "definition.labels", want: []string{"declares 33 labels"},
		},
		{name: "1000 allowed values", edit: func(d *pb.MetricDefinition) { label(d).AllowedValues = values(maxAllowedValues) }},
		{
			name: "1001 allowed values", edit: func(d *pb.MetricDefinition) { label(d).AllowedValues = values(maxAllowedValues + 1) },
			field: "definition.labels[0].allowed_values", want: []string{`label "method" has 1001 allowed values, the limit is 1000`, "fix: describe the values with a pattern"},
		},
		{name: "allowed value at the limit", edit: func(d *pb.MetricDefinition) { label(d).AllowedValues = []string{"GET", long(2048)} }},
		{
			name: "allowed value one byte over", edit: func(d *pb.MetricDefinition) { label(d).AllowedValues = []string{"GET", long(2049)} },
			field: "definition.labels[0].allowed_values[1]", want: []string{"allowed value is 2049 bytes, the limit is 2048 (limits.max_label_value_bytes)", "fix: shorten the value, or raise limits.max_label_value_bytes"},
		},
		{
			name: "default value one byte over", edit: func(d *pb.MetricDefinition) { d.Labels[3].DefaultValue = long(2049) },
			field: "definition.labels[3].default_value", want: []string{"default value is 2049 bytes, the limit is 2048 (limits.max_label_value_bytes)"},
		},
		{name: "description at the limit", edit: func(d *pb.MetricDefinition) { d.Description = long(4096) }},
		{
			name: "description one byte over", edit: func(d *pb.MetricDefinition) { d.Description = long(4097) },
			field: "definition.description", want: []string{"description is 4097 bytes, the limit is 4096 (limits.max_description_bytes)"},
		},
		{
			name: "label description one byte over", edit: func(d *pb.MetricDefinition) { d.Labels[1].Description = long(4097) },
			field: "definition.labels[1].description", want: []string{"label description is 4097 bytes", "limits.max_description_bytes"},
		},
		{name: "label name at the limit", edit: func(d *pb.MetricDefinition) { d.Labels[2].Name = long(256) }},
		{
			name: "label name one byte over", edit: func(d *pb.MetricDefinition) { d.Labels[2].Name = long(257) },
			field: "definition.labels[2].name", want: []string{"label name is 257 bytes, the limit is 256 (limits.max_label_name_bytes)"},
		},
		{
			name: "unit one byte over", edit: func(d *pb.MetricDefinition) { d.Unit = long(65) },
			field: "definition.unit", want: []string{"unit is 65 bytes, the limit is 64 (limits.max_unit_bytes)"},
		},
		{
			name: "metric name one byte over", edit: func(d *pb.MetricDefinition) { d.Name = long(256) },
			field: "definition.name", want: []string{"metric name is 256 bytes, the limit is 255 (limits.max_name_bytes)"},
		},
		{name: "pattern at the limit", edit: func(d *pb.MetricDefinition) { d.Labels[1].Pattern = long(maxPatternBytes) }},
		{
			name: "pattern one byte over", edit: func(d *pb.MetricDefinition) { d.Labels[1].Pattern = long(maxPatternBytes + 1) },
			field: "definition.labels[1].pattern", want: []string{"pattern is 4097 bytes, the limit is 4096", "fix: shorten the pattern"},
		},
		{name: "owner at the limit", edit: func(d *pb.MetricDefinition) { d.Owner = long(maxOwnerBytes) }},
		{
			name: "owner one byte over", edit: func(d *pb.MetricDefinition) { d.Owner = long(maxOwnerBytes + 1) },
			field: "definition.owner", want: []string{"owner is 257 bytes, the limit is 256"},
		},
		{name: "64 tags", edit: func(d *pb.MetricDefinition) { d.Tags = tagsN(maxTags) }},
		{
			name: "65 tags", edit: func(d *pb.MetricDefinition) { d.Tags = tagsN(maxTags + 1) },
			field: "definition.tags", want: []string{"65 tags, the limit is 64", "fix: drop some tags"},
		},
		{name: "tag key and value at the limit", edit: func(d *pb.MetricDefinition) { d.Tags = map[string]string{long(maxTagKeyBytes): long(maxTagValueBytes)} }},
		{
			name: "tag key one byte over", edit: func(d *pb.MetricDefinition) { d.Tags = map[string]string{long(maxTagKeyBytes + 1): "v"} },
			field: `definition.tags["` + long(64) + `"]`, want: []string{"tag key is 129 bytes, the limit is 128"},
		},
		{
			name: "tag value one byte over", edit: func(d *pb.MetricDefinition) { d.Tags = map[string]string{"team": long(maxTagValueBytes + 1)} },
			field: `definition.tags["team"]`, want: []string{"tag value is 1025 bytes, the limit is 1024"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := baseDef()
			tt.edit(d)
			r, _ := openTest(t, ModeOpen)
			_, err := r.Register(context.Background(), d, RegisterOptions{})
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var inv *InvalidError
			require.True(t, errors.As(err, &inv), "%v", err)
			require.Len(t, inv.Issues, 1, "%v", inv.Issues)
			assert.Equal(t, tt.field, inv.Issues[0].GetField())
			text := inv.Error() + " (fix: " + inv.Issues[0].GetSuggestion() + ")"
			for _, w := range tt.want {
				assert.Contains(t, text, w)
			}
			_, ok := r.Get(d.Name)
			assert.False(t, ok, "nothing is stored")
		})
	}
}

// withLabels returns labels with optional labels l<i> added up to n.
func withLabels(labels []*pb.LabelDefinition, n int) []*pb.LabelDefinition {
	for i := len(labels); i < n; i++ {
		labels = append(labels, &pb.LabelDefinition{Name: fmt.Sprintf("l%d", i)})
	}
	return labels
}

// limits.max_labels bounds the labels a definition declares; 0 is
// unlimited, as for records.
func TestSetLimitsBoundsLabelCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := openTest(t, ModeOpen)
	lim := convert.DefaultConfig().Limits
	lim.MaxLabels = 5
	r.SetLimits(lim)
	d := baseDef()
	d.Labels = withLabels(d.Labels, 6)
	_, err := r.Register(ctx, d, RegisterOptions{})
	var inv *InvalidError
	require.True(t, errors.As(err, &inv), "%v", err)
	assert.Equal(t, "definition invalid: definition.labels: the definition declares 6 labels, the limit is 5 (limits.max_labels): a record carries at most that many", inv.Error())

	d.Labels = d.Labels[:5]
	_, err = r.Register(ctx, d, RegisterOptions{})
	require.NoError(t, err, "at the limit")

	lim.MaxLabels = 0
	r.SetLimits(lim)
	d.Labels = withLabels(d.Labels, 100)
	_, err = r.Register(ctx, d, RegisterOptions{})
	require.NoError(t, err, "max_labels 0 is unlimited")
	e, ok := r.Get(d.Name)
	require.True(t, ok)
	assert.Len(t, e.Current().Definition.GetLabels(), 100)
}

// A backup version declaring more labels than limits.max_labels is
// refused on restore naming the version and the field.
func TestRestoreRefusesEntryOverLabelCount(t *testing.T) {
	t.Parallel()
	r, _ := openTest(t, ModeOpen)
	lim := convert.DefaultConfig().Limits
	lim.MaxLabels = 4
	r.SetLimits(lim)
	good, bad := baseDef(), baseDef()
	bad.Labels = withLabels(bad.Labels, 5)
	e := &Entry{Name: good.Name, Versions: []Version{
		{Version: 1, Definition: good, CreatedAt: time.Unix(1, 0)},
		{Version: 2, Definition: bad, CreatedAt: time.Unix(2, 0)},
	}}
	err := r.Restore(context.Background(), e)
	var inv *InvalidError
	require.True(t, errors.As(err, &inv), "%v", err)
	require.Len(t, inv.Issues, 1)
	assert.Equal(t, "versions[1].definition.labels", inv.Issues[0].GetField())
	assert.Equal(t, "backup version 2: the definition declares 5 labels, the limit is 4 (limits.max_labels): a record carries at most that many", inv.Issues[0].GetMessage())
	assert.Equal(t, "raise limits.max_labels to restore this backup", inv.Issues[0].GetSuggestion())
	_, ok := r.Get(good.Name)
	assert.False(t, ok, "nothing is restored")
}

func tagsN(n int) map[string]string {
	tags := make(map[string]string, n)
	for i := range n {
		tags[fmt.Sprintf("k%d", i)] = "v"
	}
	return tags
}

// The byte limits follow SetLimits (the receiver's limits block); a
// limit of 0 is unlimited where it is for records.
func TestSetLimitsBoundsDefinitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := openTest(t, ModeOpen)
	lim := convert.DefaultConfig().Limits
	lim.MaxLabelValueBytes = 16
	lim.MaxDescriptionBytes = 0
	r.SetLimits(lim)
	d := baseDef()
	d.Labels[0].AllowedValues = []string{"GET", strings.Repeat("x", 17)}
	d.Description = strings.Repeat("d", 100_000)
	_, err := r.Register(ctx, d, RegisterOptions{})
	var inv *InvalidError
	require.True(t, errors.As(err, &inv), "%v", err)
	require.Len(t, inv.Issues, 1)
	assert.Equal(t, "definition invalid: definition.labels[0].allowed_values[1]: allowed value is 17 bytes, the limit is 16 (limits.max_label_value_bytes)", inv.Error())

	d.Labels[0].AllowedValues[1] = strings.Repeat("x", 16)
	_, err = r.Register(ctx, d, RegisterOptions{})
	require.NoError(t, err, "at the limit, and max_description_bytes 0 is unlimited")

	// An update over the limit is refused too; the stored version stays.
	d2 := proto.Clone(d).(*pb.MetricDefinition)
	d2.Labels[0].AllowedValues = append(d2.Labels[0].AllowedValues, strings.Repeat("y", 17))
	_, err = r.Register(ctx, d2, RegisterOptions{AllowBreaking: true})
	require.True(t, errors.As(err, &inv), "%v", err)
	assert.Equal(t, "definition.labels[0].allowed_values[2]", inv.Issues[0].GetField())
	e, ok := r.Get(d.Name)
	require.True(t, ok)
	assert.Len(t, e.Versions, 1)
}

// A definition with many oversized values reports at most maxBoundIssues.
func TestBoundIssuesAreCapped(t *testing.T) {
	t.Parallel()
	d := baseDef()
	d.Labels[0].AllowedValues = make([]string, 500)
	for i := range d.Labels[0].AllowedValues {
		d.Labels[0].AllowedValues[i] = strings.Repeat("x", 2049)
	}
	assert.Len(t, checkBounds(d, convert.DefaultConfig().Limits), maxBoundIssues)
}

// A backup entry over the bounds is refused by Restore (and CheckEntry)
// naming the version and the field, and nothing is restored.
func TestRestoreRefusesEntryOverBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := openTest(t, ModeOpen)
	good := baseDef()
	bad := baseDef()
	bad.Labels[0].AllowedValues = []string{"GET", "POST", strings.Repeat("x", 2049)}
	e := &Entry{Name: good.Name, Versions: []Version{
		{Version: 1, Definition: good, CreatedAt: time.Unix(1, 0)},
		{Version: 2, Definition: bad, CreatedAt: time.Unix(2, 0)},
	}}
	require.NoError(t, r.CheckEntry(&Entry{Name: good.Name, Versions: e.Versions[:1]}))

	err := r.Restore(ctx, e)
	var inv *InvalidError
	require.True(t, errors.As(err, &inv), "%v", err)
	require.Len(t, inv.Issues, 1)
	assert.Equal(t, "versions[1].definition.labels[0].allowed_values[2]", inv.Issues[0].GetField())
	assert.Equal(t, "backup version 2: allowed value is 2049 bytes, the limit is 2048 (limits.max_label_value_bytes)", inv.Issues[0].GetMessage())
	assert.Equal(t, "raise limits.max_label_value_bytes to restore this backup", inv.Issues[0].GetSuggestion())
	_, ok := r.Get(good.Name)
	assert.False(t, ok, "nothing is restored")
}
