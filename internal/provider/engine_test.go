package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var ctx = context.Background()

func create(t *testing.T, e *Engine, pc *pb.ProviderConfig) *pb.CreateProviderResponse {
	t.Helper()
	resp, err := e.Create(ctx, &pb.CreateProviderRequest{Config: pc, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	return resp
}

func TestCreate(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	sink, name := newSink(t, "a")

	// dry run: builds, starts nothing
	dry, err := e.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("a", name), DryRun: true, AutoStart: true})
	require.NoError(t, err)
	assert.True(t, dry.GetDryRun())
	assert.False(t, dry.GetCreated())
	assert.Equal(t, "sink/providers/a/g1/v1", dry.GetProvider().GetExporterId())
	assert.Zero(t, sink.started.Load())
	_, err = e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "a"})
	require.ErrorIs(t, err, ErrNotFound)

	resp := create(t, e, sinkProvider("a", name))
	assert.True(t, resp.GetCreated())
	p := resp.GetProvider()
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, p.GetState())
	assert.Equal(t, uint64(1), p.GetVersion())
	assert.Equal(t, "sink", p.GetExporterType())
	assert.Equal(t, "sink/providers/a/g1/v1", p.GetExporterId())
	assert.EqualValues(t, 1, sink.started.Load())

	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 5)))
	eventually(t, func() bool { return sink.pointCount() == 5 }, "data reaches the provider")

	// idempotent by id: the same config returns the provider, another is refused
	again := create(t, e, sinkProvider("a", name))
	assert.False(t, again.GetCreated())
	assert.Equal(t, uint64(1), again.GetProvider().GetVersion())
	other := sinkProvider("a", name)
	other.Name = "renamed"
	_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: other, AutoStart: true})
	require.ErrorIs(t, err, ErrAlreadyExists)

	// created stopped: not routed
	sinkB, nameB := newSink(t, "b")
	stopped, err := e.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("b", nameB)})
	require.NoError(t, err)
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_STOPPED, stopped.GetProvider().GetState())
	assert.Equal(t, 1, e.Router().Routes())
	assert.Zero(t, sinkB.started.Load())
}

func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)

	_, err := e.Create(ctx, &pb.CreateProviderRequest{})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "config", ve.Issues[0].GetField())

	bad := sinkProvider("Bad Id", "x")
	bad.Filter = &pb.MetricFilter{Names: []string{"["}}
	_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: bad})
	require.ErrorAs(t, err, &ve)
	assert.ElementsMatch(t, []string{"config.provider_id", "config.filter.names[0]"}, fieldsOf(ve))

	noName := sinkProvider("x", "")
	noName.GetSettings().GetCustom().Config = nil
	_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: noName, ValidateConfig: true, AutoStart: true})
	require.ErrorIs(t, err, ErrFailedPrecondition, "the exporter refuses to be created")

	pg := &pb.ProviderConfig{
		ProviderId: "prod-prometheus", Type: pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
		Settings: &pb.ProviderSettings{Prometheus: &pb.PrometheusSettings{PushGatewayUrl: "http://pushgateway:9091", JobName: "myapp"}},
	}
	_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: pg, ValidateConfig: true, AutoStart: true})
	var me *MissingExporterError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "pushgateway", me.Type)

	// Without validate_config it is created, and FAILED until an update fixes it.
	resp, err := e.Create(ctx, &pb.CreateProviderRequest{Config: pg, AutoStart: true})
	require.NoError(t, err)
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_FAILED, resp.GetProvider().GetState())
	assert.Contains(t, resp.GetProvider().GetLastError(), "pushgateway")
	require.NotEmpty(t, resp.GetValidationIssues())
	assert.Equal(t, pb.Severity_SEVERITY_WARNING, resp.GetValidationIssues()[0].GetSeverity())
}

func fieldsOf(ve *ValidationError) []string {
	var out []string
	for _, i := range ve.Issues {
		if i.GetSeverity() == pb.Severity_SEVERITY_ERROR {
			out = append(out, i.GetField())
		}
	}
	return out
}

