package metricsmanagementextension_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// etcdOverrides puts the registry of a test collector on etcd.
func etcdOverrides(endpoints []string, prefix string) string {
	return fmt.Sprintf(`
extensions:
  metrics_management:
    storage: null
    registry_backend: etcd
    etcd:
      endpoints: [%s]
      prefix: %s
      request_timeout: 2s
      health_interval: 100ms
`, strings.Join(endpoints, ", "), prefix)
}

func providerAt(t *testing.T, c *testCollector, id string) *pb.Provider {
	t.Helper()
	list, err := c.mgmt.ListMetricsProviders(context.Background(), &pb.ListProvidersRequest{})
	require.NoError(t, err)
	for _, p := range list.GetProviders() {
		if p.GetConfig().GetProviderId() == id {
			return p
		}
	}
	return nil
}

func registryServing(c *testCollector) healthpb.HealthCheckResponse_ServingStatus {
	resp, err := healthpb.NewHealthClient(c.mgmtConn).Check(context.Background(),
		&healthpb.HealthCheckRequest{Service: "metricsmodule.v1.ProviderRegistry"})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}

// Two collectors share a provider registry on a 3-member etcd cluster:
// what one creates, updates and deletes runs, changes and stops on the
// other, with exact counts under steady load; concurrent updates abort one;
// with etcd down both keep exporting and refuse changes.
func TestEtcdRegistryFleet(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	ctx := context.Background()
	over := etcdOverrides(cluster.Endpoints(), "/fleet-test/")
	a := startCollector(t, t.TempDir(), "", over)
	b := startCollector(t, t.TempDir(), "", over)
	sink := startOTLPSink(t, "")
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, registryServing(a))

	// created on A: runs on B
	_, err := a.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: otlpProvider("otlp", sink.addr), AutoStart: true})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p := providerAt(t, b, "otlp")
		return p != nil && p.GetState() == pb.ProviderState_PROVIDER_STATE_RUNNING
	}, 10*time.Second, 10*time.Millisecond, "the provider created on A runs on B")

	// steady load through B while A updates the provider: exact counts
	l := startLoad(t, b.otlp, 10)
	l.waitFor(t, 200)
	p := otlpProvider("otlp", sink.addr)
	p.Name = "second"
	_, err = a.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{ProviderId: "otlp", Config: p, Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_ROLLING})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return providerAt(t, b, "otlp").GetVersion() == 2 }, 10*time.Second, 10*time.Millisecond)
	l.waitFor(t, 200)
	acked := l.finish()
	require.Eventually(t, func() bool { return len(sink.seqs()) == int(acked) }, 20*time.Second, 10*time.Millisecond, "every acknowledged point arrives")
	for seq, n := range sink.seqs() {
		require.Equal(t, 1, n, "seq %d arrived %d times", seq, n)
		require.Less(t, seq, acked)
	}

	// concurrent updates through A and B: one is ABORTED naming the current version
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []*testCollector{a, b} {
		wg.Go(func() {
			pc := otlpProvider("otlp", sink.addr)
			pc.Name = fmt.Sprintf("third-%d", i)
			_, errs[i] = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{ProviderId: "otlp", Config: pc})
		})
	}
	wg.Wait()
	var aborted int
	for _, err := range errs {
		if err != nil {
			require.Equal(t, codes.Aborted, status.Code(err), "%v", err)
			assert.Contains(t, err.Error(), "now at version 3")
			aborted++
		}
	}
	require.Equal(t, 1, aborted, "%v", errs)

	// etcd down: both keep exporting, report the registry degraded, refuse changes
	cluster.StopAll()
	for _, c := range []*testCollector{a, b} {
		require.Eventually(t, func() bool { return registryServing(c) == healthpb.HealthCheckResponse_NOT_SERVING },
			10*time.Second, 10*time.Millisecond, "the registry reports degraded")
	}
	before := sink.sink.DataPointCount()
	l = startLoad(t, a.otlp, 10)
	l.waitFor(t, 100)
	more := l.finish()
	require.Eventually(t, func() bool { return sink.sink.DataPointCount() == before+int(more) }, 20*time.Second, 10*time.Millisecond,
		"A keeps exporting every point with etcd down")
	_, err = b.mgmt.DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{ProviderId: "otlp"})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Contains(t, err.Error(), "etcd")

	// etcd back: healthy; deleted through B, stopped on A
	for i := range 3 {
		cluster.Start(i)
	}
	for i := range 3 {
		cluster.WaitHealthy(i)
	}
	for _, c := range []*testCollector{a, b} {
		require.Eventually(t, func() bool { return registryServing(c) == healthpb.HealthCheckResponse_SERVING },
			10*time.Second, 10*time.Millisecond, "the registry is healthy again")
	}
	// UNAVAILABLE while a member elects; FAILED_PRECONDITION while the resync after the refused
	// delete reconciles the provider: both are retried, as a client would
	require.Eventually(t, func() bool {
		_, err = b.mgmt.DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{ProviderId: "otlp"})
		code := status.Code(err)
		require.Contains(t, []codes.Code{codes.OK, codes.Unavailable, codes.FailedPrecondition}, code, "%v", err)
		return code == codes.OK
	}, 20*time.Second, 50*time.Millisecond, "delete once etcd is back")
	require.Eventually(t, func() bool { return providerAt(t, a, "otlp") == nil }, 10*time.Second, 10*time.Millisecond, "deleted everywhere")
}
