package wire

import (
	"fmt"
	"io"
)

// Group opens a GROUP uni stream (after the stream type): the subscription it
// belongs to and its sequence number. Frames follow until FIN. From lite-06,
// FrameStart is the index of the stream's first frame: non-zero when the
// relay holds, or the subscription asked for, only the group's tail.
type Group struct {
	SubscribeID uint64
	Sequence    uint64
	FrameStart  uint64 // lite-06
}

func (m Group) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	return appendMessage(b, "group", MaxMessageSize, func(e *encoder) {
		e.varint(m.SubscribeID)
		e.varint(m.Sequence)
		switch {
		case v.HasFrameBounds():
			e.varint(m.FrameStart)
		case m.FrameStart != 0:
			// The peer would number the frames from 0 and misalign the group.
			e.fail(fmt.Errorf("frame start on %s: %w", v, ErrVersion))
		}
	})
}

func ReadGroup(r Reader, v Version) (Group, error) {
	body, err := readMessage(r, "group", MaxMessageSize)
	if err != nil {
		return Group{}, noEOF(err)
	}
	d := Decoder{b: body}
	m := Group{SubscribeID: d.Varint(), Sequence: d.Varint()}
	if v.HasFrameBounds() {
		m.FrameStart = d.Varint()
	}
	return m, d.Finish("group")
}

// FrameHeader precedes each frame's payload on a group stream. On lite-05 it
// starts with the timestamp as a zigzag varint delta from the previous frame's
// (0 before the first frame of a group), in the track's TrackInfo.Timescale.
type FrameHeader struct {
	Size      uint64
	Timestamp uint64 // lite-05 only
}

// Append appends the header; prev is the previous frame's timestamp in this
// group (0 for the first).
func (h FrameHeader) Append(b []byte, v Version, prev uint64) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	if h.Size > MaxFrameSize {
		return b, fmt.Errorf("encode frame header: size %d: %w", h.Size, ErrTooLarge)
	}
	if v.HasTrackStream() {
		if h.Timestamp > MaxVarint || prev > MaxVarint {
			return b, fmt.Errorf("encode frame header: timestamp %d: %w", h.Timestamp, ErrTooLarge)
		}
		out, err := AppendVarint(b, zigzag(int64(h.Timestamp)-int64(prev)))
		if err != nil {
			return b, fmt.Errorf("encode frame timestamp delta: %w", err)
		}
		b = out
	}
	return AppendVarint(b, h.Size)
}

// ReadFrameHeader reads the next frame header of a group. io.EOF means the
// group ended cleanly on a frame boundary; a stream that ends inside the header
// yields io.ErrUnexpectedEOF. The caller then reads exactly Size payload bytes.
func ReadFrameHeader(r Reader, v Version, prev uint64) (FrameHeader, error) {
	var h FrameHeader
	if v.HasTrackStream() {
		zz, err := ReadVarint(r)
		if err == io.EOF {
			return h, io.EOF
		}
		if err != nil {
			return h, fmt.Errorf("decode frame timestamp: %w", err)
		}
		ts := int64(prev) + unzigzag(zz) // both operands are below 2^62: no overflow
		if ts < 0 || ts > MaxVarint {
			return h, fmt.Errorf("decode frame timestamp %d: %w", ts, ErrInvalid)
		}
		h.Timestamp = uint64(ts)
	}
	size, err := ReadVarint(r)
	if err == io.EOF && !v.HasTrackStream() {
		return h, io.EOF
	}
	if err != nil {
		return h, fmt.Errorf("decode frame size: %w", noEOF(err))
	}
	if size > MaxFrameSize {
		return h, fmt.Errorf("decode frame size %d: %w", size, ErrTooLarge)
	}
	h.Size = size
	return h, nil
}