func TestUpdateVersionsAndRollback(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	e := newTestEngine(t, distribution(), store)
	a, nameA := newSink(t, "a")
	b, nameB := newSink(t, "b")
	create(t, e, sinkProvider("p", nameA))

	up := func(req *pb.UpdateProviderRequest) (*pb.UpdateProviderResponse, error) {
		req.ProviderId = "p"
		return e.Update(ctx, req)
	}
	// validate only
	resp, err := up(&pb.UpdateProviderRequest{Config: sinkProvider("", nameB), ValidateOnly: true})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), resp.GetProvider().GetVersion())
	assert.Contains(t, resp.GetMessage(), "validate_only")

	// expected version mismatch
	_, err = up(&pb.UpdateProviderRequest{Config: sinkProvider("", nameB), ExpectedVersion: 7})
	require.ErrorIs(t, err, ErrAborted)

	// rolling to sink b, with a backup of version 1
	resp, err = up(&pb.UpdateProviderRequest{Config: sinkProvider("", nameB), ExpectedVersion: 1, Backup: true})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), resp.GetProvider().GetVersion())
	assert.Equal(t, uint64(1), resp.GetPreviousVersion())
	assert.Equal(t, pb.UpdateStrategy_UPDATE_STRATEGY_ROLLING, resp.GetStrategy())
	backupID := resp.GetBackupId()
	assert.NotEmpty(t, backupID)
	assert.Equal(t, "sink/providers/p/g1/v2", resp.GetProvider().GetExporterId())
	assert.EqualValues(t, 1, a.stopped.Load(), "the old exporter is stopped")
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 3)))
	eventually(t, func() bool { return b.pointCount() == 3 }, "the new version gets the data")
	assert.Zero(t, a.pointCount())

	// same config: nothing to do
	resp, err = up(&pb.UpdateProviderRequest{Config: sinkProvider("", nameB)})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), resp.GetProvider().GetVersion())
	assert.Contains(t, resp.GetMessage(), "nothing was changed")

	// mismatching id, both config and rollback, unknown version
	_, err = up(&pb.UpdateProviderRequest{Config: sinkProvider("other", nameA)})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	_, err = up(&pb.UpdateProviderRequest{Config: sinkProvider("", nameA), RollbackToVersion: 1})
	require.ErrorAs(t, err, &ve)
	_, err = up(&pb.UpdateProviderRequest{RollbackToVersion: 9})
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "rollback_to_version", ve.Issues[0].GetField())

	// rollback to version 1 is version 3, with recreate
	resp, err = up(&pb.UpdateProviderRequest{RollbackToVersion: 1, Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), resp.GetProvider().GetVersion())
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 3, 2)))
	eventually(t, func() bool { return a.pointCount() == 2 }, "version 3 exports to sink a again")

	// history: 1, 2, 3 with notes
	rec := e.providers["p"].rec
	require.Len(t, rec.Versions, 3)
	assert.Equal(t, "rollback to version 1", rec.Versions[2].Note)

	// the history is bounded (MaxVersions 5), the current version stays
	for i := range 6 {
		_, err = up(&pb.UpdateProviderRequest{Config: withName(sinkProvider("", nameA), fmt.Sprint(i))})
		require.NoError(t, err)
	}
	e.mu.Lock()
	assert.Len(t, e.providers["p"].rec.Versions, 5)
	assert.Equal(t, uint64(9), e.providers["p"].rec.Version)
	e.mu.Unlock()
	keys := store.keys()
	assert.Contains(t, keys, "providers/b/"+backupID)
	assert.Len(t, keys, 3, "the index, the provider and the one backup asked for")
}

func withName(pc *pb.ProviderConfig, name string) *pb.ProviderConfig {
	pc.Name = name
	return pc
}

