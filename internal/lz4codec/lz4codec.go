// Package lz4codec registers an LZ4 gRPC compressor named "lz4" (LZ4 frame
// format, github.com/pierrec/lz4/v4). gRPC has no LZ4 compressor of its own
// and the collector's configgrpc registers only gzip, snappy and zstd; import
// this package for its side effect on both ends of a stream that uses LZ4.
package lz4codec // import "github.com/metricsmodule/metricsmodule/internal/lz4codec"

import (
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"google.golang.org/grpc/encoding"
)

// Name is the grpc-encoding of LZ4-compressed messages.
const Name = "lz4"

func init() {
	if encoding.GetCompressor(Name) == nil {
		encoding.RegisterCompressor(newCompressor())
	}
}

// compressor pools writers and readers: an LZ4 frame writer holds a block
// buffer, which is worth reusing across messages.
type compressor struct {
	writers sync.Pool
	readers sync.Pool
}

func newCompressor() *compressor { return &compressor{} }

// Name returns "lz4".
func (*compressor) Name() string { return Name }

// Compress returns a writer that compresses into w; Close ends the frame.
func (c *compressor) Compress(w io.Writer) (io.WriteCloser, error) {
	zw, ok := c.writers.Get().(*lz4.Writer)
	if !ok {
		zw = lz4.NewWriter(w)
		// 64 KiB blocks: stream messages are small, and the default 4 MiB
		// block would be allocated for each of them.
		if err := zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ConcurrencyOption(1)); err != nil {
			return nil, err
		}
	} else {
		zw.Reset(w)
	}
	return &writer{zw: zw, pool: &c.writers}, nil
}

// Decompress returns a reader of the decompressed content of r.
func (c *compressor) Decompress(r io.Reader) (io.Reader, error) {
	zr, ok := c.readers.Get().(*lz4.Reader)
	if !ok {
		zr = lz4.NewReader(r)
		if err := zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
			return nil, err
		}
	} else {
		zr.Reset(r)
	}
	return &reader{zr: zr, pool: &c.readers}, nil
}

type writer struct {
	zw   *lz4.Writer
	pool *sync.Pool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.zw == nil {
		return 0, io.ErrClosedPipe
	}
	return w.zw.Write(p)
}

// Close flushes the frame and returns the writer to the pool.
func (w *writer) Close() error {
	if w.zw == nil {
		return nil
	}
	err := w.zw.Close()
	w.zw.Reset(nil)
	w.pool.Put(w.zw)
	w.zw = nil
	return err
}

type reader struct {
	zr   *lz4.Reader
	pool *sync.Pool
}

// Read decompresses; at the end of the frame (or on an error) the reader
// goes back to the pool and later reads return io.EOF.
func (r *reader) Read(p []byte) (int, error) {
	if r.zr == nil {
		return 0, io.EOF
	}
	n, err := r.zr.Read(p)
	if err != nil {
		r.release()
	}
	return n, err
}

// Close returns the reader to the pool; gRPC calls it when it stops reading
// early (a message over the size limit).
func (r *reader) Close() error {
	r.release()
	return nil
}

func (r *reader) release() {
	if r.zr == nil {
		return
	}
	r.zr.Reset(nil)
	r.pool.Put(r.zr)
	r.zr = nil
}
