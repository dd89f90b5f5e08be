package metricsmanagementextension_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The primary's peer goes down: its traffic moves to the failover provider;
// the peer comes back: the traffic goes back. Nothing acknowledged is lost.
func TestFailover(t *testing.T) {
	t.Parallel()
	primaryAddr := freeAddr(t)
	primary := startOTLPSink(t, primaryAddr)
	standby := startOTLPSink(t, "")
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()

	sb := otlpProvider("standby", standby.addr)
	sb.Filter = &pb.MetricFilter{Names: []string{"none"}} // a standby: only failover traffic
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: sb, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	p := otlpProvider("primary", primaryAddr)
	p.Failover = &pb.FailoverSettings{FailoverProviderId: "standby"}
	p.HealthCheck = &pb.HealthCheckSettings{Window: durationpb.New(2 * time.Second)}
	p.GetSettings().GetOpentelemetry().Timeout = durationpb.New(time.Second)
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: p, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	health := func() pb.HealthStatus {
		st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "primary"})
		require.NoError(t, err)
		return st.GetHealth()
	}

	l := startLoad(t, c.otlp, 10)
	l.waitFor(t, 300)
	require.Empty(t, standby.seqs())

	before := primary
	primary.stop(t)
	require.Eventually(t, func() bool { return health() == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(standby.seqs()) > 300 }, 30*time.Second, 10*time.Millisecond, "the standby takes the traffic")

	primary = startOTLPSink(t, primaryAddr)
	require.Eventually(t, func() bool { return health() == pb.HealthStatus_HEALTH_STATUS_HEALTHY }, 60*time.Second, 10*time.Millisecond,
		"probes see the primary recover")
	back := int64(l.acked.Load())
	require.Eventually(t, func() bool {
		n := 0
		for seq := range primary.seqs() {
			if seq >= back {
				n++
			}
		}
		return n >= 300
	}, 30*time.Second, 10*time.Millisecond, "the primary gets its traffic back")
	total := l.finish()
	require.Eventually(t, func() bool {
		old, ps, ss := before.seqs(), primary.seqs(), standby.seqs()
		for seq := range total {
			if old[seq]+ps[seq]+ss[seq] == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "every acknowledged data point is delivered")

	// Everything acknowledged is at the primary (before or after its
	// restart) or at the standby.
	old, ps, ss := before.seqs(), primary.seqs(), standby.seqs()
	lost := 0
	for seq := range total {
		if old[seq]+ps[seq]+ss[seq] == 0 {
			lost++
		}
	}
	assert.Zero(t, lost, "acknowledged data points that reached no destination")
	st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "primary", IncludeHealthHistory: true})
	require.NoError(t, err)
	assert.Zero(t, st.GetStats().GetDatapointsFailed(), "failed batches went to the standby")
	var seen []pb.HealthStatus
	for _, ev := range st.GetHealthHistory() {
		seen = append(seen, ev.GetStatus())
	}
	assert.Subset(t, seen, []pb.HealthStatus{pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, pb.HealthStatus_HEALTH_STATUS_HEALTHY})
}
