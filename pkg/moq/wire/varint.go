package wire

import (
	"errors"
	"fmt"
	"io"
)

// Reader is what decoders read from: a QUIC stream wrapped in a bufio.Reader,
// or a bytes.Reader in tests.
type Reader interface {
	io.ByteReader
	io.Reader
}

// AppendVarint appends v as a QUIC varint. v must be at most MaxVarint.
func AppendVarint(b []byte, v uint64) ([]byte, error) {
	switch {
	case v < 1<<6:
		return append(b, byte(v)), nil
	case v < 1<<14:
		return append(b, byte(v>>8)|0x40, byte(v)), nil
	case v < 1<<30:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v)), nil
	case v <= MaxVarint:
		return append(b, byte(v>>56)|0xc0, byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v)), nil
	}
	return b, fmt.Errorf("varint %d: %w", v, ErrTooLarge)
}

// ReadVarint reads one QUIC varint. It returns io.EOF only if the stream ended
// before the first byte, and io.ErrUnexpectedEOF if it ended inside the varint.
func ReadVarint(r io.ByteReader) (uint64, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	n := 1 << (first >> 6)
	v := uint64(first & 0x3f)
	for i := 1; i < n; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		v = v<<8 | uint64(c)
	}
	return v, nil
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
