package moq

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"
	"github.com/quic-go/quic-go"

	"github.com/every-channel/ec-node/pkg/moq/wire"
	"github.com/every-channel/ec-node/pkg/moq/wire/ietf"
)

// DialOptions configures Dial. The zero value verifies the relay's certificate
// against the system roots and offers every supported moq-lite version.
type DialOptions struct {
	TLS TLSOptions
	// Versions are the moq-lite versions to offer, most preferred first.
	// Default: ["moq-lite-06", "moq-lite-05", "moq-lite-04", "moq-lite-03"].
	Versions []string
	// Protocol chooses the protocol family: ProtocolAuto (the default, "")
	// offers the moq-lite versions and IETF draft-14 after them, ProtocolLite
	// and ProtocolIETF only one family.
	Protocol string
	// Logger receives session events (default slog.Default()). URLs are logged
	// without their query, which may hold a ?jwt= token.
	Logger *slog.Logger
}

// TLSOptions chooses how the relay's certificate is checked.
type TLSOptions struct {
	// Fingerprint pins the relay's certificate: the hex SHA-256 of the leaf
	// certificate's DER, as moq-relay serves it at /certificate.sha256. Colons
	// are allowed. Chain and name are then not checked (the cert is self-signed).
	Fingerprint string
	// DisableVerify accepts any certificate. For the deployed IP-override case
	// only; Dial logs a warning every time it is used.
	DisableVerify bool
	// RootCAs replaces the system roots when set.
	RootCAs *x509.CertPool
}

// handshakeTimeout bounds the QUIC (+WebTransport) handshake when ctx has no deadline.
const handshakeTimeout = 15 * time.Second

// Relay URL schemes, as moq-relay and moq-cli (moq-tokio) read them: https
// dials WebTransport and offers the moq versions as WT-Available-Protocols;
// moqt and moql dial raw QUIC and offer them as TLS ALPNs (moq-relay serves
// both on its one QUIC port). moq-tokio treats moqt and moql alike; only
// moqt sends the authority in an IETF CLIENT_SETUP, and we send it for both,
// as the draft asks of every raw QUIC client.
const (
	SchemeWebTransport = "https"
	SchemeQUIC         = "moqt"
	SchemeQUICLite     = "moql"
)

// Dial opens a session to a moq-relay URL and negotiates a version: over
// WebTransport (https://host[:port]/root) through WT-Available-Protocols, over
// raw QUIC (moqt:// or moql://host[:port]/root) through the ALPN. A ?jwt=TOKEN
// query is passed through untouched: in the CONNECT URL, or over raw QUIC in
// the SETUP with the path.
//
// The WebTransport client is package h3wt, not github.com/quic-go/webtransport-go:
// moq-relay 0.17.8 refuses every webtransport-go release as a client (v0.10.0
// sends no WebTransport setting in its client SETTINGS; v0.11+ send
// `:protocol webtransport-h3`). See pkg/moq/h3wt and docs/moq.md.
func Dial(ctx context.Context, rawURL string, opts DialOptions) (Session, error) {
	ctx, cancel := handshakeContext(ctx)
	defer cancel()
	rl, err := dialRelay(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	// A relay that selects no subprotocol may still take draft-14's own
	// negotiation (CLIENT_SETUP), as moq-relay does; only tried when asked for
	// IETF alone, so that auto fails fast against a relay speaking neither.
	if picked := rl.wt.Protocol(); picked == ietf.Protocol || (picked == "" && opts.Protocol == ProtocolIETF) {
		is, err := dialIETF(ctx, rl)
		if err != nil {
			return nil, fmt.Errorf("moq: relay %s: %w", RedactURL(rawURL), err)
		}
		is.log.Info("moq session established")
		return is, nil
	}
	version, err := rl.liteVersion()
	if err != nil {
		return nil, err
	}
	s := newSession(rl.wt, version, rl.log.With("version", version.String()))
	if err := s.sendSetup(ctx, wire.RoleSubscriber, rl.target); err != nil {
		s.Close()
		return nil, err
	}
	s.log.Info("moq session established")
	return s, nil
}

// handshakeContext bounds a handshake by handshakeTimeout when ctx has no
// deadline of its own.
func handshakeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, handshakeTimeout)
}

// relayLink is a dialled relay: the transport session, what we offered on it,
// and what the MoQ handshake must carry because the transport did not.
type relayLink struct {
	wt      *h3wt.Session
	offered []string
	// target is the request target, the URL's path and ?query, that raw QUIC
	// sends in the SETUP ("" for the relay's root); "" over WebTransport, whose
	// CONNECT carries the URL and where a SETUP path is a protocol violation.
	target string
	// authority is host:port for an IETF CLIENT_SETUP over raw QUIC.
	authority string
	safeURL   string
	log       *slog.Logger // carries the redacted relay URL
}

