package wire

import (
	"fmt"
	"io"
)

// Subscribe asks for a track's groups on a subscribe stream. The subscriber
// picks ID, unique per session, and the relay tags the track's GROUP streams
// with it. Broadcast is relative to the session root (the URL path).
//
// Ordered is the retired group-order byte: moq-net 0.3.16 writes 0 and ignores
// it, but keeps it in the 03-05 layouts.
type Subscribe struct {
	ID           uint64
	Broadcast    string
	Track        string
	Priority     uint8 // higher is more important
	Ordered      uint8
	MaxLatencyMs uint64
	Start        OptionalGroup // absent: the latest group, from its first frame
	End          OptionalGroup // absent: unbounded; else the last group (inclusive)
}

func (m Subscribe) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	return appendMessage(b, "subscribe", MaxMessageSize, func(e *encoder) {
		e.varint(m.ID)
		e.path(m.Broadcast)
		e.str(m.Track, MaxStringLength)
		e.u8(m.Priority)
		e.u8(m.Ordered)
		e.varint(m.MaxLatencyMs)
		e.optGroup(m.Start)
		e.optGroup(m.End)
	})
}

func ReadSubscribe(r Reader, v Version) (Subscribe, error) {
	body, err := readMessage(r, "subscribe", MaxMessageSize)
	if err != nil {
		return Subscribe{}, err
	}
	d := decoder{b: body}
	m := Subscribe{
		ID:        d.varint(),
		Broadcast: d.path(),
		Track:     d.str(MaxStringLength),
		Priority:  d.u8(),
		Ordered:   d.u8(),
	}
	m.MaxLatencyMs = d.varint()
	m.Start = d.optGroup()
	m.End = d.optGroup()
	return m, d.finish("subscribe")
}

// SubscribeUpdate changes a subscription; it follows SUBSCRIBE on the same
// stream, with no type prefix.
type SubscribeUpdate struct {
	Priority     uint8
	Ordered      uint8
	MaxLatencyMs uint64
	Start        OptionalGroup
	End          OptionalGroup
}

func (m SubscribeUpdate) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	return appendMessage(b, "subscribe update", MaxMessageSize, func(e *encoder) {
		e.u8(m.Priority)
		e.u8(m.Ordered)
		e.varint(m.MaxLatencyMs)
		e.optGroup(m.Start)
		e.optGroup(m.End)
	})
}

func ReadSubscribeUpdate(r Reader, v Version) (SubscribeUpdate, error) {
	body, err := readMessage(r, "subscribe update", MaxMessageSize)
	if err != nil {
		return SubscribeUpdate{}, err
	}
	d := decoder{b: body}
	m := SubscribeUpdate{Priority: d.u8(), Ordered: d.u8()}
	m.MaxLatencyMs = d.varint()
	m.Start = d.optGroup()
	m.End = d.optGroup()
	return m, d.finish("subscribe update")
}

// ResponseKind names a message the publisher sends back on a subscribe stream.
type ResponseKind uint8

const (
	// ResponseOK (lite-03/04) accepts the subscription.
	ResponseOK ResponseKind = iota + 1
	// ResponseStart (lite-05) gives the absolute first group; acceptance is implicit.
	ResponseStart
	// ResponseEnd (lite-05) gives the exclusive end group (0: ended before any).
	ResponseEnd
	// ResponseDrop reports groups Start..End (inclusive) that will never arrive.
	ResponseDrop
)

// SubscribeOK is the lite-03/04 acceptance.
type SubscribeOK struct {
	Priority     uint8
	Ordered      uint8
	MaxLatencyMs uint64
	Start        OptionalGroup
	End          OptionalGroup
}

// SubscribeDrop reports a range of groups the publisher gave up on.
type SubscribeDrop struct {
	Start, End uint64
	Error      uint64
}

// SubscribeResponse is one typed response: a varint type, then a
// length-delimited body. Type numbers differ per version: 03/04 have OK=0 and
// DROP=1; 05 has START=0, END=1 and DROP=2.
type SubscribeResponse struct {
	Kind  ResponseKind
	OK    SubscribeOK   // ResponseOK
	Group uint64        // ResponseStart, ResponseEnd
	Drop  SubscribeDrop // ResponseDrop
}

func responseType(k ResponseKind, v Version) (uint64, bool) {
	switch {
	case k == ResponseOK && !v.HasTrackStream():
		return 0, true
	case k == ResponseDrop && !v.HasTrackStream():
		return 1, true
	case k == ResponseStart && v.HasTrackStream():
		return 0, true
	case k == ResponseEnd && v.HasTrackStream():
		return 1, true
	case k == ResponseDrop && v.HasTrackStream():
		return 2, true
	}
	return 0, false
}

func responseKind(t uint64, v Version) (ResponseKind, bool) {
	for _, k := range []ResponseKind{ResponseOK, ResponseStart, ResponseEnd, ResponseDrop} {
		if want, ok := responseType(k, v); ok && want == t {
			return k, true
		}
	}
	return 0, false
}

func (m SubscribeResponse) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	t, ok := responseType(m.Kind, v)
	if !ok {
		return b, fmt.Errorf("encode subscribe response kind %d: %w", m.Kind, ErrVersion)
	}
	b, _ = AppendVarint(b, t)
	return appendMessage(b, "subscribe response", MaxMessageSize, func(e *encoder) {
		switch m.Kind {
		case ResponseOK:
			e.u8(m.OK.Priority)
			e.u8(m.OK.Ordered)
			e.varint(m.OK.MaxLatencyMs)
			e.optGroup(m.OK.Start)
			e.optGroup(m.OK.End)
		case ResponseStart, ResponseEnd:
			e.varint(m.Group)
		case ResponseDrop:
			e.varint(m.Drop.Start)
			e.varint(m.Drop.End)
			e.varint(m.Drop.Error)
		}
	})
}

// ReadSubscribeResponse reads one response. io.EOF means the publisher closed
// the stream cleanly before it.
func ReadSubscribeResponse(r Reader, v Version) (SubscribeResponse, error) {
	t, err := ReadVarint(r)
	if err != nil {
		if err != io.EOF {
			err = fmt.Errorf("decode subscribe response type: %w", err)
		}
		return SubscribeResponse{}, err
	}
	kind, ok := responseKind(t, v)
	if !ok {
		return SubscribeResponse{}, fmt.Errorf("decode subscribe response type %d on %s: %w", t, v, ErrInvalid)
	}
	body, err := readMessage(r, "subscribe response", MaxMessageSize)
	if err != nil {
		return SubscribeResponse{}, noEOF(err)
	}
	d := decoder{b: body}
	m := SubscribeResponse{Kind: kind}
	switch kind {
	case ResponseOK:
		m.OK.Priority = d.u8()
		m.OK.Ordered = d.u8()
		m.OK.MaxLatencyMs = d.varint()
		m.OK.Start = d.optGroup()
		m.OK.End = d.optGroup()
	case ResponseStart, ResponseEnd:
		m.Group = d.varint()
	case ResponseDrop:
		m.Drop = SubscribeDrop{Start: d.varint(), End: d.varint(), Error: d.varint()}
	}
	return m, d.finish("subscribe response")
}