func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	e := newTestEngine(t, distribution(), store)
	a, nameA := newSink(t, "a")
	create(t, e, sinkProvider("p", nameA))
	_, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: withName(sinkProvider("", nameA), "v2")})
	require.NoError(t, err)

	// dry run changes nothing
	dry, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", DryRun: true, Backup: true})
	require.NoError(t, err)
	assert.True(t, dry.GetDryRun())
	assert.Empty(t, dry.GetBackupId())
	assert.Contains(t, dry.GetMessage(), "would stop")
	assert.Equal(t, 1, e.Router().Routes())

	del, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", Backup: true, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)
	assert.True(t, del.GetDeleted())
	require.NotEmpty(t, del.GetBackupId())
	assert.Equal(t, 0, e.Router().Routes())
	assert.EqualValues(t, 2, a.stopped.Load(), "version 1 by the update, version 2 by the deletion")
	assert.Contains(t, store.keys(), "providers/b/"+del.GetBackupId())
	assert.NotContains(t, store.keys(), "providers/p/p")

	// restore (dry run first), under its own id and under another
	_, err = e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: "nope"})
	require.ErrorIs(t, err, ErrNotFound)
	rd, err := e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), DryRun: true})
	require.NoError(t, err)
	assert.True(t, rd.GetDryRun())
	r, err := e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), AutoStart: true})
	require.NoError(t, err)
	assert.True(t, r.GetCreated())
	assert.Equal(t, "p", r.GetProvider().GetConfig().GetProviderId())
	assert.Equal(t, "v2", r.GetProvider().GetConfig().GetName())
	assert.Equal(t, uint64(3), r.GetProvider().GetVersion(), "versions continue after the restored history")
	e.mu.Lock()
	assert.Len(t, e.providers["p"].rec.Versions, 3)
	e.mu.Unlock()
	r2, err := e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), Config: &pb.ProviderConfig{ProviderId: "p2"}})
	require.NoError(t, err)
	assert.Equal(t, "p2", r2.GetProvider().GetConfig().GetProviderId())
	_, err = e.Create(ctx, &pb.CreateProviderRequest{RestoreBackupId: del.GetBackupId(), Config: &pb.ProviderConfig{ProviderId: "p3", Name: "x"}})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
}

func TestDeleteStrategies(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), newMemStorage())

	t.Run("graceful drains", func(t *testing.T) {
		s, name := newSink(t, "g")
		s.gate = make(chan struct{})
		pc := sinkProvider("graceful", name)
		pc.Limits = &pb.ResourceLimits{Concurrency: 1}
		create(t, e, pc)
		for i := range 5 {
			require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", i*10, 10)))
		}
		done := make(chan *pb.DeleteProviderResponse)
		go func() {
			resp, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "graceful", DrainTimeout: durationpb.New(time.Minute)})
			assert.NoError(t, err)
			done <- resp
		}()
		eventually(t, func() bool { return e.Router().Routes() == 0 }, "stops taking data at once")
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 100, 10)))
		close(s.gate)
		resp := <-done
		assert.True(t, resp.GetDeleted())
		assert.EqualValues(t, 50, resp.GetDrainedDatapoints())
		assert.Zero(t, resp.GetDroppedDatapoints())
		assert.Equal(t, 50, s.pointCount())
	})
	t.Run("immediate drops", func(t *testing.T) {
		s, name := newSink(t, "i")
		s.gate = make(chan struct{})
		defer close(s.gate)
		pc := sinkProvider("immediate", name)
		pc.Limits = &pb.ResourceLimits{Concurrency: 1}
		create(t, e, pc)
		for i := range 4 {
			require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", i*10, 10)))
		}
		resp, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "immediate", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
		require.NoError(t, err)
		assert.True(t, resp.GetDeleted())
		assert.EqualValues(t, 40, resp.GetDroppedDatapoints())
		assert.Zero(t, s.pointCount())
	})
	t.Run("graceful timeout drops the rest", func(t *testing.T) {
		s, name := newSink(t, "t")
		s.gate = make(chan struct{})
		defer close(s.gate)
		pc := sinkProvider("timeout", name)
		pc.Limits = &pb.ResourceLimits{Concurrency: 1}
		create(t, e, pc)
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 10)))
		resp, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "timeout", DrainTimeout: durationpb.New(50 * time.Millisecond)})
		require.NoError(t, err)
		assert.EqualValues(t, 10, resp.GetDroppedDatapoints())
	})
	t.Run("background", func(t *testing.T) {
		s, name := newSink(t, "b")
		s.gate = make(chan struct{})
		create(t, e, sinkProvider("background", name))
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 10)))
		resp, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "background", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_BACKGROUND})
		require.NoError(t, err)
		assert.False(t, resp.GetDeleted())
		assert.Equal(t, pb.ProviderState_PROVIDER_STATE_DRAINING, resp.GetState())
		_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "background", Config: sinkProvider("", name)})
		require.ErrorIs(t, err, ErrFailedPrecondition)
		close(s.gate)
		eventually(t, func() bool {
			_, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "background"})
			return errors.Is(err, ErrNotFound)
		}, "gone once drained")
		assert.Equal(t, 10, s.pointCount())
	})
	t.Run("scheduled", func(t *testing.T) {
		_, name := newSink(t, "s")
		create(t, e, sinkProvider("scheduled", name))
		_, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "scheduled", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED})
		var ve *ValidationError
		require.ErrorAs(t, err, &ve)
		_, err = e.Delete(ctx, &pb.DeleteProviderRequest{
			ProviderId: "scheduled", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED,
			ScheduledTime: timestamppb.New(time.Now().Add(-time.Second)),
		})
		require.ErrorAs(t, err, &ve)
		at := time.Now().Add(200 * time.Millisecond)
		resp, err := e.Delete(ctx, &pb.DeleteProviderRequest{
			ProviderId: "scheduled", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED,
			ScheduledTime: timestamppb.New(at),
		})
		require.NoError(t, err)
		assert.False(t, resp.GetDeleted())
		assert.Equal(t, pb.ProviderState_PROVIDER_STATE_DELETING, resp.GetState())
		assert.True(t, resp.GetScheduledTime().AsTime().Equal(at))
		eventually(t, func() bool {
			_, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "scheduled"})
			return errors.Is(err, ErrNotFound)
		}, "deleted at the scheduled time")
	})
	_, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "nope"})
	require.ErrorIs(t, err, ErrNotFound)
}

