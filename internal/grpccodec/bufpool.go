package grpccodec

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/mem"
)

// requestPool holds the buffers RecordBatchMetrics requests are decoded
// from. A request's buffer goes back to it only when the handler said that
// nothing built from the request points into it any more (Recycle);
// otherwise the garbage collector takes it, as it would a private copy.
//
// Unlike grpc's default pool it does not zero a buffer it hands out (the
// request is copied over it, and nothing reads past the request's length)
// and its size classes are 2^k and 1.5 x 2^k bytes, so a buffer left to the
// garbage collector is at most a third larger than its request.
var requestPool atomic.Pointer[mem.BufferPool]

func init() {
	var p mem.BufferPool = newClassPool(minPooledRequest, maxPooledRequest)
	requestPool.Store(&p)
}

// SetRequestPool makes p the pool RecordBatchMetrics requests are decoded
// from until restore is called. For tests: a pool that overwrites the
// buffers put back shows a string kept past Recycle.
func SetRequestPool(p mem.BufferPool) (restore func()) {
	old := requestPool.Swap(&p)
	return func() { requestPool.Store(old) }
}

const (
	minPooledRequest = 4 << 10  // smaller requests get a class of this size
	maxPooledRequest = 16 << 20 // larger requests are allocated to size, never pooled
)

// classPool is a mem.BufferPool with size classes 2^k and 1.5 x 2^k between
// min and max (powers of two) that hands out buffers as they were left.
type classPool struct {
	min, max int
	classes  []sync.Pool // 2 per power of two from min
	sizes    []int
}

func newClassPool(minSize, maxSize int) *classPool {
	p := &classPool{min: minSize, max: maxSize}
	for s := minSize; s <= maxSize; s *= 2 {
		p.sizes = append(p.sizes, s, s+s/2)
	}
	p.sizes = p.sizes[:len(p.sizes)-1] // (none above max)
	p.classes = make([]sync.Pool, len(p.sizes))
	return p
}

// class returns the index of the smallest class of at least n bytes, or -1
// above max.
func (p *classPool) class(n int) int {
	if n > p.max {
		return -1
	}
	if n <= p.min {
		return 0
	}
	// 2^k < n <= 2^(k+1): class 2^k x 1.5 or 2^(k+1)
	k := bits.Len(uint(n-1)) - 1 // 2^k < n
	i := 2 * (k - bits.Len(uint(p.min-1)))
	if n <= p.sizes[i+1] {
		return i + 1
	}
	return i + 2
}

// Get returns a buffer of length n; its bytes are whatever they were.
func (p *classPool) Get(n int) *[]byte {
	c := p.class(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, p.sizes[c])
	return &b
}

// Put keeps b for a later Get of its class (a buffer not of a class is
// dropped).
func (p *classPool) Put(b *[]byte) {
	c := p.class(cap(*b))
	if c < 0 || p.sizes[c] != cap(*b) {
		return
	}
	p.classes[c].Put(b)
}
