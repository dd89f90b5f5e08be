package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// spoolConsumer is a sender with just what take needs.
func spoolConsumer() *sender {
	return &sender{ctx: context.Background(), wake: make(chan struct{}, 1)}
}

func testSpool(t *testing.T, dir string, maxBytes int64, cacheN int) *spool {
	t.Helper()
	sp, err := openSpool(SpoolConfig{Directory: dir, MaxBytes: maxBytes}, "p1", cacheN, 0, zaptest.NewLogger(t))
	require.NoError(t, err)
	return sp
}

// takeAll takes every pending batch and returns the first seq attribute of each.
func takeAll(t *testing.T, sp *spool, s *sender) []*item {
	t.Helper()
	var out []*item
	for it := sp.take(s, func(int) { t.Fatal("unreadable spooled batch") }); it != nil; it = sp.take(s, func(int) { t.Fatal("unreadable spooled batch") }) {
		out = append(out, it)
	}
	return out
}

func firstSeq(md pmetric.Metrics) int64 {
	seq := int64(-1)
	forEachPoint(md, func(_ string, s int64) {
		if seq < 0 {
			seq = s
		}
	})
	return seq
}

func seqsOf(items []*item) []int64 {
	var out []int64
	for _, it := range items {
		out = append(out, firstSeq(it.md))
	}
	return out
}

// crash closes the files without the sync and state of a clean close, as
// a killed process leaves them.
func crash(sp *spool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.closed = true
	sp.closeFiles()
}

func TestSpoolRoundTripAndAckedSegmentsDeleted(t *testing.T) {
	dir := t.TempDir()
	sp := testSpool(t, dir, 1<<20, 2) // two batches kept in memory, the others read back
	s := spoolConsumer()
	sp.setConsumer(s)
	const n = 400
	for i := range n {
		require.NoError(t, sp.append(gauges("rt", i*10, 10), 10, false, kindNormal))
	}
	assert.Equal(t, n, sp.stats().batches)
	items := takeAll(t, sp, s)
	require.Len(t, items, n)
	for i, it := range items {
		assert.Equal(t, int64(i*10), firstSeq(it.md), "batch %d in order", i)
		assert.Equal(t, 10, it.points)
		assert.Equal(t, 10, it.md.DataPointCount())
	}
	segsBefore := len(sp.segs)
	require.Greater(t, segsBefore, 1, "the appends span several segments")
	for _, it := range items {
		sp.ack(it.spooled)
	}
	st := sp.stats()
	assert.Zero(t, st.batches)
	assert.Len(t, sp.segs, 1, "acknowledged segments are deleted")
	files, err := segmentIndexes(filepath.Join(dir, "p1"))
	require.NoError(t, err)
	assert.Len(t, files, 1)
	b, _ := sp.close()
	assert.Zero(t, b)

	sp = testSpool(t, dir, 1<<20, 2)
	defer sp.close()
	assert.Zero(t, sp.stats().batches, "nothing is sent again after a restart")
}

func TestSpoolReplayAfterCrashResendsExactlyTheUnacknowledged(t *testing.T) {
	for _, mode := range []SpoolSync{SpoolSyncBatch, SpoolSyncAlways} {
		t.Run(string(mode), func(t *testing.T) { testSpoolReplay(t, mode) })
	}
}

func testSpoolReplay(t *testing.T, mode SpoolSync) {
	dir := t.TempDir()
	sp, err := openSpool(SpoolConfig{Directory: dir, MaxBytes: 1 << 20, Sync: mode}, "p1", 1000, 0, zap.NewNop())
	require.NoError(t, err)
	s := spoolConsumer()
	sp.setConsumer(s)
	for i := range 10 {
		require.NoError(t, sp.append(gauges("replay", i, 1), 1, true, kindNormal))
	}
	items := takeAll(t, sp, s)
	require.Len(t, items, 10)
	for _, i := range []int{0, 2, 3, 7} {
		sp.ack(items[i].spooled)
	}
	sp.release(items[9].spooled) // a stop cut its export short
	crash(sp)

	sp = testSpool(t, dir, 1<<20, 1000)
	defer sp.close()
	s = spoolConsumer()
	sp.setConsumer(s)
	got := takeAll(t, sp, s)
	assert.Equal(t, []int64{1, 4, 5, 6, 8, 9}, seqsOf(got), "exactly the unacknowledged batches, in order")
	for _, it := range got {
		assert.False(t, it.shared, "a batch read back is owned")
		assert.Equal(t, kindNormal, it.kind)
	}
}