// TestZeroLossUnderUpdates sends unique data points from several goroutines
// while the provider is switched back and forth between two sinks with
// ROLLING updates, then deleted gracefully: every point sent is exported
// exactly once.
func TestZeroLossUnderUpdates(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	a, nameA := newSink(t, "a")
	b, nameB := newSink(t, "b")
	create(t, e, sinkProvider("p", nameA))

	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			// A steady load (a batch a millisecond per producer), not a flood:
			// a provider drops what overflows its queue, by design.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				from := next.Add(10) - 10
				assert.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("load", int(from), 10)))
			}
		})
	}
	for i := range 10 {
		name := nameA
		if i%2 == 0 {
			name = nameB
		}
		at := next.Load()
		eventually(t, func() bool { return next.Load() > at+300 }, "load flows")
		_, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: sinkProvider("", name)})
		require.NoError(t, err)
	}
	close(stop)
	wg.Wait()
	resp, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p", DrainTimeout: durationpb.New(time.Minute)})
	require.NoError(t, err)
	assert.Zero(t, resp.GetDroppedDatapoints())

	_, sa := a.snapshot()
	_, sb := b.snapshot()
	sent := next.Load()
	var lost, dup []int64
	for seq := range sent {
		switch sa[seq] + sb[seq] {
		case 0:
			lost = append(lost, seq)
		case 1:
		default:
			dup = append(dup, seq)
		}
	}
	assert.Empty(t, lost, "lost data points")
	assert.Empty(t, dup, "duplicated data points")
	assert.EqualValues(t, sent, len(sa)+len(sb))
	t.Logf("sent %d data points: %d to a, %d to b", sent, len(sa), len(sb))
}

