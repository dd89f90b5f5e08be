package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// electedNode is an engine on etcd whose log lines are kept.
type electedNode struct {
	*Engine
	logs *observer.ObservedLogs
}

func startElectedNode(t *testing.T, eps []string, prefix, identity string, ttl time.Duration) *electedNode {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	tel := componenttest.NewNopTelemetrySettings()
	tel.Logger = zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())).With(zap.String("node", identity))
	e := NewEngine(Settings{
		TelemetrySettings: tel, MaxVersions: 5, MaxBackups: 10, LookupHost: noDNS,
		Etcd: &EtcdConfig{Endpoints: eps, Prefix: prefix, DialTimeout: 5 * time.Second, RequestTimeout: 2 * time.Second,
			HealthInterval: 100 * time.Millisecond, LeaseTTL: ttl, Identity: identity},
	})
	require.NoError(t, e.Start(context.Background(), distribution(), nil))
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return &electedNode{Engine: e, logs: logs}
}

func leaderAmong(nodes []*electedNode) *electedNode {
	var out *electedNode
	for _, n := range nodes {
		if n.RegistryHealth().Leading {
			if out != nil {
				return nil // two think they lead: not settled
			}
			out = n
		}
	}
	return out
}

func (n *electedNode) count(msg string) int { return n.logs.FilterMessage(msg).Len() }

const (
	logScheduledDeleted = "Deleted provider (scheduled)"
	logDoneElsewhere    = "Scheduled deletion done by another node"
)

func TestEtcdScheduledDeletionRunsOnTheLeaderOnly(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	prefix := "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
	nodes := []*electedNode{
		startElectedNode(t, eps[:1], prefix, "node-a", 2*time.Second),
		startElectedNode(t, eps[1:2], prefix, "node-b", 2*time.Second),
	}
	var lead *electedNode
	require.Eventually(t, func() bool { lead = leaderAmong(nodes); return lead != nil }, 20*time.Second, 10*time.Millisecond)
	for _, n := range nodes {
		want := "node-a"
		if lead == nodes[1] {
			want = "node-b"
		}
		require.Eventually(t, func() bool { return n.RegistryHealth().Leader == want }, 10*time.Second, 10*time.Millisecond, "every node sees who leads")
	}
	sink, name := newSink(t, "s")
	_, err := nodes[0].Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name), AutoStart: true})
	require.NoError(t, err)
	for _, n := range nodes {
		require.Eventually(t, runsAt(n.Engine, "p", 1), convergeWithin, 10*time.Millisecond)
	}
	for i, n := range nodes {
		require.NoError(t, n.Router().ConsumeMetrics(ctx, gauges("m", i*10, 10)))
	}
	_, err = nodes[1].Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED,
		ScheduledTime: timestamppb.New(time.Now().Add(300 * time.Millisecond))})
	require.NoError(t, err)
	for _, n := range nodes {
		require.Eventually(t, gone(n.Engine, "p"), convergeWithin, 10*time.Millisecond)
	}
	assert.Equal(t, 20, sink.pointCount(), "every node drained its queue")
	// the log line follows the removal
	require.Eventually(t, func() bool { return lead.count(logScheduledDeleted) == 1 }, convergeWithin, 10*time.Millisecond, "the leader ran the deletion")
	for _, n := range nodes {
		assert.Zero(t, n.count(logDoneElsewhere), "no node raced for it")
		if n != lead {
			assert.Zero(t, n.count(logScheduledDeleted), "a follower does not run it")
		}
	}
}

func TestEtcdScheduledDeletionIsTakenOverWhenTheLeaderDies(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	prefix := "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
	const ttl = 2 * time.Second
	nodes := []*electedNode{
		startElectedNode(t, eps[:1], prefix, "node-a", ttl),
		startElectedNode(t, eps[1:2], prefix, "node-b", ttl),
	}
	var lead *electedNode
	require.Eventually(t, func() bool { lead = leaderAmong(nodes); return lead != nil }, 20*time.Second, 10*time.Millisecond)
	other := nodes[0]
	if lead == nodes[0] {
		other = nodes[1]
	}
	_, name := newSink(t, "s")
	_, err := other.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name), AutoStart: true})
	require.NoError(t, err)
	require.Eventually(t, runsAt(lead.Engine, "p", 1), convergeWithin, 10*time.Millisecond)
	// the leader dies: its etcd client goes away without resigning; its
	// lease (and so its leadership in etcd) lasts up to ttl more
	require.NoError(t, lead.etcd.cli.Close())
	// due at once: the follower's timer fires while the dead leader still holds the lease
	_, err = other.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED,
		ScheduledTime: timestamppb.New(time.Now().Add(50 * time.Millisecond))})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return other.RegistryHealth().Leading }, ttl+10*time.Second, 10*time.Millisecond,
		"the other node leads once the dead leader's lease expired")
	require.Eventually(t, gone(other.Engine, "p"), convergeWithin, 10*time.Millisecond, "the new leader runs the due deletion")
	require.Eventually(t, func() bool { return other.count(logScheduledDeleted) == 1 }, convergeWithin, 10*time.Millisecond)
	// a node started afterwards finds no provider: the deletion reached etcd
	late := startElectedNode(t, eps[2:], prefix, "node-c", ttl)
	_, _, ok := stateOf(late.Engine, "p")
	assert.False(t, ok)
}
