package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// etcdNode starts one engine ("node") on the etcd registry under prefix.
func etcdNode(t *testing.T, endpoints []string, prefix string) *Engine {
	t.Helper()
	return etcdNodeWith(t, endpoints, prefix, 5)
}

// etcdNodeWith is etcdNode keeping maxVersions config versions per provider.
func etcdNodeWith(t *testing.T, endpoints []string, prefix string, maxVersions int) *Engine {
	t.Helper()
	tel := componenttest.NewNopTelemetrySettings()
	tel.Logger = zaptest.NewLogger(t, zaptest.Level(zap.DebugLevel)).With(zap.String("node", prefix+fmt.Sprint(len(endpoints))))
	e := NewEngine(Settings{
		TelemetrySettings: tel, MaxVersions: maxVersions, MaxBackups: 10, LookupHost: noDNS,
		Etcd: &EtcdConfig{Endpoints: endpoints, Prefix: prefix, DialTimeout: 5 * time.Second,
			RequestTimeout: 2 * time.Second, HealthInterval: 100 * time.Millisecond},
	})
	require.NoError(t, e.Start(context.Background(), distribution(), nil))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e
}

// stateOf returns the state and version of provider id on e ("" when absent).
func stateOf(e *Engine, id string) (pb.ProviderState, uint64, bool) {
	for _, s := range e.Status() {
		if s.ID == id {
			return s.State, s.Version, true
		}
	}
	return 0, 0, false
}

func runsAt(e *Engine, id string, version uint64) func() bool {
	return func() bool {
		st, v, ok := stateOf(e, id)
		return ok && st == pb.ProviderState_PROVIDER_STATE_RUNNING && v == version
	}
}

func gone(e *Engine, id string) func() bool {
	return func() bool {
		_, _, ok := stateOf(e, id)
		return !ok && e.Router().Routes() == 0
	}
}

// convergeWithin is the bound the fleet tests hold the watch to.
const convergeWithin = 10 * time.Second

func TestEtcdFleetConverges(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	prefix := "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
	a := etcdNode(t, eps[:1], prefix)
	b := etcdNode(t, eps[1:2], prefix)
	c := etcdNode(t, eps, prefix)
	nodes := []*Engine{a, b, c}
	sink1, name1 := newSink(t, "one")
	sink2, name2 := newSink(t, "two")

	// created on A: runs on B and C
	resp, err := a.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name1), AutoStart: true})
	require.NoError(t, err)
	require.Equal(t, uint64(1), resp.GetProvider().GetGeneration())
	for _, n := range nodes {
		require.Eventually(t, runsAt(n, "p", 1), convergeWithin, 10*time.Millisecond)
	}
	for i, n := range nodes {
		require.NoError(t, n.Router().ConsumeMetrics(ctx, gauges("m", i*10, 10)))
	}
	eventually(t, func() bool { return sink1.pointCount() == 30 }, "every node exports")

	// generations are fleet-wide: a provider created on B gets the next one
	r2, err := b.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("q", name2)})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), r2.GetProvider().GetGeneration())
	for _, n := range nodes {
		require.Eventually(t, func() bool { _, _, ok := stateOf(n, "q"); return ok }, convergeWithin, 10*time.Millisecond)
	}
	_, err = c.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "q", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)

	// concurrent updates on A and B from the same version: one is ABORTED naming the current version
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []*Engine{a, b} {
		wg.Go(func() {
			pc := sinkProvider("p", name2)
			pc.Name = fmt.Sprintf("from-%d", i)
			_, errs[i] = n.Update(context.Background(), &pb.UpdateProviderRequest{ProviderId: "p", Config: pc, Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_ROLLING})
		})
	}
	wg.Wait()
	var aborted int
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, ErrAborted)
			assert.Contains(t, err.Error(), "now at version 2")
			aborted++
		}
	}
	require.Equal(t, 1, aborted, "exactly one concurrent update loses: %v", errs)
	for _, n := range nodes {
		require.Eventually(t, runsAt(n, "p", 2), convergeWithin, 10*time.Millisecond)
	}
	winner := a
	if errs[0] != nil {
		winner = b
	}
	_, _ = winner, sink2
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			st := n.Status()
			if len(st) != 1 || st[0].Name != nameOf(winner) {
				return false
			}
		}
		return true
	}, convergeWithin, 10*time.Millisecond, "every node runs the winner's config")
	before := sink2.pointCount()
	for i, n := range nodes {
		require.NoError(t, n.Router().ConsumeMetrics(ctx, gauges("m", 100+i*10, 10)))
	}
	eventually(t, func() bool { return sink2.pointCount() == before+30 }, "every node exports to the updated destination")
	assert.Equal(t, 30, sink1.pointCount(), "nothing more to the old destination")

	// one member killed: the fleet still works
	cluster.Kill(0)
	// (a leader election may refuse writes briefly: UNAVAILABLE, retried)
	require.Eventually(t, func() bool {
		resp, uerr := c.Update(context.Background(), &pb.UpdateProviderRequest{ProviderId: "p", Config: sinkProvider("p", name1)})
		err = uerr
		// UNAVAILABLE during the election; FAILED_PRECONDITION while the resync after a
		// refused attempt reconciles p: both are retried, as a client would
		require.True(t, err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrFailedPrecondition), "%v", err)
		// a refused attempt leaves nothing behind: the retry that succeeds writes version 3
		// (it was once taken for a no-op: the switched exporter's config stayed)
		require.True(t, err != nil || resp.GetProvider().GetVersion() == 3, "update answered %q", resp.GetMessage())
		return err == nil
	}, convergeWithin, 50*time.Millisecond, "update with one member down: %v", func() error { return err }())
	for i, n := range []*Engine{b, c} {
		waitFleet(t, runsAt(n, "p", 3), fmt.Sprintf("node %d runs version 3", i+1), nodes)
	}
	cluster.Start(0)
	cluster.WaitHealthy(0)
	require.Eventually(t, runsAt(a, "p", 3), convergeWithin, 10*time.Millisecond)

	// deleted on B: stopped everywhere
	_, err = b.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p"})
	require.NoError(t, err)
	for _, n := range nodes {
		require.Eventually(t, gone(n, "p"), convergeWithin, 10*time.Millisecond)
	}
}

