package ietf

import (
	"fmt"

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

// readParams reads a count-prefixed list of key-value pairs (even keys: one
// varint; odd keys: length-prefixed bytes). Only varint values are kept: no
// parameter a subscriber acts on is a byte string.
func readParams(d *wire.Decoder) map[uint64]uint64 {
	count := d.Varint()
	if d.Err() == nil && count > MaxParams {
		d.Fail(fmt.Errorf("%d parameters: %w", count, wire.ErrTooLarge))
	}
	var vars map[uint64]uint64
	for i := uint64(0); i < count && d.Err() == nil; i++ {
		key := d.Varint()
		if key%2 == 1 {
			d.Bytes(0xffff)
			continue
		}
		v := d.Varint()
		if d.Err() != nil {
			break
		}
		if vars == nil {
			vars = map[uint64]uint64{}
		}
		vars[key] = v
	}
	return vars
}
