package h3wt

// WebTransport identifiers (draft-ietf-webtrans-http3-02, as web-transport-proto
// 0.6.2 implements them); HTTP/3 itself is quic-go's http3.
const (
	streamWTUni = 0x54 // uni: WebTransport stream, then the session id
	frameWTBidi = 0x41 // bidi: WebTransport stream, then the session id

	// Client SETTINGS moq-relay requires besides H3 datagrams (either one):
	settingEnableWebTransport = 0x2b603742 // the draft-02 era flag
	settingWTMaxSessions      = 0xc671706a

	errH3NoError            = 0x100
	errH3StreamCreation     = 0x103
	capsuleCloseSession     = 0x2843
	maxCloseCapsuleSize     = 1024 + 4
	webTransportFirstErr    = 0x52e4a40fa8db
	webTransportLastErr     = 0x52e5ac983162
	webTransportErrInterval = 0x1f
)

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