func TestSpoolTornTailIsCutAndCounted(t *testing.T) {
	dir := t.TempDir()
	sp := testSpool(t, dir, 1<<20, 1000)
	for i := range 3 {
		require.NoError(t, sp.append(gauges("torn", i, 1), 1, false, kindFailover))
	}
	seg := sp.active().path
	crash(sp)
	fi, err := os.Stat(seg)
	require.NoError(t, err)
	// the last record was cut by the crash
	require.NoError(t, os.Truncate(seg, fi.Size()-5))

	sp = testSpool(t, dir, 1<<20, 1000)
	defer sp.close()
	assert.Equal(t, 1, sp.truncated, "the torn record is counted")
	s := spoolConsumer()
	sp.setConsumer(s)
	got := takeAll(t, sp, s)
	assert.Equal(t, []int64{0, 1}, seqsOf(got))
	assert.Equal(t, kindFailover, got[0].kind, "the kind survives")
	fi2, err := os.Stat(seg)
	require.NoError(t, err)
	assert.Less(t, fi2.Size(), fi.Size()-5, "the torn tail is cut off the file")
}

func TestSpoolCorruptRecordCutsTheRest(t *testing.T) {
	dir := t.TempDir()
	sp := testSpool(t, dir, 1<<20, 1000)
	for i := range 3 {
		require.NoError(t, sp.append(gauges("flip", i, 1), 1, false, kindNormal))
	}
	second := sp.pending[1]
	seg := sp.active().path
	crash(sp)
	raw, err := os.ReadFile(seg)
	require.NoError(t, err)
	raw[second.off+frameHeader+5] ^= 0xff // a bit flipped inside the second record
	require.NoError(t, os.WriteFile(seg, raw, 0o600))

	sp = testSpool(t, dir, 1<<20, 1000)
	defer sp.close()
	assert.Equal(t, 1, sp.truncated)
	s := spoolConsumer()
	sp.setConsumer(s)
	assert.Equal(t, []int64{0}, seqsOf(takeAll(t, sp, s)))
}

func TestSpoolIsBoundedByMaxBytes(t *testing.T) {
	for _, maxBytes := range []int64{8 << 10, 64 << 10} {
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			sp := testSpool(t, t.TempDir(), maxBytes, 1000)
			defer sp.close()
			s := spoolConsumer()
			sp.setConsumer(s)
			for round := range 3 {
				accepted := 0
				var err error
				for range 1000 {
					if err = sp.append(gauges("full", 0, 20), 20, false, kindNormal); err != nil {
						break
					}
					accepted++
				}
				require.ErrorIs(t, err, errSpoolFull)
				require.Positive(t, accepted, "round %d", round)
				assert.LessOrEqual(t, sp.stats().diskBytes, maxBytes)
				// once sent and acknowledged, the space is free again
				for _, it := range takeAll(t, sp, s) {
					sp.ack(it.spooled)
				}
				assert.LessOrEqual(t, sp.stats().diskBytes, maxBytes/2)
			}
		})
	}
}

func TestSpoolConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  SpoolConfig
		want string
	}{
		{SpoolConfig{Directory: "/x"}, ""},
		{SpoolConfig{Directory: "/x", MaxBytes: 10, Sync: SpoolSyncAlways}, ""},
		{SpoolConfig{}, "spool.directory: must be set"},
		{SpoolConfig{Directory: "/x", MaxBytes: -1}, "spool.max_bytes: -1 is negative"},
		{SpoolConfig{Directory: "/x", Sync: "never"}, `spool.sync: "never" is not one of batch, always`},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" {
			assert.NoError(t, err)
		} else {
			assert.ErrorContains(t, err, tt.want)
		}
	}
}

