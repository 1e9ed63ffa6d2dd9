package wire

import "fmt"

// Fetch (lite-05/06) asks a publisher on a FETCH stream for one group of a
// track. The publisher answers with the group's frames on the same stream, in
// the group-stream frame format (timestamp baseline 0), then FIN; or resets
// the stream (CodeNotFound) when it does not have the group.
//
// From lite-06 a fetch may ask for part of the group: frames StartFrame to
// EndFrame (inclusive; absent: to the end of the group). The answer carries no
// header, so it begins exactly at StartFrame.
type Fetch struct {
	Broadcast  string
	Track      string
	Priority   uint8
	Group      uint64
	StartFrame uint64        // lite-06
	EndFrame   OptionalFrame // lite-06
}

func (m Fetch) Append(b []byte, v Version) ([]byte, error) {
	if !v.HasTrackStream() {
		return b, fmt.Errorf("encode fetch: %w", ErrVersion)
	}
	return appendMessage(b, "fetch", MaxMessageSize, func(e *encoder) {
		e.path(m.Broadcast)
		e.str(m.Track, MaxStringLength)
		e.u8(m.Priority)
		e.varint(m.Group)
		switch {
		case v.HasFrameBounds():
			if m.EndFrame.Set && m.EndFrame.Index < m.StartFrame {
				e.fail(fmt.Errorf("fetch frames %d to %d: %w", m.StartFrame, m.EndFrame.Index, ErrInvalid))
			}
			e.varint(m.StartFrame)
			e.optFrame(m.EndFrame)
		case m.StartFrame != 0 || m.EndFrame.Set:
			// The peer would serve the whole group, frames the caller excluded too.
			e.fail(fmt.Errorf("fetch frame bounds on %s: %w", v, ErrVersion))
		}
	})
}

func ReadFetch(r Reader, v Version) (Fetch, error) {
	if !v.HasTrackStream() {
		return Fetch{}, fmt.Errorf("decode fetch: %w", ErrVersion)
	}
	body, err := readMessage(r, "fetch", MaxMessageSize)
	if err != nil {
		return Fetch{}, err
	}
	d := Decoder{b: body}
	m := Fetch{Broadcast: d.path(), Track: d.Str(MaxStringLength), Priority: d.U8()}
	m.Group = d.Varint()
	if v.HasFrameBounds() {
		m.StartFrame = d.Varint()
		m.EndFrame = d.optFrame()
		// A range that ends before it starts can never be served (moq-net:
		// InvalidSubscribeLocation).
		if d.err == nil && m.EndFrame.Set && m.EndFrame.Index < m.StartFrame {
			d.Fail(fmt.Errorf("fetch frames %d to %d: %w", m.StartFrame, m.EndFrame.Index, ErrInvalid))
		}
	}
	return m, d.Finish("fetch")
}
