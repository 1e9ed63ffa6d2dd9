package ietf

import (
	"fmt"
	"strings"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// Setup parameter keys (draft-14 §9.3.1). Odd keys carry bytes, even ones a
// varint.
const (
	ParamPath           = 0x01
	ParamMaxRequestID   = 0x02
	ParamAuthority      = 0x05
	ParamImplementation = 0x07
)

// ClientSetup is CLIENT_SETUP. Path and Authority are for raw QUIC, which
// carries no request URI: the path (with "?jwt=..." when given) and host:port
// of the moqt URL, each sent only when non-empty. Over WebTransport the URL
// carries them and both stay empty.
type ClientSetup struct {
	Versions       []uint64
	MaxRequestID   uint64
	Implementation string
	Path           string
	Authority      string
}

// Append appends the message.
func (m ClientSetup) Append(b []byte) ([]byte, error) {
	var e encoder
	e.varint(uint64(len(m.Versions)))
	for _, v := range m.Versions {
		e.varint(v)
	}
	params := 2
	for _, p := range []string{m.Path, m.Authority} {
		if p != "" {
			params++
		}
	}
	e.varint(uint64(params))
	if m.Path != "" {
		e.varint(ParamPath)
		e.bytes(m.Path)
	}
	e.varint(ParamMaxRequestID)
	e.varint(m.MaxRequestID)
	if m.Authority != "" {
		e.varint(ParamAuthority)
		e.bytes(m.Authority)
	}
	e.varint(ParamImplementation)
	e.bytes(m.Implementation)
	return e.message(b, TypeClientSetup, "client setup")
}

// ServerSetup is SERVER_SETUP: the version the relay chose and how many
// requests it accepts from us (MAX_REQUEST_ID; absent means 0).
type ServerSetup struct {
	Version      uint64
	MaxRequestID uint64
}

// Append appends the message.
func (m ServerSetup) Append(b []byte) ([]byte, error) {
	var e encoder
	e.varint(m.Version)
	e.varint(1)
	e.varint(ParamMaxRequestID)
	e.varint(m.MaxRequestID)
	return e.message(b, TypeServerSetup, "server setup")
}

// ParseServerSetup decodes a SERVER_SETUP message.
func ParseServerSetup(msg Message) (ServerSetup, error) {
	if msg.Type != TypeServerSetup {
		return ServerSetup{}, fmt.Errorf("decode server setup: type %#x: %w", msg.Type, ErrUnexpectedType)
	}
	d := wire.NewDecoder(msg.Body)
	m := ServerSetup{Version: d.Varint()}
	m.MaxRequestID = readParams(d)[ParamMaxRequestID]
	return m, d.Finish("server setup")
}

// Filter types of SUBSCRIBE (draft-14 §9.7).
const (
	FilterNextGroupStart = 0x1
	FilterLargestObject  = 0x2
	FilterAbsoluteStart  = 0x3
)

// Group orders.
const (
	GroupOrderPublisher  = 0x0
	GroupOrderAscending  = 0x1
	GroupOrderDescending = 0x2
)

// Subscribe is SUBSCRIBE with an open-ended filter: FilterNextGroupStart, or
// FilterAbsoluteStart at StartGroup, object 0. Forward is always 1: moq-relay
// refuses anything else.
type Subscribe struct {
	RequestID  uint64
	Namespace  []string
	Track      string
	Priority   uint8
	GroupOrder uint8
	Filter     uint64
	StartGroup uint64
}

// Append appends the message.
func (m Subscribe) Append(b []byte) ([]byte, error) {
	var e encoder
	e.varint(m.RequestID)
	e.tuple(m.Namespace)
	e.bytes(m.Track)
	e.u8(m.Priority)
	e.u8(m.GroupOrder)
	e.u8(1) // forward
	e.varint(m.Filter)
	switch m.Filter {
	case FilterNextGroupStart, FilterLargestObject:
	case FilterAbsoluteStart:
		e.varint(m.StartGroup)
		e.varint(0)
	default:
		return b, fmt.Errorf("encode subscribe: filter %#x: %w", m.Filter, wire.ErrInvalid)
	}
	e.varint(0) // no parameters
	return e.message(b, TypeSubscribe, "subscribe")
}

// ParseSubscribe decodes a SUBSCRIBE (for tests and fake relays).
func ParseSubscribe(msg Message) (Subscribe, error) {
	if msg.Type != TypeSubscribe {
		return Subscribe{}, fmt.Errorf("decode subscribe: type %#x: %w", msg.Type, ErrUnexpectedType)
	}
	d := wire.NewDecoder(msg.Body)
	m := Subscribe{RequestID: d.Varint()}
	m.Namespace = readNamespace(d)
	m.Track = d.Str(wire.MaxStringLength)
	m.Priority = d.U8()
	m.GroupOrder = d.U8()
	if fwd := d.U8(); d.Err() == nil && fwd != 1 {
		d.Fail(fmt.Errorf("forward %d: %w", fwd, wire.ErrInvalid))
	}
	m.Filter = d.Varint()
	switch m.Filter {
	case FilterNextGroupStart, FilterLargestObject:
	case FilterAbsoluteStart:
		m.StartGroup = d.Varint()
		if obj := d.Varint(); d.Err() == nil && obj != 0 {
			d.Fail(fmt.Errorf("start object %d: %w", obj, wire.ErrInvalid))
		}
	default:
		d.Fail(fmt.Errorf("filter %#x: %w", m.Filter, wire.ErrInvalid))
	}
	if n := readParams(d); d.Err() == nil && len(n) > 0 {
		d.Fail(fmt.Errorf("subscribe parameters: %w", wire.ErrInvalid))
	}
	return m, d.Finish("subscribe")
}

func readNamespace(d *wire.Decoder) []string {
	count := d.Varint()
	if d.Err() == nil && count > MaxNamespaceParts {
		d.Fail(fmt.Errorf("namespace of %d fields: %w", count, wire.ErrTooLarge))
	}
	var parts []string
	for i := uint64(0); i < count && d.Err() == nil; i++ {
		parts = append(parts, d.Str(wire.MaxPathLength))
	}
	return parts
}

// SubscribeOK is SUBSCRIBE_OK. Largest is the relay's newest location when
// ContentExists.
type SubscribeOK struct {
	RequestID     uint64
	TrackAlias    uint64
	Expires       uint64
	GroupOrder    uint8
	ContentExists bool
	LargestGroup  uint64
	LargestObject uint64
}

// Append appends the message (for tests and fake relays).
func (m SubscribeOK) Append(b []byte) ([]byte, error) {
	var e encoder
	e.varint(m.RequestID)
	e.varint(m.TrackAlias)
	e.varint(m.Expires)
	e.u8(m.GroupOrder)
	if m.ContentExists {
		e.u8(1)
		e.varint(m.LargestGroup)
		e.varint(m.LargestObject)
	} else {
		e.u8(0)
	}
	e.varint(0)
	return e.message(b, TypeSubscribeOK, "subscribe ok")
}

// ParseSubscribeOK decodes a SUBSCRIBE_OK.
func ParseSubscribeOK(msg Message) (SubscribeOK, error) {
	d := wire.NewDecoder(msg.Body)
	m := SubscribeOK{RequestID: d.Varint(), TrackAlias: d.Varint(), Expires: d.Varint(), GroupOrder: d.U8()}
	switch exists := d.U8(); {
	case d.Err() != nil:
	case exists == 1:
		m.ContentExists = true
		m.LargestGroup, m.LargestObject = d.Varint(), d.Varint()
	case exists != 0:
		d.Fail(fmt.Errorf("content exists %d: %w", exists, wire.ErrInvalid))
	}
	if m.GroupOrder > GroupOrderDescending {
		d.Fail(fmt.Errorf("group order %d: %w", m.GroupOrder, wire.ErrInvalid))
	}
	readParams(d)
	return m, d.Finish("subscribe ok")
}

// RequestError is the shape of SUBSCRIBE_ERROR, PUBLISH_NAMESPACE_ERROR and
// SUBSCRIBE_NAMESPACE_ERROR in draft-14 as moq-net encodes them: the request,
// an error code and a reason.
type RequestError struct {
	RequestID uint64
	Code      uint64
	Reason    string
}

// Append appends the error as a message of type typ.
func (m RequestError) Append(b []byte, typ uint64) ([]byte, error) {
	var e encoder
	e.varint(m.RequestID)
	e.varint(m.Code)
	if len(m.Reason) > wire.MaxStringLength {
		return b, fmt.Errorf("encode request error: reason of %d bytes: %w", len(m.Reason), wire.ErrTooLarge)
	}
	e.bytes(m.Reason)
	return e.message(b, typ, "request error")
}

// ParseRequestError decodes any of the request error messages.
func ParseRequestError(msg Message) (RequestError, error) {
	d := wire.NewDecoder(msg.Body)
	m := RequestError{RequestID: d.Varint(), Code: d.Varint(), Reason: d.Str(wire.MaxStringLength)}
	return m, d.Finish("request error")
}

// Error codes we send and check.
const (
	// CodeNotSupported refuses a request a subscriber does not serve.
	CodeNotSupported = 0x3
	// CodeTrackDoesNotExist (SUBSCRIBE_ERROR) is what moq-relay sends for an
	// unknown broadcast or track.
	CodeTrackDoesNotExist = 0x4
)

// PublishDone is PUBLISH_DONE (SUBSCRIBE_DONE in earlier drafts): the relay
// ended a subscription after StreamCount data streams.
type PublishDone struct {
	RequestID   uint64
	Status      uint64
	StreamCount uint64
	Reason      string
}

// Append appends the message (for tests and fake relays).
func (m PublishDone) Append(b []byte) ([]byte, error) {
	var e encoder
	e.varint(m.RequestID)
	e.varint(m.Status)
	e.varint(m.StreamCount)
	e.bytes(m.Reason)
	return e.message(b, TypePublishDone, "publish done")
}

// ParsePublishDone decodes a PUBLISH_DONE.
func ParsePublishDone(msg Message) (PublishDone, error) {
	d := wire.NewDecoder(msg.Body)
	m := PublishDone{RequestID: d.Varint(), Status: d.Varint(), StreamCount: d.Varint(), Reason: d.Str(wire.MaxStringLength)}
	return m, d.Finish("publish done")
}

// Goaway is GOAWAY: the relay asks us to reconnect, to URI if one is given.
type Goaway struct{ URI string }

// Append appends the message (for tests and fake relays).
func (m Goaway) Append(b []byte) ([]byte, error) {
	var e encoder
	if len(m.URI) > wire.MaxStringLength {
		return b, fmt.Errorf("encode goaway: URI of %d bytes: %w", len(m.URI), wire.ErrTooLarge)
	}
	e.bytes(m.URI)
	return e.message(b, TypeGoaway, "goaway")
}

// ParseGoaway decodes a GOAWAY.
func ParseGoaway(msg Message) (Goaway, error) {
	d := wire.NewDecoder(msg.Body)
	m := Goaway{URI: d.Str(wire.MaxStringLength)}
	return m, d.Finish("goaway")
}

// ParseRequestID reads the request id that leads a request message
// (MAX_REQUEST_ID carries the new limit the same way), ignoring the rest.
func ParseRequestID(msg Message) (uint64, error) {
	d := wire.NewDecoder(msg.Body)
	id := d.Varint()
	if d.Err() != nil {
		return 0, fmt.Errorf("decode message %#x request id: %w", msg.Type, d.Err())
	}
	return id, nil
}

// Namespace maps a broadcast path to the namespace tuple moq-relay uses for
// it: one field per '/'-separated segment. moq-relay reads '\' as an escape
// inside a field, so a path holding one has no faithful tuple and is refused.
func Namespace(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	if strings.Contains(path, `\`) {
		return nil, fmt.Errorf("broadcast path %q holds a backslash: %w", path, wire.ErrInvalid)
	}
	parts := strings.Split(path, "/")
	if len(parts) > MaxNamespaceParts {
		return nil, fmt.Errorf("broadcast path %q has more than %d segments: %w", path, MaxNamespaceParts, wire.ErrTooLarge)
	}
	return parts, nil
}
