package store

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/metadata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// crashChildEnv switches the test binary into the child of
// TestMetadataSurvivesKill: it opens the store in that directory, commits
// metrics, says "ready" and waits to be killed.
const crashChildEnv = "STORE_TEST_CRASH_CHILD_DIR"

func crashChild(dir string) {
	cfg := DefaultConfig()
	cfg.Path = dir
	s, err := Open(cfg, zap.NewNop())
	if err != nil {
		panic(err)
	}
	now := time.Now()
	b := newBatch().counter("http.requests", point{ts: now, v: 1}).gauge("queue.depth", point{ts: now, v: 3})
	b.sm.Metrics().At(1).SetUnit("By")
	b.sm.Metrics().At(1).SetDescription("Bytes queued.")
	txn, err := s.Stage(context.Background(), b.md)
	if err != nil {
		panic(err)
	}
	if err := txn.Commit(); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("ready\n")
	select {} // killed by the parent, never closed
}

func TestMetadataSurvivesKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMetadataSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the child commits, then says ready")
	require.Equal(t, "ready\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	require.Error(t, cmd.Wait(), "the child was killed")

	s := openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	md, ok := s.MetadataOf("http_requests_total")
	require.True(t, ok, "metadata committed before kill -9 is restored")
	assert.Equal(t, "counter", string(md.Type))
	md, ok = s.MetadataOf("queue_depth_bytes")
	require.True(t, ok)
	assert.Equal(t, "gauge", string(md.Type))
	assert.Equal(t, "bytes", md.Unit)
	assert.Equal(t, "Bytes queued.", md.Help)

	c, ok := s.meta.claimOf("queue_depth_bytes")
	require.True(t, ok, "name claims committed before kill -9 are restored")
	assert.Equal(t, claim{Name: "queue.depth", Kind: "gauge", Unit: "By"}, c)
	r := s.CheckMetric("queue_depth_bytes", "", pmetric.MetricTypeGauge, 0, false, nil)
	require.NotNil(t, r)
	assert.Equal(t, ReasonNameCollision, r.Reason)
	_, err = s.Stage(context.Background(), newBatch().gauge("queue_depth_bytes", point{ts: time.Now(), v: 1}).md)
	var re *RefusedError
	require.ErrorAs(t, err, &re, "a different metric is refused by the restored claim")
	assert.Equal(t, ReasonNameCollision, re.Reason)
	assert.Contains(t, re.Message, `"queue.depth"`)
}

func TestJournalTornLastLineIsIgnored(t *testing.T) {
	dir := t.TempDir()
	x := newMetaIndex()
	_, err := x.open(dir)
	require.NoError(t, err)
	e := &metricEntry{series: []string{"a_total"}, owner: claim{Name: "a", Kind: "counter"}}
	require.NoError(t, x.commit(nil, []*metricEntry{e}))
	require.NoError(t, x.journal.Close()) // a crash: no compaction
	x.journal = nil
	f, err := os.OpenFile(filepath.Join(dir, journalFile), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"s":"b_total","c":{"na`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	y := newMetaIndex()
	skipped, err := y.open(dir)
	require.NoError(t, err)
	assert.Equal(t, 1, skipped)
	c, ok := y.claimOf("a_total")
	assert.True(t, ok)
	assert.Equal(t, "a", c.Name)
	_, ok = y.claimOf("b_total")
	assert.False(t, ok)
	require.NoError(t, y.close())
	st, err := os.Stat(filepath.Join(dir, journalFile))
	require.NoError(t, err)
	assert.Zero(t, st.Size(), "close folds the journal into the snapshot")

	z := newMetaIndex()
	_, err = z.open(dir)
	require.NoError(t, err)
	_, ok = z.claimOf("a_total")
	assert.True(t, ok, "the snapshot keeps the claims")
	require.NoError(t, z.close())
}

func TestSnapshotVersion1IsRead(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, metadataFile), []byte(`{"jobs_total":{"type":"counter","unit":"","help":"Jobs."}}`), 0o600))
	x := newMetaIndex()
	_, err := x.open(dir)
	require.NoError(t, err)
	md, ok := x.get("jobs_total")
	require.True(t, ok)
	assert.Equal(t, "Jobs.", md.Help)
	require.NoError(t, x.close())
}

func TestJournalIsFoldedWhenLarge(t *testing.T) {
	dir := t.TempDir()
	x := newMetaIndex()
	_, err := x.open(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, x.close()) }()
	help := strings.Repeat("h", 4096)
	for i := range 2 * maxJournalBytes / 4096 {
		require.NoError(t, x.commit(map[string]metadata.Metadata{"flip": {Type: "gauge", Help: help[:4000+i%2]}}, nil))
	}
	st, err := os.Stat(filepath.Join(dir, journalFile))
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Size(), int64(maxJournalBytes), "metadata flipping between two values does not grow the journal forever")
}
