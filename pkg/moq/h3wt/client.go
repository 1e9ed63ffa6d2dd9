// Package h3wt is a minimal WebTransport-over-HTTP/3 client on quic-go's http3,
// built to the handshake moq-relay's web-transport stack (web-transport-proto
// 0.6.2) accepts: extended CONNECT with `:protocol webtransport`, and a client
// SETTINGS frame that enables WebTransport (ENABLE_WEBTRANSPORT 0x2b603742 or
// WEBTRANSPORT_MAX_SESSIONS 0xc671706a) plus H3 datagrams. http3 does HTTP/3
// (control stream, SETTINGS, QPACK, the CONNECT request, capsules); this package
// adds the WebTransport stream headers, error codes and session lifetime.
//
// It exists because no release of github.com/quic-go/webtransport-go passes
// that check as a client: v0.10.0 sends the right CONNECT but no WebTransport
// setting in its client SETTINGS (moq-relay answers "WebTransport is not
// supported"), and v0.11+ send `:protocol webtransport-h3` and only the
// draft-15 setting. It implements one session per QUIC connection; datagrams
// are not used.
//
// The same Session also runs over a bare QUIC connection (DialQUIC), as
// moq-relay serves clients that negotiate a moq version as the ALPN, so the
// MoQ sessions above it are written once for both transports.
package h3wt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// headerTimeout bounds how long a peer-opened stream may take to name its type.
const headerTimeout = 10 * time.Second

// acceptQueue is how many peer-opened streams may wait for Accept*.
const acceptQueue = 64

// SessionError reports how the session ended when the peer closed it.
type SessionError struct {
	Code    uint32
	Message string
}

func (e *SessionError) Error() string {
	return fmt.Sprintf("webtransport session closed by peer: code %#x %q", e.Code, e.Message)
}

// Session is one WebTransport session, owning its QUIC connection, or a raw
// QUIC connection used as one (DialQUIC).
type Session struct {
	conn     *quic.Conn
	raw      bool                 // no HTTP/3: streams carry no header, h3 and connect are nil
	h3       *http3.RawClientConn // WebTransport only
	connect  *http3.RequestStream // WebTransport only
	id       atomic.Int64
	protocol string

	ctx    context.Context
	cancel context.CancelCauseFunc
	bidi   chan *Stream
	uni    chan *ReceiveStream
}

// Dial connects to rawURL (https) and opens a WebTransport session, offering
// protocols in WT-Available-Protocols. tlsConf must not set NextProtos; qconf
// may be nil.
func Dial(ctx context.Context, rawURL string, tlsConf *tls.Config, qconf *quic.Config, protocols []string) (*Session, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("h3wt: want an https://host[:port]/path URL")
	}
	tlsConf = tlsConf.Clone()
	tlsConf.NextProtos = []string{"h3"}
	if qconf == nil {
		qconf = &quic.Config{}
	}
	qconf = qconf.Clone()
	qconf.EnableDatagrams = true // web-transport-proto requires H3 datagram support
	conn, err := quic.DialAddr(ctx, HostPort(u), tlsConf, qconf)
	if err != nil {
		return nil, fmt.Errorf("h3wt: QUIC: %w", err)
	}
	// http3 speaks HTTP/3 (control stream, SETTINGS, QPACK); the WebTransport
	// settings moq-relay checks are added to its SETTINGS.
	tr := &http3.Transport{EnableDatagrams: true, DisableCompression: true,
		AdditionalSettings: map[uint64]uint64{settingEnableWebTransport: 1, settingWTMaxSessions: 1}}
	s := &Session{conn: conn, h3: tr.NewRawClientConn(conn),
		bidi: make(chan *Stream, acceptQueue), uni: make(chan *ReceiveStream, acceptQueue)}
	s.id.Store(-1)
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	context.AfterFunc(conn.Context(), func() { s.cancel(context.Cause(conn.Context())) })
	if err := s.handshake(ctx, u, protocols); err != nil {
		conn.CloseWithError(errH3NoError, "")
		return nil, err
	}
	return s, nil
}

