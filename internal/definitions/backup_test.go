package definitions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memKV keeps a registry in memory.
type memKV struct{ m map[string][]byte }

func (k *memKV) Get(_ context.Context, key string) ([]byte, error) { return k.m[key], nil }
func (k *memKV) Set(_ context.Context, key string, v []byte) error {
	if k.m == nil {
		k.m = map[string][]byte{}
	}
	k.m[key] = v
	return nil
}
func (*memKV) Close(context.Context) error { return nil }

// fakeStore keeps series in memory; failing makes every call fail.
type fakeStore struct {
	data       []store.SeriesData
	backfilled []store.SeriesData
	deleted    int
	failing    error
}

func (f *fakeStore) matching(ms []*labels.Matcher) []store.SeriesData {
	var out []store.SeriesData
	for _, sd := range f.data {
		ok := true
		for _, m := range ms {
			ok = ok && m.Matches(sd.Labels.Get(m.Name))
		}
		if ok {
			out = append(out, sd)
		}
	}
	return out
}

func (f *fakeStore) Count(_ context.Context, ms ...*labels.Matcher) (series, samples int64, err error) {
	for _, sd := range f.matching(ms) {
		series++
		samples += int64(len(sd.Samples))
	}
	return series, samples, f.failing
}

func (f *fakeStore) Export(_ context.Context, ms ...*labels.Matcher) ([]store.SeriesData, error) {
	return f.matching(ms), f.failing
}

func (f *fakeStore) Delete(_ context.Context, ms ...*labels.Matcher) error {
	if f.failing != nil {
		return f.failing
	}
	var keep []store.SeriesData
	for _, sd := range f.data {
		if len(f.matching(ms)) > 0 && ms[0].Matches(sd.Labels.Get(labels.MetricName)) {
			f.deleted++
			continue
		}
		keep = append(keep, sd)
	}
	f.data = keep
	return nil
}

func (f *fakeStore) Backfill(_ context.Context, data []store.SeriesData) error {
	f.backfilled = append(f.backfilled, data...)
	return f.failing
}

func (f *fakeStore) LabelNames(_ context.Context, _, _ int64, ms ...*labels.Matcher) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, sd := range f.matching(ms) {
		sd.Labels.Range(func(l labels.Label) {
			if !seen[l.Name] {
				seen[l.Name] = true
				out = append(out, l.Name)
			}
		})
	}
	return out, f.failing
}

func (f *fakeStore) SeriesPerLabel(_ context.Context, _, _ int64, ms ...*labels.Matcher) (map[labels.Label]int64, error) {
	out := map[labels.Label]int64{}
	for _, sd := range f.matching(ms) {
		sd.Labels.Range(func(l labels.Label) { out[l]++ })
	}
	return out, f.failing
}

func (*fakeStore) Stats() *store.IngestStats {
	st := store.NewIngestStats(func() time.Time { return now })
	st.Add(map[string]int{"orders_total": 600}, 600)
	return st
}

func (*fakeStore) MetadataOf(family string) (metadata.Metadata, bool) {
	if family == "orders_total" {
		return metadata.Metadata{Type: model.MetricTypeCounter}, true
	}
	return metadata.Metadata{}, false
}

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*Engine, *fakeStore, *registry.Registry) {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.Open(ctx, &memKV{}, registry.ModeOpen)
	require.NoError(t, err)
	_, err = reg.Register(ctx, &pb.MetricDefinition{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Unit: "1", Description: "orders"}, registry.RegisterOptions{})
	require.NoError(t, err)
	st := &fakeStore{data: []store.SeriesData{
		{Labels: labels.FromStrings("__name__", "orders_total", "shop", "eu"), Samples: []store.Sample{{T: 1000, V: 1}, {T: 2000, V: 3}}},
		{Labels: labels.FromStrings("__name__", "orders_total", "shop", "us"), Samples: []store.Sample{{T: 1000, V: 7}}},
		{Labels: labels.FromStrings("__name__", "queue_depth"), Samples: []store.Sample{{T: 1000, V: 2}}},
	}}
	return &Engine{Dir: filepath.Join(t.TempDir(), "backups"), Store: st, Definitions: reg, Now: func() time.Time { return now }}, st, reg
}

