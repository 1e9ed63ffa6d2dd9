package ietf

import (
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/quic-go/quic-go/quicvarint"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// encoder accumulates a message payload; the first error sticks.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) varint(v uint64) {
	if e.err == nil {
		e.b, e.err = wire.AppendVarint(e.b, v)
	}
}

func (e *encoder) u8(v uint8) { e.b = append(e.b, v) }

func (e *encoder) bytes(s string) {
	e.varint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// message appends the payload built so far as a control message of type typ.
func (e *encoder) message(b []byte, typ uint64, name string) ([]byte, error) {
	if e.err != nil {
		return b, fmt.Errorf("encode %s: %w", name, e.err)
	}
	return AppendMessage(b, typ, e.b)
}

// decoder parses a payload held in memory; the first error sticks and every
// read past the end is io.ErrUnexpectedEOF.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) varint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n, err := quicvarint.Parse(d.b)
	if err != nil {
		d.fail(io.ErrUnexpectedEOF)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(io.ErrUnexpectedEOF)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// bytes returns a length-prefixed field, copied out of the payload. The u16
// message length already bounds it; limit bounds it further.
func (d *decoder) bytes(limit int) []byte {
	n := d.varint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.fail(fmt.Errorf("length %d: %w", n, wire.ErrTooLarge))
		return nil
	}
	if uint64(len(d.b)) < n {
		d.fail(io.ErrUnexpectedEOF)
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(limit int) string {
	v := d.bytes(limit)
	if d.err == nil && !utf8.Valid(v) {
		d.fail(fmt.Errorf("string is not UTF-8: %w", wire.ErrInvalid))
	}
	return string(v)
}

// params reads a count-prefixed list of key-value pairs (even keys: one
// varint; odd keys: length-prefixed bytes). Only varint values are kept: no
// parameter a subscriber acts on is a byte string.
func (d *decoder) params() map[uint64]uint64 {
	count := d.varint()
	if d.err == nil && count > MaxParams {
		d.fail(fmt.Errorf("%d parameters: %w", count, wire.ErrTooLarge))
	}
	var vars map[uint64]uint64
	for i := uint64(0); i < count && d.err == nil; i++ {
		key := d.varint()
		if key%2 == 1 {
			d.bytes(0xffff)
			continue
		}
		v := d.varint()
		if d.err != nil {
			break
		}
		if vars == nil {
			vars = map[uint64]uint64{}
		}
		vars[key] = v
	}
	return vars
}

// finish reports the first error, or ErrTrailingBytes if the payload is not
// used up (moq-net rejects such messages too).
func (d *decoder) finish(name string) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes: %w", len(d.b), wire.ErrTrailingBytes)
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", name, d.err)
	}
	return nil
}