func TestBlueGreen(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	a, nameA := newSink(t, "a")
	b, nameB := newSink(t, "b")
	create(t, e, sinkProvider("p", nameA))

	// A candidate that fails is rolled back, and the old one never stopped.
	b.fail.Store(true)
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			from := sent.Add(10) - 10
			assert.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("load", int(from), 10)))
		}
	})
	resp, err := e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: sinkProvider("", nameB),
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(10 * time.Second),
	})
	require.NoError(t, err)
	assert.True(t, resp.GetRolledBack())
	assert.Contains(t, resp.GetMessage(), "rolled back")
	assert.Equal(t, uint64(1), resp.GetProvider().GetVersion())
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, resp.GetProvider().GetState())
	assert.Zero(t, a.stopped.Load())
	e.mu.Lock()
	rec := e.providers["p"].rec
	require.Len(t, rec.Versions, 2)
	assert.False(t, rec.Versions[1].Applied, "the failed candidate is kept in the history, not applied")
	e.mu.Unlock()

	// A healthy candidate is promoted after the verify period.
	b.fail.Store(false)
	resp, err = e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: sinkProvider("", nameB),
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(300 * time.Millisecond),
	})
	require.NoError(t, err)
	assert.False(t, resp.GetRolledBack(), resp.GetMessage())
	assert.Equal(t, uint64(3), resp.GetProvider().GetVersion())
	assert.EqualValues(t, 1, a.stopped.Load())
	close(stop)
	wg.Wait()
	_, err = e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p"})
	require.NoError(t, err)

	_, sa := a.snapshot()
	_, sb := b.snapshot()
	var lost, dup int
	for seq := range sent.Load() {
		if sa[seq] == 0 && sb[seq] == 0 {
			lost++
		}
		if sa[seq] > 1 || sb[seq] > 1 {
			dup++
		}
	}
	assert.Zero(t, lost, "a has everything until the promotion, b everything from its verification on")
	assert.Zero(t, dup)
}

func TestFailover(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	p, nameP := newSink(t, "primary")
	f, nameF := newSink(t, "failover")
	fpc := sinkProvider("standby", nameF)
	fpc.Filter = &pb.MetricFilter{Names: []string{"standby_*"}} // gets only the primary's traffic here
	create(t, e, fpc)
	pc := sinkProvider("primary", nameP)
	pc.Failover = &pb.FailoverSettings{FailoverProviderId: "standby"}
	pc.HealthCheck = &pb.HealthCheckSettings{Window: durationpb.New(time.Second)}
	create(t, e, pc)

	seq := 0
	send := func() {
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("load", seq, 5)))
		seq += 5
	}
	health := func(id string) pb.HealthStatus {
		r, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: id})
		require.NoError(t, err)
		return r.GetHealth()
	}
	send()
	eventually(t, func() bool { return p.pointCount() == 5 }, "the primary exports")

	p.fail.Store(true)
	eventually(t, func() bool { send(); return health("primary") == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY }, "the primary turns unhealthy")
	fBefore := f.pointCount()
	eventually(t, func() bool { send(); return f.pointCount() > fBefore+20 }, "the failover takes the traffic")

	p.fail.Store(false)
	pBefore := p.pointCount()
	eventually(t, func() bool { send(); return health("primary") == pb.HealthStatus_HEALTH_STATUS_HEALTHY }, "probes see the recovery")
	eventually(t, func() bool { send(); return p.pointCount() > pBefore+20 }, "the primary gets its traffic back")
	backFrom := int64(seq)
	for range 10 {
		send()
	}
	// Nothing was lost: every point reaches the primary or the failover.
	delivered := func() (ps, fs map[int64]int, missing int) {
		_, ps = p.snapshot()
		_, fs = f.snapshot()
		for s := range int64(seq) {
			if ps[s]+fs[s] == 0 {
				missing++
			}
		}
		return ps, fs, missing
	}
	eventually(t, func() bool { _, _, missing := delivered(); return missing == 0 }, "every data point is delivered")
	_, fs, _ := delivered()
	for s := backFrom; s < int64(seq); s++ {
		assert.Zero(t, fs[s], "seq %d: the failover gets nothing once the primary is back", s)
	}
	st, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "primary", IncludeHealthHistory: true})
	require.NoError(t, err)
	assert.Zero(t, st.GetStats().GetDatapointsFailed(), "failed batches went to the failover")
	assert.NotZero(t, st.GetStats().GetExportErrors())
	var states []pb.HealthStatus
	for _, ev := range st.GetHealthHistory() {
		states = append(states, ev.GetStatus())
	}
	assert.Contains(t, states, pb.HealthStatus_HEALTH_STATUS_UNHEALTHY)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, states[len(states)-1])
}

