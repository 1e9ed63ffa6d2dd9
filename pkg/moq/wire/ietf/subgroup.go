package ietf

import (
	"fmt"
	"io"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// Subgroup header types (draft-14 §10.4.2) span 0x10..0x1d; the low bits say
// which fields follow.
const (
	subgroupFirst      = 0x10
	subgroupLast       = 0x1d
	subgroupExtensions = 0x01 // every object carries an extension block
	subgroupIsFirstID  = 0x02 // subgroup id = first object id (no field)
	subgroupExplicitID = 0x04 // subgroup id field present
	subgroupEndOfGroup = 0x08 // the stream's FIN ends the group
)

// Object statuses of an empty object (draft-14 §10.2.1.1).
const (
	StatusNormal     = 0x0
	StatusEndOfGroup = 0x3
	StatusEndOfTrack = 0x4
)

// SubgroupHeader opens a uni data stream.
type SubgroupHeader struct {
	Type       uint64
	TrackAlias uint64
	Group      uint64
	// Subgroup is set only when Type carries it explicitly; moq-relay sends
	// subgroup 0 without the field.
	Subgroup uint64
	Priority uint8
}

// HasExtensions reports whether each object carries an extension block.
func (h SubgroupHeader) HasExtensions() bool { return h.Type&subgroupExtensions != 0 }

// Append appends the header (for tests and fake relays).
func (h SubgroupHeader) Append(b []byte) ([]byte, error) {
	if err := checkSubgroupType(h.Type); err != nil {
		return b, fmt.Errorf("encode subgroup header: %w", err)
	}
	var e encoder
	e.varint(h.Type)
	e.varint(h.TrackAlias)
	e.varint(h.Group)
	if h.Type&subgroupExplicitID != 0 {
		e.varint(h.Subgroup)
	}
	e.u8(h.Priority)
	if e.err != nil {
		return b, fmt.Errorf("encode subgroup header: %w", e.err)
	}
	return append(b, e.b...), nil
}

func checkSubgroupType(t uint64) error {
	if t < subgroupFirst || t > subgroupLast || t&(subgroupIsFirstID|subgroupExplicitID) == subgroupIsFirstID|subgroupExplicitID {
		return fmt.Errorf("stream type %#x: %w", t, wire.ErrInvalid)
	}
	return nil
}

// ReadSubgroupHeader reads the header of a uni data stream. io.EOF means the
// stream ended before its first byte.
func ReadSubgroupHeader(r wire.Reader) (SubgroupHeader, error) {
	var h SubgroupHeader
	var err error
	if h.Type, err = wire.ReadVarint(r); err != nil {
		if err == io.EOF {
			return h, io.EOF
		}
		return h, fmt.Errorf("decode stream type: %w", err)
	}
	if err := checkSubgroupType(h.Type); err != nil {
		return h, fmt.Errorf("decode subgroup header: %w", err)
	}
	fields := []*uint64{&h.TrackAlias, &h.Group}
	if h.Type&subgroupExplicitID != 0 {
		fields = append(fields, &h.Subgroup)
	}
	for _, f := range fields {
		if *f, err = wire.ReadVarint(r); err != nil {
			return h, fmt.Errorf("decode subgroup header: %w", noEOF(err))
		}
	}
	if h.Priority, err = r.ReadByte(); err != nil {
		return h, fmt.Errorf("decode subgroup header: %w", noEOF(err))
	}
	return h, nil
}

// ObjectHeader precedes each object's payload on a subgroup stream.
type ObjectHeader struct {
	// IDDelta is the object id minus the previous one minus one (the first
	// object's delta is its id).
	IDDelta uint64
	// Extensions is the raw extension block, when the stream type has one.
	Extensions []byte
	Size       uint64
	// Status is set only for an empty object (Size 0).
	Status uint64
}

// Append appends the header; withExtensions follows the stream type.
func (h ObjectHeader) Append(b []byte, withExtensions bool) ([]byte, error) {
	var e encoder
	e.varint(h.IDDelta)
	if withExtensions {
		if len(h.Extensions) > MaxExtensions {
			return b, fmt.Errorf("encode object header: extensions of %d bytes: %w", len(h.Extensions), wire.ErrTooLarge)
		}
		e.bytes(string(h.Extensions))
	} else if len(h.Extensions) > 0 {
		return b, fmt.Errorf("encode object header: extensions on a stream without them: %w", wire.ErrInvalid)
	}
	e.varint(h.Size)
	if h.Size == 0 {
		e.varint(h.Status)
	} else if h.Status != StatusNormal {
		return b, fmt.Errorf("encode object header: status %#x with a payload: %w", h.Status, wire.ErrInvalid)
	}
	if e.err != nil {
		return b, fmt.Errorf("encode object header: %w", e.err)
	}
	return append(b, e.b...), nil
}

// ReadObjectHeader reads the next object header. io.EOF means the stream
// ended cleanly between objects. A payload over wire.MaxFrameSize is refused
// before it is read.
func ReadObjectHeader(r wire.Reader, withExtensions bool) (ObjectHeader, error) {
	var h ObjectHeader
	var err error
	if h.IDDelta, err = wire.ReadVarint(r); err != nil {
		if err == io.EOF {
			return h, io.EOF
		}
		return h, fmt.Errorf("decode object id: %w", err)
	}
	if withExtensions {
		n, err := wire.ReadVarint(r)
		if err != nil {
			return h, fmt.Errorf("decode object extensions length: %w", noEOF(err))
		}
		if n > MaxExtensions {
			return h, fmt.Errorf("decode object: extensions of %d bytes: %w", n, wire.ErrTooLarge)
		}
		if n > 0 {
			h.Extensions = make([]byte, n)
			if _, err := io.ReadFull(r, h.Extensions); err != nil {
				return h, fmt.Errorf("decode object extensions: %w", noEOF(err))
			}
		}
	}
	if h.Size, err = wire.ReadVarint(r); err != nil {
		return h, fmt.Errorf("decode object size: %w", noEOF(err))
	}
	if h.Size > wire.MaxFrameSize {
		return h, fmt.Errorf("decode object: %d bytes: %w", h.Size, wire.ErrTooLarge)
	}
	if h.Size == 0 {
		if h.Status, err = wire.ReadVarint(r); err != nil {
			return h, fmt.Errorf("decode object status: %w", noEOF(err))
		}
	}
	return h, nil
}
