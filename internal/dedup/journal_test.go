package dedup

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a settable clock for journal tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openJournal(t *testing.T, path string, opts JournalOptions) (*Journal, Replay) {
	t.Helper()
	j, rp, err := OpenJournal(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j, rp
}

func keys(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Key)
	}
	return out
}

func TestJournalReplaysAppendedRecordsAfterAReopen(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	path := filepath.Join(t.TempDir(), "dedup.journal")
	opts := JournalOptions{Window: time.Minute, Now: c.now}
	j, rp := openJournal(t, path, opts)
	assert.Empty(t, rp.Records)
	require.NoError(t, j.Append(Record{Key: "a", Kind: 1, Result: []byte("first"), At: c.t}))
	require.NoError(t, j.Append(Record{Key: "b", Kind: 2, Result: nil, At: c.t.Add(time.Second)}))
	require.NoError(t, j.Append(Record{Key: "a", Kind: 1, Result: []byte("again"), At: c.t.Add(2 * time.Second)}))
	// no Close: the process died; what was written is in the file
	_, rp = openJournal(t, path, opts)
	require.Len(t, rp.Records, 2)
	assert.Equal(t, Record{Key: "b", Kind: 2, At: c.t.Add(time.Second)}, rp.Records[0])
	assert.Equal(t, Record{Key: "a", Kind: 1, Result: []byte("again"), At: c.t.Add(2 * time.Second)}, rp.Records[1], "the last record of a key wins")
	assert.Zero(t, rp.Corrupt)
	assert.False(t, rp.Torn)
}

func TestJournalSkipsRecordsOlderThanTheWindow(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	path := filepath.Join(t.TempDir(), "dedup.journal")
	opts := JournalOptions{Window: time.Minute, Now: c.now}
	j, _ := openJournal(t, path, opts)
	require.NoError(t, j.Append(Record{Key: "old", At: c.t}))
	require.NoError(t, j.Append(Record{Key: "new", At: c.t.Add(30 * time.Second)}))
	require.NoError(t, j.Close())
	c.t = c.t.Add(61 * time.Second)
	_, rp := openJournal(t, path, opts)
	assert.Equal(t, []string{"new"}, keys(rp.Records))
	assert.Equal(t, 1, rp.Expired)
}

func TestJournalIgnoresATornLastRecordAndAppendsAfterIt(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	opts := JournalOptions{Window: time.Minute, Now: c.now}
	// kill -9 in the middle of the next write: part of a record
	torn := appendRecord(nil, Record{Key: "torn", Result: []byte("r2"), At: c.t})
	for _, cut := range []int{3, recordHeader + 4, len(torn) - 1} {
		t.Run(fmt.Sprintf("cut at %d of %d", cut, len(torn)), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dedup.journal")
			j, _ := openJournal(t, path, opts)
			require.NoError(t, j.Append(Record{Key: "whole", Result: []byte("r1"), At: c.t}))
			require.NoError(t, j.Close())
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.Write(torn[:cut])
			require.NoError(t, err)
			require.NoError(t, f.Close())

			j, rp := openJournal(t, path, opts)
			assert.True(t, rp.Torn)
			assert.Equal(t, []string{"whole"}, keys(rp.Records))
			// the torn bytes are gone: a record appended now is read back
			require.NoError(t, j.Append(Record{Key: "after", At: c.t}))
			require.NoError(t, j.Close())
			_, rp = openJournal(t, path, opts)
			assert.False(t, rp.Torn)
			assert.Equal(t, []string{"whole", "after"}, keys(rp.Records))
		})
	}
}

func TestJournalSkipsACorruptRecordAndKeepsTheOthers(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	path := filepath.Join(t.TempDir(), "dedup.journal")
	opts := JournalOptions{Window: time.Minute, Now: c.now}
	j, _ := openJournal(t, path, opts)
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, j.Append(Record{Key: k, Result: []byte("result of " + k), At: c.t}))
	}
	require.NoError(t, j.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	one := recordSize(Record{Key: "a", Result: []byte("result of a")})
	require.Len(t, b, 3*one)
	for name, at := range map[string]int{"payload": one + recordHeader + 12, "checksum": one + 5} {
		t.Run(name, func(t *testing.T) {
			bad := append([]byte(nil), b...)
			bad[at] ^= 0xff
			require.NoError(t, os.WriteFile(path, bad, 0o600))
			_, rp := openJournal(t, path, opts)
			assert.Equal(t, 1, rp.Corrupt)
			assert.False(t, rp.Torn)
			assert.Equal(t, []string{"a", "c"}, keys(rp.Records))
		})
	}
}