func TestListAndStats(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	for i := range 7 {
		_, name := newSink(t, fmt.Sprint(i))
		pc := sinkProvider(fmt.Sprintf("p%d", i), name)
		pc.Name = fmt.Sprintf("name-%d", 9-i)
		pc.Tags = map[string]string{"team": []string{"red", "blue"}[i%2]}
		_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: pc, AutoStart: i < 5})
		require.NoError(t, err)
	}
	resp, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.EqualValues(t, 7, resp.GetTotalCount())
	assert.Equal(t, map[string]int32{"PROVIDER_STATE_RUNNING": 5, "PROVIDER_STATE_STOPPED": 2}, resp.GetCounts().GetByState())
	assert.Equal(t, map[string]int32{"PROVIDER_TYPE_CUSTOM": 7}, resp.GetCounts().GetByType())

	// filter, sort descending by name, pages of 2
	req := &pb.ListProvidersRequest{
		Tags: map[string]string{"team": "red"}, States: []pb.ProviderState{pb.ProviderState_PROVIDER_STATE_RUNNING},
		SortBy: pb.ProviderSortField_PROVIDER_SORT_FIELD_NAME, Descending: true, PageSize: 2,
	}
	var ids []string
	for {
		page, err := e.List(ctx, req)
		require.NoError(t, err)
		assert.EqualValues(t, 3, page.GetTotalCount())
		for _, p := range page.GetProviders() {
			ids = append(ids, p.GetConfig().GetProviderId())
		}
		if page.GetNextPageToken() == "" {
			break
		}
		req.PageToken = page.GetNextPageToken()
	}
	assert.Equal(t, []string{"p0", "p2", "p4"}, ids)

	// a token of another query is refused
	other := proto.Clone(req).(*pb.ListProvidersRequest)
	other.Descending = false
	_, err = e.List(ctx, other)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "page_token", ve.Issues[0].GetField())

	// stats: sent, dropped by the rate limit, latency, top metrics
	s, name := newSink(t, "stats")
	pc := sinkProvider("stats", name)
	pc.Limits = &pb.ResourceLimits{MaxDatapointsPerSecond: 50, MaxBatchSize: 10}
	pc.Filter = &pb.MetricFilter{Names: []string{"keep_*"}}
	create(t, e, pc)
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("keep_a", 0, 30)))
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("keep_b", 0, 15)))
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("drop_me", 0, 100)))
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("keep_c", 0, 40)))
	eventually(t, func() bool { return s.pointCount() == 45 }, "")
	st, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "stats", IncludeTopMetrics: true, IncludeHealthHistory: true, TopN: 1})
	require.NoError(t, err)
	assert.EqualValues(t, 45, st.GetStats().GetDatapointsSent())
	assert.EqualValues(t, 40, st.GetStats().GetDatapointsDropped(), "the rate limit dropped keep_c; the filter's drop_me is not counted")
	assert.Equal(t, 10, s.maxBatch, "max_batch_size splits batches")
	assert.NotNil(t, st.GetStats().GetExportLatency().GetP99())
	assert.Positive(t, st.GetStats().GetThroughput_1M())
	assert.Positive(t, st.GetStats().GetBytesSent())
	assert.EqualValues(t, 1000, st.GetStats().GetQueueCapacity())
	require.Len(t, st.GetTopMetrics(), 1)
	assert.Equal(t, "keep_a", st.GetTopMetrics()[0].GetName())
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, st.GetHealth())
	require.NotEmpty(t, st.GetHealthHistory())
}

