package moq

// TransportWebTransport is the one transport Dial uses today.
const TransportWebTransport = "webtransport"

// Negotiation says how a subscriber session was set up: what the archive's
// session log records (docs/manifest.md, "Session log").
type Negotiation struct {
	Protocol  string // ProtocolLite or ProtocolIETF
	Version   string // as Session.Version: "moq-lite-06", "moq-transport-14", ...
	Transport string // TransportWebTransport
	// ALPN is the TLS ALPN of the QUIC connection: "h3" under WebTransport.
	ALPN string
	// Subprotocol is the WebTransport subprotocol the relay selected from our
	// WT-Available-Protocols, "" when it selected none (an IETF version is
	// then negotiated by CLIENT_SETUP).
	Subprotocol string
}

// Negotiator is implemented by the sessions Dial returns. It is apart from
// Session so that stand-ins in tests need not implement it.
type Negotiator interface {
	Negotiation() Negotiation
}

func (c *conn) negotiation(protocol, version string) Negotiation {
	return Negotiation{Protocol: protocol, Version: version, Transport: TransportWebTransport,
		ALPN: c.wt.ALPN(), Subprotocol: c.wt.Protocol()}
}

// Negotiation implements Negotiator.
func (s *session) Negotiation() Negotiation { return s.negotiation(ProtocolLite, s.Version()) }

// Negotiation implements Negotiator.
func (s *ietfSession) Negotiation() Negotiation { return s.negotiation(ProtocolIETF, s.Version()) }