func TestJournalStaysWithinTwoGenerationsOfMaxBytes(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	dir := t.TempDir()
	path := filepath.Join(dir, "dedup.journal")
	const maxBytes = 4096
	opts := JournalOptions{Window: time.Hour, MaxBytes: maxBytes, Now: c.now}
	j, _ := openJournal(t, path, opts)
	result := make([]byte, 100)
	for i := range 1000 {
		c.t = c.t.Add(time.Millisecond)
		require.NoError(t, j.Append(Record{Key: fmt.Sprintf("req-%04d", i), Result: result, At: c.t}))
		var total int64
		for _, p := range []string{path, path + ".old"} {
			if st, err := os.Stat(p); err == nil {
				total += st.Size()
			}
		}
		require.LessOrEqual(t, total, int64(2*maxBytes), "after %d records", i+1)
	}
	require.NoError(t, j.Close())
	_, rp := openJournal(t, path, opts)
	n := len(rp.Records)
	require.NotZero(t, n)
	assert.LessOrEqual(t, int64(n*recordSize(rp.Records[0])), int64(maxBytes))
	assert.Equal(t, "req-0999", rp.Records[n-1].Key, "the newest are kept")
	assert.Equal(t, fmt.Sprintf("req-%04d", 1000-n), rp.Records[0].Key, "and only the newest")
	assert.Positive(t, rp.Dropped)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Size(), int64(maxBytes), "open rewrites only the live records")
	_, err = os.Stat(path + ".old")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestJournalRotatesByWindowAndMaxEntries(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	path := filepath.Join(t.TempDir(), "dedup.journal")
	opts := JournalOptions{Window: time.Minute, MaxEntries: 3, Now: c.now}
	j, _ := openJournal(t, path, opts)
	for i := range 3 {
		require.NoError(t, j.Append(Record{Key: fmt.Sprint("e", i), At: c.t}))
	}
	assert.Equal(t, int64(3*recordSize(Record{Key: "e0"})), j.Size())
	require.NoError(t, j.Append(Record{Key: "e3", At: c.t}))
	assert.Equal(t, int64(recordSize(Record{Key: "e3"})), j.Size(), "max entries started a new generation")
	c.t = c.t.Add(time.Minute)
	require.NoError(t, j.Append(Record{Key: "late", At: c.t}))
	assert.Equal(t, int64(recordSize(Record{Key: "late"})), j.Size(), "a generation older than the window is rotated")
	require.NoError(t, j.Close())
	_, rp := openJournal(t, path, opts)
	assert.Equal(t, []string{"late"}, keys(rp.Records), "e3 expired exactly at the window")
	assert.Equal(t, 1, rp.Expired, "e0..e2 were in the generation dropped by the second rotation")
}

func TestJournalAppendAfterCloseFails(t *testing.T) {
	j, _ := openJournal(t, filepath.Join(t.TempDir(), "dedup.journal"), JournalOptions{Window: time.Minute})
	require.NoError(t, j.Close())
	require.NoError(t, j.Close())
	assert.ErrorIs(t, j.Append(Record{Key: "k", At: time.Now()}), ErrJournalClosed)
}

func TestRestoreRemembersReplayedResults(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[int](time.Minute, 10)
	c.SetClock(func() time.Time { return now })
	assert.True(t, c.Restore("a", 5, now.Add(-30*time.Second)))
	assert.False(t, c.Restore("b", 6, now.Add(-time.Minute)), "expired")
	v, dup, err := c.Do("a", func() (int, error) { return 9, nil })
	require.NoError(t, err)
	assert.True(t, dup)
	assert.Equal(t, 5, v)
	now = now.Add(31 * time.Second)
	_, dup, _ = c.Do("a", func() (int, error) { return 9, nil })
	assert.False(t, dup, "a restored result expires a window after it was remembered")
}

func TestOnRememberSeesEachNewResultBeforeDoReturns(t *testing.T) {
	c := New[int](time.Minute, 10)
	var seen []string
	c.OnRemember(func(key string, v int) { seen = append(seen, fmt.Sprint(key, "=", v)) })
	_, _, _ = c.Do("a", func() (int, error) { return 1, nil })
	assert.Equal(t, []string{"a=1"}, seen)
	_, _, _ = c.Do("a", func() (int, error) { return 2, nil })
	_, _, _ = c.Do("b", func() (int, error) { return 0, fmt.Errorf("refused") })
	assert.Equal(t, []string{"a=1"}, seen, "duplicates and failures are not remembered")
}

// BenchmarkJournalAppend is the cost a request with a request id pays after
// its commit: encode and write one record (a 36-byte id, a 60-byte answer).
func BenchmarkJournalAppend(b *testing.B) {
	j, _, err := OpenJournal(filepath.Join(b.TempDir(), "dedup.journal"), JournalOptions{Window: time.Hour, MaxBytes: 64 << 20})
	require.NoError(b, err)
	defer j.Close()
	result := make([]byte, 60)
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := j.Append(Record{Key: fmt.Sprintf("0f8fad5b-d9cb-469f-a165-%012d", i), Kind: 2, Result: result, At: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
