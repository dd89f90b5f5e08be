package definitions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func etcdRegistry(t *testing.T, eps []string) *registry.Registry {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	reg, err := registry.OpenEtcd(context.Background(), registry.EtcdOptions{Client: cli, Prefix: "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/",
		Endpoints: eps, RequestTimeout: 2 * time.Second, HealthInterval: 100 * time.Millisecond}, registry.ModeOpen)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = reg.Close(context.Background())
		_ = cli.Close()
	})
	return reg
}

func TestBackupOnOneNodeRestoresOnAnotherOverEtcd(t *testing.T) {
	ctx := context.Background()
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	regA, regB := etcdRegistry(t, eps[:1]), etcdRegistry(t, eps[1:2])
	_, err := regA.Register(ctx, &pb.MetricDefinition{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Unit: "1"}, registry.RegisterOptions{})
	require.NoError(t, err)
	stA := &fakeStore{data: []store.SeriesData{
		{Labels: labels.FromStrings("__name__", "orders_total", "shop", "eu"), Samples: []store.Sample{{T: 1000, V: 1}}},
	}}
	stB := &fakeStore{}
	// no backup directory on either node: the backup lives in etcd
	a := &Engine{Store: stA, Definitions: regA, Backups: regA, Now: func() time.Time { return now }}
	b := &Engine{Store: stB, Definitions: regB, Backups: regB, Now: func() time.Time { return now }}

	res, err := a.Unregister(ctx, UnregisterRequest{Name: "orders_total", Backup: true})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(res.BackupPath, "etcd:"), res.BackupPath)
	require.Eventually(t, func() bool { _, ok := regB.Get("orders_total"); return !ok }, 5*time.Second, 5*time.Millisecond)

	e, err := b.Restore(ctx, res.BackupID, false)
	require.NoError(t, err)
	assert.Equal(t, "orders_total", e.Name)
	require.Len(t, stB.backfilled, 1, "the data of the backup is written into B's store")
	require.Eventually(t, func() bool { _, ok := regA.Get("orders_total"); return ok }, 5*time.Second, 5*time.Millisecond,
		"the definition restored on B is back on A")

	_, err = b.Restore(ctx, "missing-20261201T120000.000000000Z", false)
	assertKind(t, err, KindNotFound)
}

// smallBackups keeps nothing above 10 bytes.
type smallBackups struct{ BackupStore }

func (smallBackups) MaxBackupBytes() int { return 10 }

func TestABackupTooLargeForEtcdGoesToTheDirectoryOrIsRefused(t *testing.T) {
	ctx := context.Background()
	g, _, _ := setup(t)
	g.Backups = smallBackups{}
	res, err := g.Unregister(ctx, UnregisterRequest{Name: "orders_total", Backup: true, DryRun: false})
	require.NoError(t, err)
	assert.FileExists(t, res.BackupPath, "larger than etcd keeps: written to backup_dir")

	g2, _, _ := setup(t)
	g2.Backups, g2.Dir = smallBackups{}, ""
	_, err = g2.Unregister(ctx, UnregisterRequest{Name: "orders_total", Backup: true})
	assertKind(t, err, KindFailedPrecondition)
	assert.Contains(t, err.Error(), "definitions.backup_dir")
}
