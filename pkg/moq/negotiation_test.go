package moq_test

import (
	"testing"

	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/moq/moqtest"
	"github.com/every-channel/ec-node/pkg/moq/wire/ietf"
)

// TestNegotiation: a session says which protocol family, version, ALPN and
// WebTransport subprotocol it was set up with (for the session log).
func TestNegotiation(t *testing.T) {
	lite := startStandIn(t, []string{"moq-lite-03"}, func(p *moqtest.Peer) { <-p.Session.Context().Done() })
	draft14 := startStandIn(t, []string{ietf.Protocol}, func(p *moqtest.Peer) {
		acceptIETF(t, p, ietf.Draft14)
		<-p.Session.Context().Done()
	})
	for _, tc := range []struct {
		name string
		s    *moqtest.StandIn
		want moq.Negotiation
	}{
		{"moq-lite", lite, moq.Negotiation{Protocol: moq.ProtocolLite, Version: "moq-lite-03", Transport: "webtransport", ALPN: "h3", Subprotocol: "moq-lite-03"}},
		{"ietf", draft14, moq.Negotiation{Protocol: moq.ProtocolIETF, Version: ietf.Name, Transport: "webtransport", ALPN: "h3", Subprotocol: ietf.Protocol}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := moq.Dial(testCtx(t), tc.s.URL+"anon", moq.DialOptions{TLS: moq.TLSOptions{Fingerprint: tc.s.Fingerprint}, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			n, ok := sess.(moq.Negotiator)
			if !ok {
				t.Fatalf("%T is not a moq.Negotiator", sess)
			}
			if got := n.Negotiation(); got != tc.want {
				t.Fatalf("negotiation %+v, want %+v", got, tc.want)
			}
		})
	}
}