// spoolEngine starts an engine over store with the spool on in dir.
func spoolEngine(t *testing.T, host component.Host, store *memStorage, dir string, maxBytes int64) *Engine {
	t.Helper()
	e := NewEngine(Settings{TelemetrySettings: componenttest.NewNopTelemetrySettings(), LookupHost: noDNS, ShutdownDrainTimeout: 50 * time.Millisecond})
	require.NoError(t, e.Start(context.Background(), host, store))
	require.NoError(t, e.Router().EnableSpool(SpoolConfig{Directory: dir, MaxBytes: maxBytes}))
	return e
}

func providerStats(t *testing.T, e *Engine, id string) *pb.ProviderStats {
	t.Helper()
	r, err := e.Stats(context.Background(), &pb.GetProviderStatsRequest{ProviderId: id})
	require.NoError(t, err)
	return r.GetStats()
}

func TestEngineSpoolSurvivesRestartAndSendsToTheCurrentExporter(t *testing.T) {
	ctx := context.Background()
	dir, store := t.TempDir(), newMemStorage()
	down, downName := newSink(t, "down")
	down.gate = make(chan struct{}) // exports hang: batches stay in the spool
	host := newTestHost(sinkFactory())

	e := spoolEngine(t, host, store, dir, 1<<20)
	_, err := e.Create(ctx, &pb.CreateProviderRequest{AutoStart: true, Config: sinkProvider("p1", downName)})
	require.NoError(t, err)
	for i := range 50 {
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("restart", i*2, 2)))
	}
	st := providerStats(t, e, "p1")
	assert.Equal(t, uint32(50), st.GetQueueSize(), "every batch is pending or in flight")
	assert.Positive(t, st.GetResources().GetDiskBytes())
	require.NoError(t, e.Shutdown(ctx)) // the hanging exports are cut: kept in the spool
	assert.Zero(t, down.pointCount())

	// the restarted collector's provider now exports to a healthy sink
	up, upName := newSink(t, "up")
	e2 := spoolEngine(t, host, store, dir, 1<<20)
	t.Cleanup(func() { require.NoError(t, e2.Shutdown(ctx)) })
	// the old exporter's hanging exports are cut after the drain: released to the new one
	_, err = e2.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p1", Config: sinkProvider("p1", upName), DrainTimeout: durationpb.New(50 * time.Millisecond)})
	require.NoError(t, err)
	eventually(t, func() bool { return up.pointCount() >= 100 }, "the spooled batches reach the current exporter")
	_, seqs := up.snapshot()
	for i := range 100 {
		assert.Equal(t, 1, seqs[int64(i)], "point %d exactly once", i)
	}
	eventually(t, func() bool { return providerStats(t, e2, "p1").GetQueueSize() == 0 }, "the spool empties")
}

func TestEngineSpoolFullDropsAndCounts(t *testing.T) {
	ctx := context.Background()
	sink, name := newSink(t, "slow")
	sink.gate = make(chan struct{})
	defer close(sink.gate)
	e := spoolEngine(t, newTestHost(sinkFactory()), newMemStorage(), t.TempDir(), 16<<10)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	_, err := e.Create(ctx, &pb.CreateProviderRequest{AutoStart: true, Config: sinkProvider("p1", name)})
	require.NoError(t, err)
	for i := range 200 {
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("full", i*10, 10)))
	}
	st := providerStats(t, e, "p1")
	assert.Positive(t, st.GetDatapointsDropped(), "a full spool drops and counts")
	assert.LessOrEqual(t, st.GetResources().GetDiskBytes(), uint64(16<<10))
	e.tick() // the once-a-second check sees the spool's fill
	r, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p1", IncludeHealthHistory: true})
	require.NoError(t, err)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_DEGRADED, r.GetHealth())
	require.NotEmpty(t, r.GetHealthHistory())
	assert.Contains(t, r.GetHealthHistory()[len(r.GetHealthHistory())-1].GetMessage(), "spool.max_bytes")
}

