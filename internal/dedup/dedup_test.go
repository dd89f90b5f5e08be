package dedup

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoRemembersSuccess(t *testing.T) {
	c := New[int](time.Minute, 10)
	runs := 0
	fn := func() (int, error) { runs++; return 42, nil }
	v, dup, err := c.Do("a", fn)
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	assert.False(t, dup)
	v, dup, err = c.Do("a", fn)
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	assert.True(t, dup)
	assert.Equal(t, 1, runs)
}

func TestDoForgetsFailure(t *testing.T) {
	c := New[int](time.Minute, 10)
	_, _, err := c.Do("a", func() (int, error) { return 0, errors.New("refused") })
	require.Error(t, err)
	v, dup, err := c.Do("a", func() (int, error) { return 7, nil })
	require.NoError(t, err)
	assert.False(t, dup)
	assert.Equal(t, 7, v)
}

func TestDoExpiresAfterWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[int](time.Minute, 10)
	c.SetClock(func() time.Time { return now })
	_, _, _ = c.Do("a", func() (int, error) { return 1, nil })
	now = now.Add(61 * time.Second)
	v, dup, _ := c.Do("a", func() (int, error) { return 2, nil })
	assert.False(t, dup)
	assert.Equal(t, 2, v)
}

func TestDoBoundsEntries(t *testing.T) {
	c := New[int](time.Minute, 2)
	for _, k := range []string{"a", "b", "c"} {
		_, _, _ = c.Do(k, func() (int, error) { return 1, nil })
	}
	assert.Equal(t, 2, c.Len())
	_, dup, _ := c.Do("a", func() (int, error) { return 1, nil })
	assert.False(t, dup, "oldest entry must have been forgotten")
}

func TestDoConcurrentSameKeyRunsOnce(t *testing.T) {
	c := New[int](time.Minute, 10)
	var runs atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	dups := atomic.Int32{}
	for range 8 {
		wg.Go(func() {
			_, dup, err := c.Do("k", func() (int, error) {
				runs.Add(1)
				<-release
				return 1, nil
			})
			assert.NoError(t, err)
			if dup {
				dups.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return runs.Load() == 1 }, time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), runs.Load())
	assert.Equal(t, int32(7), dups.Load())
}

func TestMaxBytesForgetsTheOldestResults(t *testing.T) {
	// each entry: key (1 byte) + result size (100) + overhead
	per := int64(1 + 100 + entryOverhead)
	c := New[int](time.Minute, 1000).WithMaxBytes(3*per, func(int) int { return 100 })
	for _, k := range []string{"a", "b", "c", "d"} {
		_, _, err := c.Do(k, func() (int, error) { return 1, nil })
		require.NoError(t, err)
	}
	assert.Equal(t, 3, c.Len())
	assert.Equal(t, 3*per, c.Bytes())
	_, dup, err := c.Do("a", func() (int, error) { return 2, nil })
	require.NoError(t, err)
	assert.False(t, dup, "the oldest key was forgotten to stay under max bytes")
	_, dup, err = c.Do("d", func() (int, error) { return 2, nil })
	require.NoError(t, err)
	assert.True(t, dup)
}

func TestMaxBytesCountsTheKey(t *testing.T) {
	c := New[int](time.Minute, 1000).WithMaxBytes(10_000, nil)
	big := string(make([]byte, 20_000))
	_, _, err := c.Do(big, func() (int, error) { return 1, nil })
	require.NoError(t, err)
	assert.Equal(t, 0, c.Len(), "a result larger than max bytes is not kept")
	assert.Zero(t, c.Bytes())
	for i := range 100 {
		_, _, err := c.Do(string(rune('a'+i%26))+string(make([]byte, 1000)), func() (int, error) { return 1, nil })
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, c.Bytes(), int64(10_000))
}

func TestBytesDropWithExpiry(t *testing.T) {
	now := time.Unix(0, 0)
	c := New[int](time.Minute, 10).WithMaxBytes(1<<20, nil)
	c.SetClock(func() time.Time { return now })
	_, _, err := c.Do("key", func() (int, error) { return 1, nil })
	require.NoError(t, err)
	assert.Equal(t, int64(3+entryOverhead), c.Bytes())
	now = now.Add(2 * time.Minute)
	assert.Zero(t, c.Bytes())
}