// waitFleet waits for cond; on timeout it fails with every node's view.
func waitFleet(t *testing.T, cond func() bool, what string, nodes []*Engine) {
	t.Helper()
	deadline := time.Now().Add(convergeWithin)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, n := range nodes {
				fmt.Fprintf(&b, "node %d: %+v", i, n.RegistryHealth())
				for _, s := range n.Status() {
					fmt.Fprintf(&b, " [%s %s v%d %s %s]", s.ID, s.State, s.Version, s.Name, s.LastError)
				}
				b.WriteString("\n")
			}
			t.Fatalf("%s: not within %s\n%s", what, convergeWithin, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A node cut off from etcd while the others change the registry and etcd
// compacts its history converges when it is back (full reread).
func TestEtcdNodeCutOffConvergesAfterCompaction(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	prefix := "/" + t.Name() + "/"
	a := etcdNode(t, eps[:1], prefix)
	b := etcdNode(t, eps[1:], prefix)
	sink1, name1 := newSink(t, "one")
	_, name2 := newSink(t, "two")
	_, err := b.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name1), AutoStart: true})
	require.NoError(t, err)
	_, err = b.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("gone", name1), AutoStart: true})
	require.NoError(t, err)
	require.Eventually(t, runsAt(a, "p", 1), convergeWithin, 10*time.Millisecond)
	require.Eventually(t, runsAt(a, "gone", 1), convergeWithin, 10*time.Millisecond)

	cluster.Kill(0)
	require.Eventually(t, func() bool { return a.RegistryHealth().Degraded }, convergeWithin, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		_, err = b.Update(context.Background(), &pb.UpdateProviderRequest{ProviderId: "p", Config: sinkProvider("p", name2)})
		require.True(t, err == nil || errors.Is(err, ErrUnavailable), "%v", err)
		return err == nil
	}, convergeWithin, 50*time.Millisecond)
	_, err = b.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "gone", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps[1:], DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer cli.Close()
	g, err := cli.Get(ctx, prefix+"gen")
	require.NoError(t, err)
	_, err = cli.Compact(ctx, g.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	// meanwhile A keeps exporting with what it knew
	require.NoError(t, a.Router().ConsumeMetrics(ctx, gauges("m", 0, 10)))
	// (both of its providers export to sink one: 10 points each)
	eventually(t, func() bool { return sink1.pointCount() == 20 }, "the cut-off node exports with its last known providers")

	cluster.Start(0)
	cluster.WaitHealthy(0)
	waitFleet(t, runsAt(a, "p", 2), "the cut-off node runs the update made while it was away", []*Engine{a, b})
	waitFleet(t, func() bool { _, _, ok := stateOf(a, "gone"); return !ok }, "and stopped the provider deleted meanwhile", []*Engine{a, b})
	require.Eventually(t, func() bool { return !a.RegistryHealth().Degraded }, convergeWithin, 10*time.Millisecond)
}

// A scheduled deletion is run by the node that leads the fleet's once-only
// work (it removes the provider from etcd once); every node drains its own
// queue, the others when the removal reaches them through the watch.
func TestEtcdScheduledDeletionRunsOnce(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	prefix := "/" + t.Name() + "/"
	nodes := []*Engine{etcdNode(t, cluster.Endpoints(), prefix), etcdNode(t, cluster.Endpoints(), prefix), etcdNode(t, cluster.Endpoints(), prefix)}
	sink, name := newSink(t, "s")
	_, err := nodes[0].Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name), AutoStart: true})
	require.NoError(t, err)
	for _, n := range nodes {
		require.Eventually(t, runsAt(n, "p", 1), convergeWithin, 10*time.Millisecond)
	}
	for i, n := range nodes {
		require.NoError(t, n.Router().ConsumeMetrics(ctx, gauges("m", i*10, 10)))
	}
	_, err = nodes[1].Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED,
		ScheduledTime: timestamppb.New(time.Now().Add(300 * time.Millisecond))})
	require.NoError(t, err)
	for _, n := range nodes {
		require.Eventually(t, gone(n, "p"), convergeWithin, 10*time.Millisecond)
	}
	assert.Equal(t, 30, sink.pointCount(), "every node drained its queue before the deletion")
	_, err = nodes[2].Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name), AutoStart: true})
	require.NoError(t, err, "the id is free again fleet-wide")
}

