// Package ietf is the codec of IETF moq-transport draft-14, subscriber side, as
// moq-relay 0.17.8 speaks it (crate moq-net 0.3.16, src/ietf): the control
// messages of the one bidi control stream, and the SUBGROUP_HEADER streams that
// carry objects.
//
// It is apart from package wire because nothing but the QUIC varint is shared:
// draft-14 frames control messages as type + 16-bit length, negotiates with
// numeric versions in CLIENT_SETUP, names tracks by namespace tuples and sends
// objects, not frames. Like package wire it is pure: encoders append to a
// caller's slice, decoders read from a wire.Reader or a message body, and every
// length and count read is checked against the limits below before anything is
// allocated.
package ietf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// Draft14 is the version code of draft-ietf-moq-transport-14 in CLIENT_SETUP.
const Draft14 = 0xff00000e

// Protocol is the WebTransport subprotocol (and ALPN) under which moq-relay
// serves draft-14; Name is how a session reports it.
const (
	Protocol = "moq-00"
	Name     = "moq-transport-14"
)

// Control message types (draft-14 §9).
const (
	TypeSubscribeUpdate         = 0x02
	TypeSubscribe               = 0x03
	TypeSubscribeOK             = 0x04
	TypeSubscribeError          = 0x05
	TypePublishNamespace        = 0x06
	TypePublishNamespaceOK      = 0x07
	TypePublishNamespaceError   = 0x08
	TypePublishNamespaceDone    = 0x09
	TypeUnsubscribe             = 0x0a
	TypePublishDone             = 0x0b
	TypeTrackStatus             = 0x0d
	TypeGoaway                  = 0x10
	TypeSubscribeNamespace      = 0x11
	TypeSubscribeNamespaceOK    = 0x12
	TypeSubscribeNamespaceError = 0x13
	TypeUnsubscribeNamespace    = 0x14
	TypeMaxRequestID            = 0x15
	TypeFetch                   = 0x16
	TypeRequestsBlocked         = 0x1a
	TypePublish                 = 0x1d
	TypeClientSetup             = 0x20
	TypeServerSetup             = 0x21
)

// Limits on what a decoder accepts.
const (
	// MaxParams bounds the parameters of one message (moq-net MAX_PARAMS).
	MaxParams = 64
	// MaxNamespaceParts bounds a namespace tuple (the draft's 32 fields).
	MaxNamespaceParts = 32
	// MaxExtensions bounds one object's extension headers (moq-net
	// MAX_OBJECT_EXTENSIONS).
	MaxExtensions = 64 << 10
)

// Errors, besides those of package wire (ErrTooLarge, ErrTrailingBytes,
// ErrInvalid) that decoders also return.
var (
	// ErrUnexpectedType: a message arrived where another was required.
	ErrUnexpectedType = errors.New("unexpected message type")
)

// Message is one control message: its type and its payload.
type Message struct {
	Type uint64
	Body []byte
}

// AppendMessage appends a control message: its type, the payload length as a
// big-endian u16, then the payload.
func AppendMessage(b []byte, typ uint64, body []byte) ([]byte, error) {
	if len(body) > 0xffff {
		return b, fmt.Errorf("encode message %#x: %d bytes: %w", typ, len(body), wire.ErrTooLarge)
	}
	b, err := wire.AppendVarint(b, typ)
	if err != nil {
		return b, fmt.Errorf("encode message type: %w", err)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...), nil
}

// ReadMessage reads one control message. The u16 length bounds the payload to
// 64 KiB by construction. io.EOF means the stream ended cleanly before it.
func ReadMessage(r wire.Reader) (Message, error) {
	typ, err := wire.ReadVarint(r)
	if err == io.EOF {
		return Message{}, io.EOF
	}
	if err != nil {
		return Message{}, fmt.Errorf("decode message type: %w", err)
	}
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return Message{}, fmt.Errorf("decode message %#x length: %w", typ, noEOF(err))
	}
	body := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return Message{}, fmt.Errorf("decode message %#x body: %w", typ, noEOF(err))
	}
	return Message{Type: typ, Body: body}, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
