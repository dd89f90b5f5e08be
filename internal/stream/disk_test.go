package stream

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func diskHub(t *testing.T, dir string, mutate func(*Config)) *Hub {
	t.Helper()
	return newTestHub(t, func(c *Config) {
		c.Replay.Directory = dir
		if mutate != nil {
			mutate(c)
		}
	})
}

func TestDiskLogResumeAndRestart(t *testing.T) {
	dir := t.TempDir()
	h := diskHub(t, dir, nil)
	s := openStream(t, h, aloRequest("durable", nil, 5))
	publish(t, h, gauges("g", 0, 30)) // batches 1..6
	assert.Equal(t, seq(0, 4), values(s.nextBatch()))
	assert.Equal(t, seq(5, 9), values(s.nextBatch()))
	require.NoError(t, ignoreCanceled(s.stop()))
	publish(t, h, gauges("g", 30, 3)) // an open batch: closed into the log at shutdown
	h.Close()
	assert.Equal(t, int64(0), h.MemoryBytes())

	// a new process over the same directory
	h2 := diskHub(t, dir, nil)
	require.Equal(t, 1, h2.Subscriptions(), "the subscription is recovered")
	r := openStream(t, h2, aloRequest("durable", u64(2), 5))
	var got []int
	for want := uint64(3); want <= 7; want++ {
		b := r.nextBatch()
		require.Equal(t, want, b.Sequence)
		got = append(got, values(b)...)
	}
	assert.Equal(t, seq(10, 32), got)
	publish(t, h2, gauges("g", 33, 5))
	b := r.nextBatch()
	assert.Equal(t, uint64(8), b.Sequence, "sequences continue after a restart")
	assert.Equal(t, seq(33, 37), values(b))
}

func TestDiskLogTornTail(t *testing.T) {
	dir := t.TempDir()
	h := diskHub(t, dir, nil)
	s := openStream(t, h, aloRequest("torn", nil, 5))
	publish(t, h, gauges("g", 0, 15)) // batches 1..3
	for range 3 {
		s.nextBatch() // sent means written and synced
	}
	// what a crash leaves: the directory as it is while the hub runs ...
	crashed := t.TempDir()
	require.NoError(t, os.CopyFS(crashed, os.DirFS(dir)))
	segs, err := filepath.Glob(filepath.Join(crashed, "torn", "*"+segmentSuffix))
	require.NoError(t, err)
	require.Len(t, segs, 1)
	fi, err := os.Stat(segs[0])
	require.NoError(t, err)
	// ... with the last record cut in half by the crash
	require.NoError(t, os.Truncate(segs[0], fi.Size()-20))

	h2 := diskHub(t, crashed, nil)
	r := openStream(t, h2, aloRequest("torn", u64(1), 5))
	assert.Equal(t, uint64(2), r.nextBatch().Sequence)
	publish(t, h2, gauges("g", 100, 5))
	b := r.nextBatch()
	assert.Equal(t, uint64(3), b.Sequence, "the sequences continue after the last intact batch")
	assert.Equal(t, seq(100, 104), values(b))
}

func TestDiskLogMissingTailIsDataLoss(t *testing.T) {
	dir := t.TempDir()
	h := diskHub(t, dir, nil)
	s := openStream(t, h, aloRequest("lost", nil, 5))
	publish(t, h, gauges("g", 0, 15))
	s.nextBatch()
	require.NoError(t, ignoreCanceled(s.stop()))
	h.Close() // the metadata says sequences 1..3 exist

	segs, err := filepath.Glob(filepath.Join(dir, "lost", "*"+segmentSuffix))
	require.NoError(t, err)
	fi, err := os.Stat(segs[0])
	require.NoError(t, err)
	require.NoError(t, os.Truncate(segs[0], fi.Size()-20)) // batch 3 is damaged

	h2 := diskHub(t, dir, nil)
	_, err = h2.Subscribe(aloRequest("lost", u64(1), 5))
	var loss *DataLossError
	require.ErrorAs(t, err, &loss, "a hole in the log is never skipped silently")
	assert.Equal(t, uint64(3), loss.To)
}

func TestDiskLogTrimmedBySize(t *testing.T) {
	dir := t.TempDir()
	h := diskHub(t, dir, func(c *Config) { c.Replay.MaxBytes = 4096 })
	s := openStream(t, h, aloRequest("small", nil, 10))
	publish(t, h, gauges("g", 0, 10))
	first := s.nextBatch()
	require.NoError(t, ignoreCanceled(s.stop()))
	for i := 10; i < 3000; i += 10 {
		publish(t, h, gauges("g", i, 10))
	}
	require.Eventually(t, func() bool { // the writer trims in the background
		st, err := h.Subscribe(aloRequest("small", u64(first.Sequence), 10))
		if err == nil {
			h.detach(st)
			return false
		}
		var loss *DataLossError
		return errors.As(err, &loss) && loss.From == 2
	}, waitFor, 5e6)
	// segments are deleted by the writer after the trim is visible
	var size int64
	assert.Eventually(t, func() bool {
		size = 0
		_ = filepath.Walk(filepath.Join(dir, "small"), func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				size += fi.Size()
			}
			return nil
		})
		return size < int64(3*64<<10)
	}, waitFor, 5e6, "old segments were deleted: %d bytes left", size)
}

func TestDiskLogRemovedWhenExpired(t *testing.T) {
	dir := t.TempDir()
	h := diskHub(t, dir, func(c *Config) { c.Replay.IdleTTL = 20e6 })
	s := openStream(t, h, aloRequest("bye", nil, 5))
	publish(t, h, gauges("g", 0, 10))
	s.nextBatch()
	require.NoError(t, ignoreCanceled(s.stop()))
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "bye"))
		return h.Subscriptions() == 0 && os.IsNotExist(err)
	}, waitFor, 1e6)
}

func TestDiskLogUnreadableIsDropped(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "broken"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken", metaFile), []byte("{"), 0o640))
	cfg := DefaultConfig()
	cfg.Replay.Directory = dir
	h, err := NewHub(cfg, zap.NewNop())
	require.NoError(t, err)
	require.NoError(t, h.Start())
	defer h.Close()
	assert.Equal(t, 0, h.Subscriptions())
	_, err = os.Stat(filepath.Join(dir, "broken"))
	assert.True(t, os.IsNotExist(err))
	_, err = h.Subscribe(&pb.StreamMetricsRequest{})
	require.NoError(t, err)
}
