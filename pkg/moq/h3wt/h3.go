package h3wt

import (
	"bytes"
	"fmt"
	"io"

	"github.com/quic-go/qpack"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// HTTP/3 and WebTransport identifiers (RFC 9114, RFC 9297, RFC 9220 and
// draft-ietf-webtrans-http3-02, as web-transport-proto 0.6.2 implements them).
const (
	streamControl      = 0x00 // uni: HTTP/3 control stream
	streamQPACKEncoder = 0x02
	streamQPACKDecoder = 0x03
	streamWTUni        = 0x54 // uni: WebTransport stream, then the session id
	frameWTBidi        = 0x41 // bidi: WebTransport stream, then the session id

	frameData     = 0x00
	frameHeaders  = 0x01
	frameSettings = 0x04

	settingEnableConnectProtocol = 0x08
	settingH3Datagram            = 0x33
	settingEnableWebTransport    = 0x2b603742 // the draft-02 era flag moq-relay checks
	settingWTMaxSessions         = 0xc671706a

	errH3NoError            = 0x100
	errH3StreamCreation     = 0x103
	errH3MessageError       = 0x10e
	capsuleCloseSession     = 0x2843
	maxHeadersSize          = 64 << 10
	maxSettingsSize         = 8 << 10
	maxSkippedFrameSize     = 64 << 10
	maxCloseCapsuleSize     = 1024 + 4
	webTransportFirstErr    = 0x52e4a40fa8db
	webTransportLastErr     = 0x52e5ac983162
	webTransportErrInterval = 0x1f
)

// appendFrame appends an HTTP/3 frame: type, length, payload.
func appendFrame(b []byte, typ uint64, payload []byte) []byte {
	b, _ = wire.AppendVarint(b, typ)
	b, _ = wire.AppendVarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// clientSettings is our SETTINGS frame: datagrams, and WebTransport in both the
// deprecated form (ENABLE_WEBTRANSPORT=1) and the later one (MAX_SESSIONS),
// either of which web-transport-proto's supports_webtransport() accepts.
func clientSettings() []byte {
	var p []byte
	for _, kv := range [][2]uint64{{settingH3Datagram, 1}, {settingEnableWebTransport, 1}, {settingWTMaxSessions, 1}} {
		p, _ = wire.AppendVarint(p, kv[0])
		p, _ = wire.AppendVarint(p, kv[1])
	}
	b, _ := wire.AppendVarint(nil, streamControl)
	return appendFrame(b, frameSettings, p)
}

// readFrameHeader reads an HTTP/3 frame's type and length, refusing lengths
// over limit.
func readFrameHeader(r wire.Reader, limit uint64) (typ, n uint64, err error) {
	if typ, err = wire.ReadVarint(r); err != nil {
		return 0, 0, err
	}
	if n, err = wire.ReadVarint(r); err != nil {
		return 0, 0, fmt.Errorf("h3 frame length: %w", err)
	}
	if n > limit {
		return 0, 0, fmt.Errorf("h3 frame type %#x of %d bytes: too large", typ, n)
	}
	return typ, n, nil
}

// readSettings reads the peer's control stream up to its SETTINGS frame.
func readSettings(r wire.Reader) (map[uint64]uint64, error) {
	typ, n, err := readFrameHeader(r, maxSettingsSize)
	if err != nil {
		return nil, fmt.Errorf("read SETTINGS: %w", err)
	}
	if typ != frameSettings {
		return nil, fmt.Errorf("control stream starts with frame %#x, not SETTINGS", typ)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read SETTINGS: %w", err)
	}
	br := bytes.NewReader(body)
	settings := map[uint64]uint64{}
	for br.Len() > 0 {
		id, err := wire.ReadVarint(br)
		if err != nil {
			return nil, fmt.Errorf("parse SETTINGS: %w", err)
		}
		val, err := wire.ReadVarint(br)
		if err != nil {
			return nil, fmt.Errorf("parse SETTINGS: %w", err)
		}
		if _, dup := settings[id]; dup {
			return nil, fmt.Errorf("SETTINGS repeats %#x", id)
		}
		settings[id] = val
	}
	return settings, nil
}

// encodeHeaders QPACK-encodes fields using the static table only.
func encodeHeaders(fields [][2]string) []byte {
	var buf bytes.Buffer
	enc := qpack.NewEncoder(&buf)
	for _, f := range fields {
		_ = enc.WriteField(qpack.HeaderField{Name: f[0], Value: f[1]}) // writes to a bytes.Buffer cannot fail
	}
	return buf.Bytes()
}

// readHeaders reads the next HEADERS frame on a request stream, skipping other
// frames (bounded), and decodes it.
func readHeaders(r wire.Reader) (map[string]string, error) {
	for {
		typ, n, err := readFrameHeader(r, maxHeadersSize)
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if typ != frameHeaders {
			continue // reserved or unknown frame types are ignored (RFC 9114 §9)
		}
		fields := map[string]string{}
		next := qpack.NewDecoder().Decode(body)
		for {
			hf, err := next()
			if err == io.EOF {
				return fields, nil
			}
			if err != nil {
				return nil, fmt.Errorf("decode response headers: %w", err)
			}
			fields[hf.Name] = hf.Value
		}
	}
}

// ToHTTPCode maps a WebTransport application error code onto the HTTP/3 error
// space (draft-ietf-webtrans-http3 §4.3), skipping the reserved codepoints.
func toHTTPCode(code uint32) uint64 {
	return webTransportFirstErr + uint64(code) + uint64(code)/0x1e
}

// fromHTTPCode is the inverse of toHTTPCode.
func fromHTTPCode(h uint64) (uint32, bool) {
	if h < webTransportFirstErr || h > webTransportLastErr || (h-0x21)%webTransportErrInterval == 0 {
		return 0, false
	}
	shifted := h - webTransportFirstErr
	return uint32(shifted - shifted/webTransportErrInterval), true
}