// HostPort is the UDP address of u: its host and port, 443 when it names none.
func HostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func (s *Session) handshake(ctx context.Context, u *url.URL, protocols []string) error {
	go s.acceptUni()
	go s.acceptBidi()
	select {
	case <-s.h3.ReceivedSettings():
	case <-ctx.Done():
		return fmt.Errorf("h3wt: waiting for SETTINGS: %w", ctx.Err())
	case <-s.ctx.Done():
		return fmt.Errorf("h3wt: waiting for SETTINGS: %w", context.Cause(s.ctx))
	}
	settings := s.h3.Settings()
	if !settings.EnableExtendedConnect {
		return errors.New("h3wt: server does not enable extended CONNECT")
	}
	if settings.Other[settingEnableWebTransport] != 1 && settings.Other[settingWTMaxSessions] == 0 {
		return errors.New("h3wt: server does not enable WebTransport")
	}

	req, err := s.h3.OpenRequestStream(ctx)
	if err != nil {
		return fmt.Errorf("h3wt: open CONNECT stream: %w", err)
	}
	s.connect = req
	s.id.Store(int64(req.StreamID()))
	hreq := &http.Request{Method: http.MethodConnect, Proto: "webtransport", URL: u, Host: u.Host, Header: http.Header{}}
	if len(protocols) > 0 {
		list := httpsfv.List{}
		for _, p := range protocols {
			list = append(list, httpsfv.NewItem(p))
		}
		v, err := httpsfv.Marshal(list)
		if err != nil {
			return fmt.Errorf("h3wt: encode protocols: %w", err)
		}
		hreq.Header.Set("WT-Available-Protocols", v)
	}
	if err := req.SendRequestHeader(hreq); err != nil {
		return fmt.Errorf("h3wt: send CONNECT: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = req.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	rsp, err := req.ReadResponse()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("h3wt: CONNECT: %w", err)
	}
	if rsp.StatusCode != http.StatusOK {
		return &StatusError{Status: strconv.Itoa(rsp.StatusCode)}
	}
	if v := rsp.Header.Get("WT-Protocol"); v != "" {
		item, err := httpsfv.UnmarshalItem([]string{v})
		if err != nil {
			return fmt.Errorf("h3wt: bad wt-protocol %q: %w", v, err)
		}
		if p, ok := item.Value.(string); ok {
			s.protocol = p
		}
	}
	go s.watchConnect()
	return nil
}

// StatusError: the server refused the CONNECT with an HTTP status (401/403 for
// a missing or bad token on moq-relay).
type StatusError struct{ Status string }

func (e *StatusError) Error() string { return "h3wt: CONNECT refused with status " + e.Status }

// watchConnect ends the session when the CONNECT stream closes or carries a
// CLOSE_WEBTRANSPORT_SESSION capsule.
func (s *Session) watchConnect() {
	r := quicvarint.NewReader(s.connect)
	for {
		typ, body, err := http3.ParseCapsule(r)
		if err != nil {
			s.cancel(fmt.Errorf("webtransport session ended: %w", err))
			return
		}
		payload, err := io.ReadAll(io.LimitReader(body, maxCloseCapsuleSize+1))
		if err == nil {
			_, err = io.Copy(io.Discard, body) // skip the rest of an unknown capsule
		}
		if err != nil {
			s.cancel(fmt.Errorf("webtransport session ended: %w", err))
			return
		}
		if typ == capsuleCloseSession && len(payload) >= 4 && len(payload) <= maxCloseCapsuleSize {
			code := uint32(payload[0])<<24 | uint32(payload[1])<<16 | uint32(payload[2])<<8 | uint32(payload[3])
			s.cancel(&SessionError{Code: code, Message: string(payload[4:])})
			return
		}
	}
}

func (s *Session) acceptUni() {
	for {
		str, err := s.conn.AcceptUniStream(s.ctx)
		if err != nil {
			return
		}
		go s.handleUni(str)
	}
}

// handleUni routes a peer-opened uni stream: WebTransport streams of this
// session to AcceptUniStream, HTTP/3's own (control, QPACK) to http3.
func (s *Session) handleUni(str *quic.ReceiveStream) {
	if s.raw {
		s.queueUni(str)
		return
	}
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	typ, err := quicvarint.Peek(str)
	if err != nil {
		str.CancelRead(errH3StreamCreation)
		return
	}
	if typ != streamWTUni {
		_ = str.SetReadDeadline(time.Time{})
		s.h3.HandleUnidirectionalStream(str)
		return
	}
	r := quicvarint.NewReader(str)
	_, _ = wire.ReadVarint(r) // the type, peeked above
	id, err := wire.ReadVarint(r)
	if err != nil || int64(id) != s.id.Load() {
		str.CancelRead(errH3StreamCreation)
		return
	}
	_ = str.SetReadDeadline(time.Time{})
	s.queueUni(str)
}

func (s *Session) queueUni(str *quic.ReceiveStream) {
	select {
	case s.uni <- &ReceiveStream{str: str}:
	case <-s.ctx.Done():
		str.CancelRead(errH3NoError)
	}
}

func (s *Session) acceptBidi() {
	for {
		str, err := s.conn.AcceptStream(s.ctx)
		if err != nil {
			return
		}
		go s.handleBidi(str)
	}
}

func (s *Session) handleBidi(str *quic.Stream) {
	if s.raw {
		s.queueBidi(str)
		return
	}
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	r := quicvarint.NewReader(str)
	typ, err := wire.ReadVarint(r)
	if err == nil && typ == frameWTBidi {
		var id uint64
		id, err = wire.ReadVarint(r)
		if err == nil && int64(id) == s.id.Load() {
			_ = str.SetReadDeadline(time.Time{})
			s.queueBidi(str)
			return
		}
	}
	str.CancelRead(errH3StreamCreation)
	str.CancelWrite(errH3StreamCreation)
}

func (s *Session) queueBidi(str *quic.Stream) {
	select {
	case s.bidi <- &Stream{str: str}:
	case <-s.ctx.Done():
		str.CancelRead(errH3NoError)
		str.CancelWrite(errH3NoError)
	}
}

// Protocol is the subprotocol (the ALPN, over raw QUIC) the server picked from
// our offer ("" if none).
func (s *Session) Protocol() string { return s.protocol }

// ALPN is the TLS application protocol of the QUIC connection ("h3").
func (s *Session) ALPN() string { return s.conn.ConnectionState().TLS.NegotiatedProtocol }

// Raw reports whether the session is raw QUIC (DialQUIC), not WebTransport.
func (s *Session) Raw() bool { return s.raw }

// Context is cancelled when the session ends; context.Cause says why.
func (s *Session) Context() context.Context { return s.ctx }

// PacketsReceived counts the QUIC packets received on the connection, ACKs of
// our keep-alive pings included: a liveness signal that needs no media.
func (s *Session) PacketsReceived() uint64 { return s.conn.ConnectionStats().PacketsReceived }

// AcceptStream returns the next bidi stream the peer opened.
func (s *Session) AcceptStream(ctx context.Context) (*Stream, error) {
	select {
	case str := <-s.bidi:
		return str, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, context.Cause(s.ctx)
	}
}

// AcceptUniStream returns the next uni stream the peer opened.
func (s *Session) AcceptUniStream(ctx context.Context) (*ReceiveStream, error) {
	select {
	case str := <-s.uni:
		return str, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, context.Cause(s.ctx)
	}
}

// OpenStreamSync opens a bidi stream, waiting for stream credit.
func (s *Session) OpenStreamSync(ctx context.Context) (*Stream, error) {
	str, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if s.raw {
		return &Stream{str: str}, nil
	}
	hdr, _ := wire.AppendVarint(nil, frameWTBidi)
	hdr, _ = wire.AppendVarint(hdr, uint64(s.id.Load()))
	if _, err := str.Write(hdr); err != nil {
		return nil, err
	}
	return &Stream{str: str}, nil
}

// OpenUniStreamSync opens a uni stream, waiting for stream credit.
func (s *Session) OpenUniStreamSync(ctx context.Context) (*SendStream, error) {
	str, err := s.conn.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if s.raw {
		return &SendStream{str: str}, nil
	}
	hdr, _ := wire.AppendVarint(nil, streamWTUni)
	hdr, _ = wire.AppendVarint(hdr, uint64(s.id.Load()))
	if _, err := str.Write(hdr); err != nil {
		return nil, err
	}
	return &SendStream{str: str}, nil
}

// CloseWithError closes the session with an application code and message,
// then the QUIC connection under it. A raw QUIC session carries both in its
// CONNECTION_CLOSE.
func (s *Session) CloseWithError(code uint32, msg string) error {
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	if s.raw {
		s.cancel(errors.New("webtransport session closed locally"))
		return s.conn.CloseWithError(quic.ApplicationErrorCode(code), msg)
	}
	if s.connect != nil && s.ctx.Err() == nil {
		payload := []byte{byte(code >> 24), byte(code >> 16), byte(code >> 8), byte(code)}
		_ = http3.WriteCapsule(quicvarint.NewWriter(s.connect), capsuleCloseSession, append(payload, msg...))
		_ = s.connect.Close()
	}
	s.cancel(errors.New("webtransport session closed locally"))
	return s.conn.CloseWithError(errH3NoError, "")
}