func TestEngineSpoolDeleteRemovesItsFiles(t *testing.T) {
	ctx := context.Background()
	sink, name := newSink(t, "hang")
	sink.gate = make(chan struct{})
	dir := t.TempDir()
	e := spoolEngine(t, newTestHost(sinkFactory()), newMemStorage(), dir, 1<<20)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	_, err := e.Create(ctx, &pb.CreateProviderRequest{AutoStart: true, Config: sinkProvider("p1", name)})
	require.NoError(t, err)
	for i := range 30 {
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("del", i, 1)))
	}
	require.DirExists(t, filepath.Join(dir, "p1"))
	dry, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p1", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE, DryRun: true})
	require.NoError(t, err)
	assert.Contains(t, dry.GetMessage(), "drop its 30 queued batches (about 30 data points)")
	resp, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: "p1", CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)
	assert.Equal(t, uint64(30), resp.GetDroppedDatapoints(), "what the spool still held is dropped and counted")
	assert.NoDirExists(t, filepath.Join(dir, "p1"))
}

func TestEngineSpoolOfUnknownProviderRemovedAtStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stale := filepath.Join(dir, "gone")
	require.NoError(t, os.MkdirAll(stale, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(stale, "00000000000000000001.seg"), []byte(segmentMagic), 0o600))
	e := spoolEngine(t, newTestHost(sinkFactory()), newMemStorage(), dir, 1<<20)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	assert.NoDirExists(t, stale)
	// the same config again is accepted, another one is refused
	require.NoError(t, e.Router().EnableSpool(SpoolConfig{Directory: dir, MaxBytes: 1 << 20}))
	require.ErrorContains(t, e.Router().EnableSpool(SpoolConfig{Directory: dir, MaxBytes: 1 << 21}), "configure the spool on one providers exporter")
}

// BenchmarkProviderSpool is the cost per batch (benchBatch data points) of
// the provider path in front of an exporter that does nothing, with the
// in-memory queue and with the spool (sync batch and always).
func BenchmarkProviderSpool(b *testing.B) {
	for _, mode := range []string{"memory", "spool-batch", "spool-always"} {
		b.Run(mode, func(b *testing.B) {
			ob := newOverheadBench(b, func(e *Engine) {
				switch mode {
				case "spool-batch":
					require.NoError(b, e.EnableSpool(SpoolConfig{Directory: b.TempDir(), Sync: SpoolSyncBatch}))
				case "spool-always":
					require.NoError(b, e.EnableSpool(SpoolConfig{Directory: b.TempDir(), Sync: SpoolSyncAlways}))
				}
			})
			cpu0 := cpuTime()
			ob.run(b)
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/batch")
		})
	}
}

func TestEngineSpoolFailoverUnchanged(t *testing.T) {
	e := spoolEngine(t, distribution(), newMemStorage(), t.TempDir(), 1<<20)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	p, nameP := newSink(t, "primary")
	f, nameF := newSink(t, "failover")
	fpc := sinkProvider("standby", nameF)
	fpc.Filter = &pb.MetricFilter{Names: []string{"standby_*"}}
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
	p.fail.Store(true)
	eventually(t, func() bool { send(); return f.pointCount() > 50 }, "the failover takes the traffic")
	p.fail.Store(false)
	eventually(t, func() bool {
		_, ps := p.snapshot()
		_, fs := f.snapshot()
		for s := range int64(seq) {
			if ps[s]+fs[s] == 0 {
				return false
			}
		}
		return true
	}, "every data point is delivered by the primary or the failover")
	eventually(t, func() bool {
		return providerStats(t, e, "primary").GetQueueSize() == 0 && providerStats(t, e, "standby").GetQueueSize() == 0
	}, "both spools are acknowledged")
	assert.Zero(t, providerStats(t, e, "primary").GetDatapointsFailed(), "failed batches went to the failover")
}