func nameOf(e *Engine) string {
	for _, s := range e.Status() {
		return s.Name
	}
	return ""
}

func TestEtcdUnavailableKeepsExporting(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	prefix := "/" + t.Name() + "/"
	a := etcdNode(t, cluster.Endpoints(), prefix)
	b := etcdNode(t, cluster.Endpoints(), prefix)
	sink, name := newSink(t, "s")
	_, err := a.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name), AutoStart: true})
	require.NoError(t, err)
	require.Eventually(t, runsAt(b, "p", 1), convergeWithin, 10*time.Millisecond)
	assert.False(t, a.RegistryHealth().Degraded)

	cluster.StopAll()
	for _, n := range []*Engine{a, b} {
		require.Eventually(t, func() bool { return n.RegistryHealth().Degraded }, convergeWithin, 10*time.Millisecond)
	}
	assert.Contains(t, a.RegistryHealth().Detail, "etcd")
	// nodes keep exporting with the last known providers
	for i, n := range []*Engine{a, b} {
		require.NoError(t, n.Router().ConsumeMetrics(ctx, gauges("m", i*10, 10)))
	}
	eventually(t, func() bool { return sink.pointCount() == 20 }, "both nodes keep exporting")
	// writes are refused, naming etcd and the fix
	changed := sinkProvider("p", name)
	changed.Name = "changed"
	_, err = b.Update(context.Background(), &pb.UpdateProviderRequest{ProviderId: "p", Config: changed})
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "etcd")
	assert.Contains(t, err.Error(), "fix:")
	_, err = a.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("other", name)})
	require.ErrorIs(t, err, ErrUnavailable)

	// etcd back: healthy, writes work and converge
	cluster.Start(0)
	cluster.WaitHealthy(0)
	for _, n := range []*Engine{a, b} {
		require.Eventually(t, func() bool { return !n.RegistryHealth().Degraded }, convergeWithin, 10*time.Millisecond)
	}
	// (the member that came back may hold an election: UNAVAILABLE, retried as a client would)
	require.Eventually(t, func() bool {
		_, derr := b.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p"})
		// FAILED_PRECONDITION: the resync after the refused attempt is still reconciling p
		require.True(t, derr == nil || errors.Is(derr, ErrUnavailable) || errors.Is(derr, ErrFailedPrecondition), "%v", derr)
		return derr == nil
	}, convergeWithin, 50*time.Millisecond, "delete once etcd is back")
	require.Eventually(t, gone(a, "p"), convergeWithin, 10*time.Millisecond)
}

// TestEtcdOversizedProviderIsRefusedAloneAndTheRegistryStaysUp: a provider
// record too large for one etcd key is refused as invalid, naming the limit
// and the fix; the registry is not marked degraded, so other changes go
// through.
func TestEtcdOversizedProviderIsRefusedAloneAndTheRegistryStaysUp(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	// Every config within the bounds (exporter config, description and
	// tags at their limits, about 140 KiB), but ten versions of it make
	// more than an etcd key holds.
	e := etcdNodeWith(t, cluster.Endpoints(), "/"+strings.ReplaceAll(t.Name(), "/", "_")+"/", 10)
	_, name := newSink(t, "s")
	big := func(v int) *pb.ProviderConfig {
		pc := withName(sinkProvider("big", name), fmt.Sprint(v))
		pc.Settings.Custom.Config = paddedConfig(t, name, maxSettingsBytes)
		pc.Description = strings.Repeat("d", maxDescriptionBytes)
		pc.Tags = make(map[string]string, maxTags)
		for i := range maxTags {
			pc.Tags[fmt.Sprintf("%0*d", maxTagKeyBytes, i)] = strings.Repeat("t", maxTagValueBytes)
		}
		return pc
	}
	_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: big(1)}) // stopped: updated in place
	require.NoError(t, err)
	v := 1
	for ; v <= 10; v++ {
		if _, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "big", Config: big(v + 1)}); err != nil {
			break
		}
	}
	require.Greater(t, v, 1, "the first versions fit: %v", err)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "too_large", ve.Issues[0].GetCode())
	assert.Contains(t, ve.Issues[0].GetMessage(), `"big"`)
	assert.False(t, e.RegistryHealth().Degraded, "one caller's oversized config does not degrade the registry")
	_, version, ok := stateOf(e, "big")
	require.True(t, ok)
	assert.Equal(t, uint64(v), version, "the refused version is not applied")
	t.Logf("version %d refused: %v", v+1, err)
	_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("small", name), AutoStart: true})
	require.NoError(t, err, "other changes still go through")
}