func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	a, nameA := newSink(t, "a")
	_, nameB := newSink(t, "b")
	secret := sinkProvider("secret", nameA)
	secret.Security = &pb.SecurityConfig{BearerToken: "tok"}
	{
		e := NewEngine(Settings{TelemetrySettings: newTestEngine(t, distribution(), nil).set.TelemetrySettings, LookupHost: noDNS})
		require.NoError(t, e.Start(ctx, distribution(), store))
		create(t, e, sinkProvider("run", nameA))
		_, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "run", Config: withName(sinkProvider("", nameA), "two")})
		require.NoError(t, err)
		_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("stopped", nameB)})
		require.NoError(t, err)
		_, err = e.Create(ctx, &pb.CreateProviderRequest{Config: secret})
		require.NoError(t, err)
		_, err = e.Delete(ctx, &pb.DeleteProviderRequest{
			ProviderId: "stopped", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED,
			ScheduledTime: timestamppb.New(time.Now().Add(time.Hour)),
		})
		require.NoError(t, err)
		require.NoError(t, e.Shutdown(ctx))
	}
	e := newTestEngine(t, distribution(), store)
	resp, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	byID := map[string]*pb.Provider{}
	for _, p := range resp.GetProviders() {
		byID[p.GetConfig().GetProviderId()] = p
	}
	require.Len(t, byID, 3)
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, byID["run"].GetState())
	assert.Equal(t, uint64(2), byID["run"].GetVersion())
	assert.Equal(t, "two", byID["run"].GetConfig().GetName())
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_STOPPED, byID["stopped"].GetState())
	assert.Equal(t, Redacted, byID["secret"].GetConfig().GetSecurity().GetBearerToken())
	e.mu.Lock()
	assert.Equal(t, "tok", e.providers["secret"].cfg.GetSecurity().GetBearerToken(), "the stored config keeps the secret")
	assert.NotNil(t, e.providers["stopped"].rec.DeleteAt, "the scheduled deletion survives")
	e.mu.Unlock()

	before := a.pointCount()
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 4)))
	eventually(t, func() bool { return a.pointCount() == before+4 }, "the restored provider runs")
	r, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "run", RollbackToVersion: 1})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), r.GetProvider().GetVersion())
	assert.Empty(t, r.GetProvider().GetConfig().GetName())
}

func TestUpdateStoppedAndFailed(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	s, name := newSink(t, "s")
	_, err := e.Create(ctx, &pb.CreateProviderRequest{Config: sinkProvider("p", name)})
	require.NoError(t, err)
	resp, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: withName(sinkProvider("", name), "x")})
	require.NoError(t, err)
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_STOPPED, resp.GetProvider().GetState())
	assert.Equal(t, uint64(2), resp.GetProvider().GetVersion())
	// RECREATE alone starts it
	resp, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE})
	require.NoError(t, err)
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, resp.GetProvider().GetState())
	assert.Equal(t, uint64(2), resp.GetProvider().GetVersion())
	assert.EqualValues(t, 1, s.started.Load())

	// A FAILED provider starts with the update that fixes it.
	bad := &pb.ProviderConfig{
		ProviderId: "f", Type: pb.ProviderType_PROVIDER_TYPE_STATSD,
		Settings: &pb.ProviderSettings{Statsd: &pb.StatsdSettings{Address: "statsd:8125"}},
	}
	c, err := e.Create(ctx, &pb.CreateProviderRequest{Config: bad, AutoStart: true})
	require.NoError(t, err)
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_FAILED, c.GetProvider().GetState())
	resp, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "f", Config: sinkProvider("", name)})
	require.NoError(t, err)
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, resp.GetProvider().GetState())
}

func TestCustomConfigSecretsRedacted(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	cfg, err := structpb.NewStruct(map[string]any{"endpoint": "http://127.0.0.1:1", "headers": map[string]any{"X-Key": "v"}})
	require.NoError(t, err)
	pc := &pb.ProviderConfig{
		ProviderId: "c", Type: pb.ProviderType_PROVIDER_TYPE_CUSTOM,
		Settings: &pb.ProviderSettings{Custom: &pb.CustomSettings{ExporterType: "otlp_http", Config: cfg}},
	}
	resp, err := e.Create(ctx, &pb.CreateProviderRequest{Config: pc, ValidateConfig: true})
	require.NoError(t, err)
	h := resp.GetProvider().GetConfig().GetSettings().GetCustom().GetConfig().GetFields()["headers"].GetStructValue().GetFields()
	assert.Equal(t, Redacted, h["X-Key"].GetStringValue())
	list, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.NotContains(t, list.String(), `"v"`)
}
