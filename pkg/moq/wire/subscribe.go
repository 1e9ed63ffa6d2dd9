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
// it, but keeps it in the 03-05 layouts; lite-06 drops it from the wire.
//
// Start differs by version. Before lite-06 an absent Start means the latest
// group. From lite-06 it is a floor the relay resolves the start from with
// MaxLatencyMs (0: the live edge); the wire carries the raw sequence, so a Start
// of group 0 without a StartFrame is no floor at all and decodes as absent.
type Subscribe struct {
	ID           uint64
	Broadcast    string
	Track        string
	Priority     uint8 // higher is more important
	Ordered      uint8
	MaxLatencyMs uint64
	Start        OptionalGroup // absent: the latest group (lite-06: no floor)
	End          OptionalGroup // absent: unbounded; else the last group (inclusive)
	StartFrame   uint64        // lite-06: first frame of the Start group to deliver
	EndFrame     OptionalFrame // lite-06: last frame of the End group (inclusive)
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
		e.subRange(v, subscribeRange{m.Ordered, m.MaxLatencyMs, m.Start, m.End, m.StartFrame, m.EndFrame})
	})
}

func ReadSubscribe(r Reader, v Version) (Subscribe, error) {
	body, err := readMessage(r, "subscribe", MaxMessageSize)
	if err != nil {
		return Subscribe{}, err
	}
	d := Decoder{b: body}
	m := Subscribe{
		ID:        d.Varint(),
		Broadcast: d.path(),
		Track:     d.Str(MaxStringLength),
		Priority:  d.U8(),
	}
	sr := d.subRange(v)
	m.Ordered, m.MaxLatencyMs, m.Start, m.End, m.StartFrame, m.EndFrame =
		sr.ordered, sr.maxLatencyMs, sr.start, sr.end, sr.startFrame, sr.endFrame
	return m, d.Finish("subscribe")
}

// SubscribeUpdate changes a subscription; it follows SUBSCRIBE on the same
// stream, with no type prefix. Its fields mean what Subscribe's do.
type SubscribeUpdate struct {
	Priority     uint8
	Ordered      uint8
	MaxLatencyMs uint64
	Start        OptionalGroup
	End          OptionalGroup
	StartFrame   uint64        // lite-06
	EndFrame     OptionalFrame // lite-06
}

func (m SubscribeUpdate) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	return appendMessage(b, "subscribe update", MaxMessageSize, func(e *encoder) {
		e.u8(m.Priority)
		e.subRange(v, subscribeRange{m.Ordered, m.MaxLatencyMs, m.Start, m.End, m.StartFrame, m.EndFrame})
	})
}

func ReadSubscribeUpdate(r Reader, v Version) (SubscribeUpdate, error) {
	body, err := readMessage(r, "subscribe update", MaxMessageSize)
	if err != nil {
		return SubscribeUpdate{}, err
	}
	d := Decoder{b: body}
	m := SubscribeUpdate{Priority: d.U8()}
	sr := d.subRange(v)
	m.Ordered, m.MaxLatencyMs, m.Start, m.End, m.StartFrame, m.EndFrame =
		sr.ordered, sr.maxLatencyMs, sr.start, sr.end, sr.startFrame, sr.endFrame
	return m, d.Finish("subscribe update")
}

// subscribeRange is the tail SUBSCRIBE and SUBSCRIBE_UPDATE share, after the
// priority: [Ordered] MaxLatency Start End [StartFrame EndFrame].
type subscribeRange struct {
	ordered      uint8
	maxLatencyMs uint64
	start, end   OptionalGroup
	startFrame   uint64
	endFrame     OptionalFrame
}

func (e *encoder) subRange(v Version, r subscribeRange) {
	// A frame bound qualifies a named group; without one there is nothing to
	// count frames from (moq-net: InvalidSubscribeLocation).
	if (r.startFrame != 0 && !r.start.Set) || (r.endFrame.Set && !r.end.Set) {
		e.fail(fmt.Errorf("frame bound without its group: %w", ErrInvalid))
	}
	if !v.HasFrameBounds() {
		if r.startFrame != 0 || r.endFrame.Set {
			// Widening to whole groups would deliver frames the caller excluded.
			e.fail(fmt.Errorf("frame bounds on %s: %w", v, ErrVersion))
		}
		e.u8(r.ordered)
		e.varint(r.maxLatencyMs)
		e.optGroup(r.start)
		e.optGroup(r.end)
		return
	}
	e.varint(r.maxLatencyMs)
	var floor uint64 // absent and group 0 are the same floor
	if r.start.Set {
		floor = r.start.Seq
	}
	e.varint(floor)
	e.optGroup(r.end)
	e.varint(r.startFrame)
	e.optFrame(r.endFrame)
}

func (d *Decoder) subRange(v Version) subscribeRange {
	var r subscribeRange
	if !v.HasFrameBounds() {
		r.ordered = d.U8()
		r.maxLatencyMs = d.Varint()
		r.start = d.optGroup()
		r.end = d.optGroup()
		return r
	}
	r.maxLatencyMs = d.Varint()
	floor := d.Varint()
	r.end = d.optGroup()
	r.startFrame = d.Varint()
	r.endFrame = d.optFrame()
	// Group 0 stays named only when a frame start qualifies it.
	r.start = OptionalGroup{Seq: floor, Set: floor != 0 || r.startFrame != 0}
	if d.err == nil && r.endFrame.Set && !r.end.Set {
		d.Fail(fmt.Errorf("frame end without an end group: %w", ErrInvalid))
	}
	return r
}

// ResponseKind names a message the publisher sends back on a subscribe stream.
type ResponseKind uint8

const (
	// ResponseOK (lite-03/04) accepts the subscription.
	ResponseOK ResponseKind = iota + 1
	// ResponseStart (lite-05/06) gives the absolute first group; acceptance is implicit.
	ResponseStart
	// ResponseEnd (lite-05/06) gives the exclusive end group (0: ended before any).
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
// DROP=1; 05 and 06 have START=0, END=1 and DROP=2.
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
	d := Decoder{b: body}
	m := SubscribeResponse{Kind: kind}
	switch kind {
	case ResponseOK:
		m.OK.Priority = d.U8()
		m.OK.Ordered = d.U8()
		m.OK.MaxLatencyMs = d.Varint()
		m.OK.Start = d.optGroup()
		m.OK.End = d.optGroup()
	case ResponseStart, ResponseEnd:
		m.Group = d.Varint()
	case ResponseDrop:
		m.Drop = SubscribeDrop{Start: d.Varint(), End: d.Varint(), Error: d.Varint()}
	}
	return m, d.Finish("subscribe response")
}
