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

// A steady load runs through the pipeline while the provider is updated
// with ROLLING, then with a failing BLUE_GREEN candidate (rolled back), then
// with a healthy BLUE_GREEN candidate (promoted), and finally deleted with
// GRACEFUL: every data point acknowledged before the deletion was exported,
// and no destination got one twice.
func TestSteadyLoadThroughUpdatesAndGracefulDelete(t *testing.T) {
	t.Parallel()
	a := startOTLPSink(t, "")
	b := startOTLPSink(t, "")
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()

	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: otlpProvider("load", a.addr), ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	l := startLoad(t, c.otlp, 10)
	l.waitFor(t, 500)

	// ROLLING: the same destination with another compression.
	rolling := otlpProvider("load", a.addr)
	rolling.GetSettings().GetOpentelemetry().Compression = "none"
	up, err := c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{
		ProviderId: "load", Config: rolling,
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_ROLLING, ExpectedVersion: 1, Backup: true,
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), up.GetProvider().GetVersion())
	assert.NotEmpty(t, up.GetBackupId())
	l.waitFor(t, 500)

	// BLUE_GREEN to a destination that is down: rolled back automatically.
	down := otlpProvider("load", freeAddr(t))
	up, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{
		ProviderId: "load", Config: down,
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(10 * time.Second),
	})
	require.NoError(t, err)
	assert.True(t, up.GetRolledBack(), up.GetMessage())
	assert.Equal(t, uint64(2), up.GetProvider().GetVersion(), "still version 2")
	l.waitFor(t, 500)

	// BLUE_GREEN to destination b: b gets a copy while it is verified, then everything.
	up, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{
		ProviderId: "load", Config: otlpProvider("load", b.addr),
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(time.Second),
	})
	require.NoError(t, err)
	assert.False(t, up.GetRolledBack(), up.GetMessage())
	assert.Equal(t, uint64(4), up.GetProvider().GetVersion(), "version 3 was the rolled back candidate")
	l.waitFor(t, 500)

	// GRACEFUL delete under load.
	before := l.acked.Load()
	del, err := c.mgmt.DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{
		ProviderId:      "load",
		CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_GRACEFUL, DrainTimeout: durationpb.New(30 * time.Second),
	})
	require.NoError(t, err)
	assert.True(t, del.GetDeleted())
	assert.Zero(t, del.GetDroppedDatapoints())
	total := l.finish()

	sa, sb := a.seqs(), b.seqs()
	var lost, dupA, dupB, bOnly, late int
	for seq := range total {
		switch {
		case sa[seq] > 1:
			dupA++
		case sb[seq] > 1:
			dupB++
		}
		if seq < before && sa[seq]+sb[seq] == 0 {
			lost++
		}
		if sb[seq] > 0 && sa[seq] == 0 {
			bOnly++
		}
		if seq >= before && sa[seq]+sb[seq] > 0 {
			late++
		}
	}
	t.Logf("acknowledged %d data points before the deletion, %d in all; a got %d, b got %d (%d only at b); %d sent during the deletion were exported",
		before, total, len(sa), len(sb), bOnly, late)
	assert.Zero(t, lost, "data points acknowledged before the deletion and exported nowhere")
	assert.Zero(t, dupA, "duplicates at a")
	assert.Zero(t, dupB, "duplicates at b")
	assert.Positive(t, bOnly, "b took over")
	for seq := range sb {
		if sa[seq] > 0 {
			continue
		}
		// b got it alone: it came after the promotion, so everything after it is at b too.
		for later := seq; later < before; later++ {
			if sb[later] == 0 {
				t.Fatalf("seq %d is at b only, but the later seq %d is not at b", seq, later)
			}
		}
		break
	}
}
