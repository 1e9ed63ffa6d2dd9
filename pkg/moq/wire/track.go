package wire

import "fmt"

// Track (lite-05/06) asks for a track's immutable properties on a TRACK stream.
type Track struct {
	Broadcast string
	Track     string
}

func (m Track) Append(b []byte, v Version) ([]byte, error) {
	if !v.HasTrackStream() {
		return b, fmt.Errorf("encode track: %w", ErrVersion)
	}
	return appendMessage(b, "track", MaxMessageSize, func(e *encoder) {
		e.path(m.Broadcast)
		e.str(m.Track, MaxStringLength)
	})
}

func ReadTrack(r Reader, v Version) (Track, error) {
	if !v.HasTrackStream() {
		return Track{}, fmt.Errorf("decode track: %w", ErrVersion)
	}
	body, err := readMessage(r, "track", MaxMessageSize)
	if err != nil {
		return Track{}, err
	}
	d := Decoder{b: body}
	m := Track{Broadcast: d.path(), Track: d.Str(MaxStringLength)}
	return m, d.Finish("track")
}

// TrackInfo (lite-05/06) is the publisher's only reply on a TRACK stream.
// Timescale (units per second, never 0) is the unit of the frame timestamps.
// Ordered is the retired byte, absent from lite-06 (see Subscribe).
type TrackInfo struct {
	Priority     uint8
	Ordered      uint8
	MaxLatencyMs uint64
	Timescale    uint64
}

func (m TrackInfo) Append(b []byte, v Version) ([]byte, error) {
	if !v.HasTrackStream() {
		return b, fmt.Errorf("encode track info: %w", ErrVersion)
	}
	return appendMessage(b, "track info", MaxMessageSize, func(e *encoder) {
		if m.Timescale == 0 {
			e.err = fmt.Errorf("timescale 0: %w", ErrInvalid)
		}
		e.u8(m.Priority)
		if !v.HasFrameBounds() {
			e.u8(m.Ordered)
		}
		e.varint(m.MaxLatencyMs)
		e.varint(m.Timescale)
	})
}

func ReadTrackInfo(r Reader, v Version) (TrackInfo, error) {
	if !v.HasTrackStream() {
		return TrackInfo{}, fmt.Errorf("decode track info: %w", ErrVersion)
	}
	body, err := readMessage(r, "track info", MaxMessageSize)
	if err != nil {
		return TrackInfo{}, err
	}
	d := Decoder{b: body}
	m := TrackInfo{Priority: d.U8()}
	if !v.HasFrameBounds() {
		m.Ordered = d.U8()
	}
	m.MaxLatencyMs = d.Varint()
	m.Timescale = d.Varint()
	if d.err == nil && m.Timescale == 0 {
		d.Fail(fmt.Errorf("timescale 0: %w", ErrInvalid))
	}
	return m, d.Finish("track info")
}
