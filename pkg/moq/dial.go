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

// handshakeTimeout bounds the QUIC+WebTransport handshake when ctx has no deadline.
const handshakeTimeout = 15 * time.Second

// Dial opens a WebTransport session to a moq-relay URL (https://host:port/root,
// optionally with ?jwt=TOKEN, passed through untouched) and negotiates a
// moq-lite version through WT-Available-Protocols.
//
// The WebTransport client is package h3wt, not github.com/quic-go/webtransport-go:
// moq-relay 0.17.8 refuses every webtransport-go release as a client (v0.10.0
// sends no WebTransport setting in its client SETTINGS; v0.11+ send
// `:protocol webtransport-h3`). See pkg/moq/h3wt and docs/moq.md.
func Dial(ctx context.Context, rawURL string, opts DialOptions) (Session, error) {
	ctx, cancel := handshakeContext(ctx)
	defer cancel()
	wt, offered, log, err := dialWT(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	// A relay that selects no subprotocol may still take draft-14's own
	// negotiation (CLIENT_SETUP), as moq-relay does; only tried when asked for
	// IETF alone, so that auto fails fast against a relay speaking neither.
	if picked := wt.Protocol(); picked == ietf.Protocol || (picked == "" && opts.Protocol == ProtocolIETF) {
		is, err := dialIETF(ctx, wt, log.With("version", ietf.Name))
		if err != nil {
			return nil, fmt.Errorf("moq: relay %s: %w", RedactURL(rawURL), err)
		}
		is.log.Info("moq session established")
		return is, nil
	}
	version, err := liteVersion(wt, offered, rawURL)
	if err != nil {
		return nil, err
	}
	s := newSession(wt, version, log.With("version", version.String()))
	if err := s.sendSetup(ctx, wire.RoleSubscriber); err != nil {
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

// dialWT opens the WebTransport session, offering the moq-lite versions of
// opts and, as opts.Protocol asks, IETF draft-14; Dial (subscriber) and
// DialPublisher build on it. It returns what it offered and a logger carrying
// the redacted relay URL.
func dialWT(ctx context.Context, rawURL string, opts DialOptions) (*h3wt.Session, []string, *slog.Logger, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	safeURL := RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, nil, nil, fmt.Errorf("moq: relay URL %q: want https://host[:port]/path", safeURL)
	}
	names := opts.Versions
	if len(names) == 0 {
		for _, v := range wire.Versions {
			names = append(names, v.String())
		}
	}
	for _, n := range names {
		if _, err := wire.ParseVersion(n); err != nil {
			return nil, nil, nil, fmt.Errorf("moq: %w", err)
		}
	}
	names, err = protocolOffer(opts.Protocol, names)
	if err != nil {
		return nil, nil, nil, err
	}
	tlsConf, err := clientTLS(u.Hostname(), opts.TLS, log)
	if err != nil {
		return nil, nil, nil, err
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
	wt, err := h3wt.Dial(ctx, rawURL, tlsConf, qconf, names)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("moq: dial %s: %w", safeURL, scrub(err, rawURL, safeURL))
	}
	return wt, names, log.With("relay", safeURL), nil
}

// liteVersion is the moq-lite version the relay picked from offered; when it
// picked none, the session is closed.
func liteVersion(wt *h3wt.Session, offered []string, rawURL string) (wire.Version, error) {
	picked := wt.Protocol()
	version, err := wire.ParseVersion(picked)
	if err != nil {
		_ = wt.CloseWithError(wire.SessionVersion, "no common version")
		return 0, fmt.Errorf("moq: relay %s picked none of %v (got %q)", RedactURL(rawURL), offered, picked)
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
