package moq

// The transports Dial uses: WebTransport for https:// URLs, raw QUIC for
// moqt:// and moql:// (docs/moq.md, "Raw QUIC").
const (
	TransportWebTransport = "webtransport"
	TransportQUIC         = "quic"
)

// Negotiation says how a subscriber session was set up: what the archive's
// session log records (docs/manifest.md, "Session log").
type Negotiation struct {
	Protocol  string // ProtocolLite or ProtocolIETF
	Version   string // as Session.Version: "moq-lite-06", "moq-transport-14", ...
	Transport string // TransportWebTransport or TransportQUIC
	// ALPN is the TLS ALPN of the QUIC connection: "h3" under WebTransport,
	// the moq version (e.g. "moq-lite-06", "moq-00") over raw QUIC.
	ALPN string
	// Subprotocol is the WebTransport subprotocol the relay selected from our
	// WT-Available-Protocols, "" when it selected none (an IETF version is
	// then negotiated by CLIENT_SETUP) and over raw QUIC.
	Subprotocol string
}

// Negotiator is implemented by the sessions Dial returns. It is apart from
// Session so that stand-ins in tests need not implement it.
type Negotiator interface {
	Negotiation() Negotiation
}

func (c *conn) negotiation(protocol, version string) Negotiation {
	if c.wt.Raw() {
		return Negotiation{Protocol: protocol, Version: version, Transport: TransportQUIC, ALPN: c.wt.ALPN()}
	}
	return Negotiation{Protocol: protocol, Version: version, Transport: TransportWebTransport,
		ALPN: c.wt.ALPN(), Subprotocol: c.wt.Protocol()}
}

// Negotiation implements Negotiator.
func (s *session) Negotiation() Negotiation { return s.negotiation(ProtocolLite, s.Version()) }

// Negotiation implements Negotiator.
func (s *ietfSession) Negotiation() Negotiation { return s.negotiation(ProtocolIETF, s.Version()) }