// dialRelay opens the transport the URL's scheme names, offering the moq-lite
// versions of opts and, as opts.Protocol asks, IETF draft-14; Dial
// (subscriber) and DialPublisher build on it.
func dialRelay(ctx context.Context, rawURL string, opts DialOptions) (*relayLink, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	safeURL := RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("moq: relay URL %q: want https://, moqt:// or moql://host[:port]/path", safeURL)
	}
	var raw bool
	switch u.Scheme {
	case SchemeWebTransport:
	case SchemeQUIC, SchemeQUICLite:
		raw = true
	default:
		return nil, fmt.Errorf("moq: relay URL %q: scheme %q: want https (WebTransport), moqt or moql (raw QUIC)", safeURL, u.Scheme)
	}
	names, err := offer(opts, raw)
	if err != nil {
		return nil, err
	}
	tlsConf, err := clientTLS(u.Hostname(), opts.TLS, log)
	if err != nil {
		return nil, err
	}
	qconf := &quic.Config{
		// Pings every 500 ms make the relay answer (ACK) while no media flows, so
		// that silence means a dead path or relay (see watchLiveness).
		KeepAlivePeriod: silentAfter / 4,
		// The QUIC idle timeout is negotiated down to the smaller of both sides
		// (moq-relay: 10 s), and it is also how long the relay keeps our
		// subscriptions, and so keeps pulling their groups into its cache, after
		// we vanish (a crash, a blackout). It is kept long for that; we notice a
		// dead relay sooner ourselves, at silentAfter.
		MaxIdleTimeout: 30 * time.Second,
		// One uni stream per in-flight group: leave room for many tracks.
		MaxIncomingUniStreams: 1024,
		MaxIncomingStreams:    64,
	}
	rl := &relayLink{offered: names, safeURL: safeURL, log: log.With("relay", safeURL)}
	if raw {
		rl.target = requestTarget(u)
		rl.authority = u.Host
		rl.wt, err = h3wt.DialQUIC(ctx, h3wt.HostPort(u), tlsConf, qconf, names)
	} else {
		rl.wt, err = h3wt.Dial(ctx, rawURL, tlsConf, qconf, names)
	}
	if err != nil {
		return nil, fmt.Errorf("moq: dial %s: %w", safeURL, scrub(err, rawURL, safeURL))
	}
	return rl, nil
}

// offer is the list of versions to offer: the moq-lite versions of opts (all
// supported by default), checked, and IETF draft-14 as opts.Protocol asks.
// Over raw QUIC only the moq-lite versions with a SETUP stream (05 on) are
// offered: 03 and 04 would have no way to send the URL's path.
func offer(opts DialOptions, raw bool) ([]string, error) {
	names := opts.Versions
	if len(names) == 0 {
		for _, v := range wire.Versions {
			names = append(names, v.String())
		}
	}
	var lite []string
	for _, n := range names {
		v, err := wire.ParseVersion(n)
		if err != nil {
			return nil, fmt.Errorf("moq: %w", err)
		}
		if !raw || v.HasSetup() {
			lite = append(lite, n)
		}
	}
	if len(lite) == 0 && opts.Protocol != ProtocolIETF {
		return nil, fmt.Errorf("moq: raw QUIC needs moq-lite-05 or later (the SETUP carries the path); %v have none", names)
	}
	return protocolOffer(opts.Protocol, lite)
}

// requestTarget is what raw QUIC sends as the SETUP path: the URL's path, and
// "?" and its query when there is one; "" for the root, as moq-tokio does.
func requestTarget(u *url.URL) string {
	target := u.EscapedPath()
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	if target == "/" {
		return ""
	}
	return target
}

// liteVersion is the moq-lite version the relay picked from what we offered;
// when it picked none, the session is closed.
func (rl *relayLink) liteVersion() (wire.Version, error) {
	picked := rl.wt.Protocol()
	version, err := wire.ParseVersion(picked)
	if err != nil {
		_ = rl.wt.CloseWithError(wire.SessionVersion, "no common version")
		return 0, fmt.Errorf("moq: relay %s picked none of %v (got %q)", rl.safeURL, rl.offered, picked)
	}
	return version, nil
}

// scrub removes the raw URL (and so any token) from an error message that may
// quote it.
func scrub(err error, rawURL, safeURL string) error {
	if rawURL == safeURL || !strings.Contains(err.Error(), rawURL) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), rawURL, safeURL))
}

func clientTLS(host string, o TLSOptions, log *slog.Logger) (*tls.Config, error) {
	conf := &tls.Config{
		ServerName: host,
		RootCAs:    o.RootCAs,
		MinVersion: tls.VersionTLS13,
	}
	switch {
	case o.Fingerprint != "":
		want, err := parseFingerprint(o.Fingerprint)
		if err != nil {
			return nil, err
		}
		// The pinned hash replaces chain and name verification.
		conf.InsecureSkipVerify = true
		conf.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("moq: relay sent no certificate")
			}
			got := sha256.Sum256(raw[0])
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("moq: relay certificate fingerprint %x does not match the pinned one", got)
			}
			return nil
		}
	case o.DisableVerify:
		log.Warn("TLS CERTIFICATE VERIFICATION IS DISABLED: anyone on the path can impersonate the relay")
		conf.InsecureSkipVerify = true
	}
	return conf, nil
}

func parseFingerprint(s string) ([]byte, error) {
	clean := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("moq: TLS fingerprint %q: want 64 hex digits (SHA-256)", s)
	}
	return b, nil
}

// RedactURL returns rawURL with every query value replaced by "REDACTED", so a
// ?jwt= token never reaches a log or a status file. Unparseable input is
// replaced entirely.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparseable URL>"
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment = ""
	return u.String()
}