func TestEngineSpoolBlueGreenPromotionTakesThePendingBatches(t *testing.T) {
	e := spoolEngine(t, newTestHost(sinkFactory()), newMemStorage(), t.TempDir(), 1<<20)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	old, oldName := newSink(t, "blue")
	old.gate = make(chan struct{})
	create(t, e, sinkProvider("p1", oldName))
	for i := range 40 {
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("bg", i, 1)))
	}
	green, greenName := newSink(t, "green")
	_, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p1", Config: sinkProvider("p1", greenName),
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(50 * time.Millisecond),
		DrainTimeout: durationpb.New(50 * time.Millisecond)})
	require.NoError(t, err)
	eventually(t, func() bool { return green.pointCount() >= 40 }, "the promoted exporter sends what the old one had not")
	_, seqs := green.snapshot()
	for i := range 40 {
		assert.Equal(t, 1, seqs[int64(i)], "point %d exactly once", i)
	}
	assert.Zero(t, old.pointCount())
	eventually(t, func() bool { return providerStats(t, e, "p1").GetQueueSize() == 0 }, "the spool empties")
}

func TestEngineSpoolOfAnEarlierGenerationIsNotSent(t *testing.T) {
	dir, store := t.TempDir(), newMemStorage()
	sink, name := newSink(t, "gen")
	sink.gate = make(chan struct{})
	host := newTestHost(sinkFactory())
	e := spoolEngine(t, host, store, dir, 1<<20)
	create(t, e, sinkProvider("p1", name))
	for i := range 20 {
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("gen", i, 1)))
	}
	require.NoError(t, e.Shutdown(ctx))
	// the directory now looks like the spool of an earlier provider "p1"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p1", generationFile), []byte("999\n"), 0o600))

	e2 := spoolEngine(t, host, store, dir, 1<<20)
	t.Cleanup(func() { require.NoError(t, e2.Shutdown(ctx)) })
	assert.Zero(t, providerStats(t, e2, "p1").GetQueueSize(), "batches of another generation are not sent")
	raw, err := os.ReadFile(filepath.Join(dir, "p1", generationFile))
	require.NoError(t, err)
	assert.NotEqual(t, "999\n", string(raw))
}

// TestEngineSpoolBlueGreenOldDestinationDrainsWhatWasPendingAtPromotion: the
// batches that arrive during the verification are spooled for the old
// destination and copied to the candidate; those the old one has not sent
// when the candidate is promoted still go to the old destination (as
// without a spool), so the new one never gets a batch twice.
func TestEngineSpoolBlueGreenOldDestinationDrainsWhatWasPendingAtPromotion(t *testing.T) {
	e := spoolEngine(t, newTestHost(sinkFactory()), newMemStorage(), t.TempDir(), 1<<20)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	blue, blueName := newSink(t, "blue")
	blue.gate = make(chan struct{}) // the old destination is slow: a backlog at the promotion
	create(t, e, sinkProvider("p1", blueName))
	green, greenName := newSink(t, "green")
	done := make(chan error, 1)
	go func() {
		_, err := e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p1", Config: sinkProvider("p1", greenName),
			Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(300 * time.Millisecond),
			DrainTimeout: durationpb.New(30 * time.Second)})
		done <- err
	}()
	candidate := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.providers["p1"].shadow != nil
	}
	eventually(t, candidate, "the candidate runs")
	for i := range 30 {
		require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("bg", i, 1)))
	}
	eventually(t, func() bool { return green.pointCount() >= 30 }, "the candidate gets a copy")
	eventually(t, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		p := e.providers["p1"]
		return p.shadow == nil && p.primary != nil && p.primary.cfg.version == 2
	}, "the candidate is promoted")
	close(blue.gate) // the old destination catches up
	require.NoError(t, <-done)
	eventually(t, func() bool { return blue.pointCount() >= 30 }, "the old destination gets what was pending at the promotion")
	eventually(t, func() bool { return providerStats(t, e, "p1").GetQueueSize() == 0 }, "the spool empties")
	_, gs := green.snapshot()
	_, bs := blue.snapshot()
	for i := range 30 {
		assert.Equal(t, 1, gs[int64(i)], "green: point %d once (its verification copy)", i)
		assert.Equal(t, 1, bs[int64(i)], "blue: point %d once", i)
	}
}
