package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/quic-go/quicvarint"
)

// Reader is what decoders read from: a QUIC stream wrapped in a bufio.Reader,
// or a bytes.Reader in tests.
type Reader interface {
	io.ByteReader
	io.Reader
}

// AppendVarint appends v as a QUIC varint. Values over MaxVarint are an error,
// where quicvarint.Append would panic.
func AppendVarint(b []byte, v uint64) ([]byte, error) {
	if v > MaxVarint {
		return b, fmt.Errorf("varint %d: %w", v, ErrTooLarge)
	}
	return quicvarint.Append(b, v), nil
}

// ReadVarint reads one QUIC varint. It returns io.EOF only if the stream ended
// before the first byte, and io.ErrUnexpectedEOF if it ended inside the varint
// (quicvarint.Read returns io.EOF for both).
func ReadVarint(r io.ByteReader) (uint64, error) {
	cr := countingByteReader{r: r}
	v, err := quicvarint.Read(&cr)
	if err != nil && cr.n > 0 {
		return 0, noEOF(err)
	}
	return v, err
}

// countingByteReader counts the bytes read through it.
type countingByteReader struct {
	r io.ByteReader
	n int
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// noEOF turns a clean EOF met in the middle of something into an unexpected one.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// zigzag maps a signed delta onto the unsigned varint space (lite-05 timestamps):
// 0, -1, 1, -2 … become 0, 1, 2, 3 …
func zigzag(n int64) uint64 { return uint64(n<<1) ^ uint64(n>>63) }

func unzigzag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }
