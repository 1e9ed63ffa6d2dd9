package wire

import (
	"fmt"
	"io"
)

// ReadStreamType reads the varint that opens every moq-lite stream. io.EOF
// means the stream ended before it.
func ReadStreamType(r io.ByteReader) (uint64, error) {
	t, err := ReadVarint(r)
	if err != nil && err != io.EOF {
		return 0, fmt.Errorf("decode stream type: %w", err)
	}
	return t, err
}

// AppendStreamType appends a stream type id.
func AppendStreamType(b []byte, t uint64) []byte {
	b, _ = AppendVarint(b, t) // stream types are small constants
	return b
}
