package lz4codec

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/encoding"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegistered(t *testing.T) {
	c := encoding.GetCompressor(Name)
	require.NotNil(t, c)
	assert.Equal(t, "lz4", c.Name())
}

func TestRoundTrip(t *testing.T) {
	c := encoding.GetCompressor(Name)
	inputs := [][]byte{
		nil,
		[]byte("x"),
		[]byte(strings.Repeat(`{"name":"http_requests_total","labels":{"method":"GET"}}`, 5000)),
	}
	for _, in := range inputs {
		// twice, so the second round uses pooled writers and readers
		for range 2 {
			var buf bytes.Buffer
			w, err := c.Compress(&buf)
			require.NoError(t, err)
			_, err = w.Write(in)
			require.NoError(t, err)
			require.NoError(t, w.Close())
			require.NoError(t, w.Close(), "Close is idempotent")
			if len(in) > 1000 {
				assert.Less(t, buf.Len(), len(in)/10, "repetitive input compresses")
			}
			r, err := c.Decompress(&buf)
			require.NoError(t, err)
			out, err := io.ReadAll(r)
			require.NoError(t, err)
			assert.Equal(t, len(in), len(out))
			assert.True(t, bytes.Equal(in, out))
			n, err := r.Read(make([]byte, 1))
			assert.Equal(t, 0, n)
			assert.ErrorIs(t, err, io.EOF, "a drained reader stays at EOF")
		}
	}
}

func TestCorruptInput(t *testing.T) {
	c := encoding.GetCompressor(Name)
	r, err := c.Decompress(bytes.NewReader([]byte("definitely not an lz4 frame")))
	require.NoError(t, err)
	_, err = io.ReadAll(r)
	require.Error(t, err)
}

func TestCloseBeforeEOF(t *testing.T) {
	c := encoding.GetCompressor(Name)
	var buf bytes.Buffer
	w, err := c.Compress(&buf)
	require.NoError(t, err)
	_, err = w.Write(bytes.Repeat([]byte("abc"), 100_000))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	r, err := c.Decompress(&buf)
	require.NoError(t, err)
	_, err = r.Read(make([]byte, 10))
	require.NoError(t, err)
	require.NoError(t, r.(io.Closer).Close())
	_, err = r.Read(make([]byte, 10))
	assert.ErrorIs(t, err, io.EOF)
}
