package grpccodec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassPoolSizeClasses(t *testing.T) {
	p := newClassPool(4<<10, 16<<20)
	for _, tc := range []struct {
		n, capacity int
	}{
		{1, 4 << 10},
		{4 << 10, 4 << 10},
		{4<<10 + 1, 6 << 10},
		{6 << 10, 6 << 10},
		{6<<10 + 1, 8 << 10},
		{87_000, 96 << 10},
		{100 << 10, 128 << 10},
		{12 << 20, 12 << 20},
		{16 << 20, 16 << 20},
		{16<<20 + 1, 16<<20 + 1}, // above the classes: to size
	} {
		b := p.Get(tc.n)
		require.Len(t, *b, tc.n, "Get(%d)", tc.n)
		require.Equal(t, tc.capacity, cap(*b), "Get(%d)", tc.n)
	}
}

func TestClassPoolReusesOnlyItsOwnBuffers(t *testing.T) {
	p := newClassPool(4<<10, 1<<20)
	b := p.Get(5000)
	(*b)[0] = 42
	p.Put(b)
	// a sync.Pool may drop what it holds at any time, so only what Put
	// refuses is checked exactly: a buffer of no class is never handed out
	odd := make([]byte, 5000, 7000)
	p.Put(&odd)
	for range 100 {
		got := p.Get(5000)
		require.Equal(t, 6<<10, cap(*got))
		require.Len(t, *got, 5000)
	}
}