func TestUnregisterWithBackupThenRestore(t *testing.T) {
	ctx := context.Background()
	g, st, reg := setup(t)
	res, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total", DeleteData: true, Backup: true})
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.SeriesAffected)
	assert.Equal(t, int64(3), res.SamplesAffected)
	assert.Equal(t, "orders_total-20261201T120000.000000000Z", res.BackupID)
	assert.FileExists(t, res.BackupPath)
	assert.Equal(t, 2, st.deleted, "data deleted now")
	_, ok := reg.Get("orders_total")
	assert.False(t, ok)

	e, err := g.Restore(ctx, res.BackupID, false)
	require.NoError(t, err)
	assert.Equal(t, "orders_total", e.Name)
	_, ok = reg.Get("orders_total")
	assert.True(t, ok, "definition back")
	require.Len(t, st.backfilled, 2, "both series written back")
	assert.Equal(t, `{__name__="orders_total", shop="eu"}`, st.backfilled[0].Labels.String())
	assert.Equal(t, []store.Sample{{T: 1000, V: 1}, {T: 2000, V: 3}}, st.backfilled[0].Samples)

	_, err = g.Restore(ctx, res.BackupID, false)
	assertKind(t, err, KindAlreadyExists)
}

func TestUnregisterDryRunAndRetention(t *testing.T) {
	ctx := context.Background()
	g, st, reg := setup(t)
	res, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total", DeleteData: true, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.SeriesAffected)
	_, ok := reg.Get("orders_total")
	assert.True(t, ok, "a dry run changes nothing")

	res, err = g.Unregister(ctx, UnregisterRequest{Name: "orders_total", DeleteData: true, DataRetention: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, now.Add(time.Hour), res.DeleteAt)
	assert.Zero(t, st.deleted, "deletion scheduled, not done")
	require.Len(t, reg.Pending(), 1)
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		run   func(g *Engine, st *fakeStore) error
		kind  Kind
		field string
	}{
		{"empty name", func(g *Engine, _ *fakeStore) error {
			_, err := g.Unregister(ctx, UnregisterRequest{})
			return err
		}, KindInvalid, "name"},
		{"not registered", func(g *Engine, _ *fakeStore) error {
			_, err := g.Unregister(ctx, UnregisterRequest{Name: "nope"})
			return err
		}, KindNotFound, ""},
		{"backup without store", func(g *Engine, _ *fakeStore) error {
			g.Store = nil
			_, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total", Backup: true})
			return err
		}, KindFailedPrecondition, ""},
		{"backup without directory", func(g *Engine, _ *fakeStore) error {
			g.Dir = ""
			_, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total", Backup: true})
			return err
		}, KindFailedPrecondition, ""},
		{"store fails", func(g *Engine, st *fakeStore) error {
			st.failing = errors.New("disk gone")
			_, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total"})
			return err
		}, KindInternal, ""},
		{"path in id", func(g *Engine, _ *fakeStore) error {
			_, err := g.Restore(ctx, "../../etc/passwd", false)
			return err
		}, KindInvalid, "restore_backup_id"},
		{"unknown id", func(g *Engine, _ *fakeStore) error {
			_, err := g.Restore(ctx, "nope", false)
			return err
		}, KindNotFound, ""},
		{"damaged file", func(g *Engine, _ *fakeStore) error {
			require.NoError(t, os.MkdirAll(g.Dir, 0o750))
			require.NoError(t, os.WriteFile(filepath.Join(g.Dir, "bad.json"), []byte("{"), 0o600))
			_, err := g.Restore(ctx, "bad", false)
			return err
		}, KindDataLoss, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, st, _ := setup(t)
			err := tt.run(g, st)
			assertKind(t, err, tt.kind)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.field, e.Field)
		})
	}
}

func TestRestoreDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	g, st, reg := setup(t)
	res, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total", Backup: true})
	require.NoError(t, err)
	_, err = g.Restore(ctx, res.BackupID, true)
	require.NoError(t, err)
	assert.Empty(t, st.backfilled)
	_, ok := reg.Get("orders_total")
	assert.False(t, ok)
}

func TestOTLPRoundTrip(t *testing.T) {
	data := []store.SeriesData{
		{Labels: labels.FromStrings("__name__", "orders_total", "shop", "eu"), Samples: []store.Sample{{T: 1000, V: 1}}},
		{Labels: labels.FromStrings("__name__", "queue_depth", "q", "mail"), Samples: []store.Sample{{T: 5000, V: 2.5}, {T: 6000, V: 3}}},
	}
	md := ToOTLP(data, (&fakeStore{}).MetadataOf)
	assert.True(t, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().IsMonotonic(), "a counter is a monotonic sum")
	assert.Equal(t, data, FromOTLP(md))
}

func assertKind(t *testing.T, err error, kind Kind) {
	t.Helper()
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, kind, e.Kind, "%v", err)
}
