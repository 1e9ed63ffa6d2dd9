package wire

import "fmt"

// Fetch (lite-05) asks a publisher on a FETCH stream for one whole group of a
// track. The publisher answers with the group's frames on the same stream, in
// the group-stream frame format (timestamp baseline 0), then FIN; or resets
// the stream (CodeNotFound) when it does not have the group.
type Fetch struct {
	Broadcast string
	Track     string
	Priority  uint8
	Group     uint64
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
	d := decoder{b: body}
	m := Fetch{Broadcast: d.path(), Track: d.str(MaxStringLength), Priority: d.u8()}
	m.Group = d.varint()
	return m, d.finish("fetch")
}
