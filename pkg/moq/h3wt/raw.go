package h3wt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"
)

// DialQUIC opens a raw QUIC session to addr (host:port), offering protocols as
// TLS ALPNs: the QUIC connection is the session, with no HTTP/3, no CONNECT and
// no stream headers, as moq-relay serves its moq ALPNs (web-transport-moq's
// Session::raw). Protocol reports the ALPN the server picked. Stream reset
// codes are mapped into the HTTP/3 space as over WebTransport, since
// web-transport-moq maps them the same way on both; the session's close code
// is carried as is. tlsConf must not set NextProtos; qconf may be nil.
func DialQUIC(ctx context.Context, addr string, tlsConf *tls.Config, qconf *quic.Config, protocols []string) (*Session, error) {
	if len(protocols) == 0 {
		return nil, errors.New("h3wt: raw QUIC needs at least one ALPN to offer")
	}
	tlsConf = tlsConf.Clone()
	tlsConf.NextProtos = protocols
	conn, err := quic.DialAddr(ctx, addr, tlsConf, qconf)
	if err != nil {
		return nil, fmt.Errorf("h3wt: QUIC: %w", err)
	}
	s := &Session{conn: conn, raw: true, protocol: conn.ConnectionState().TLS.NegotiatedProtocol,
		bidi: make(chan *Stream, acceptQueue), uni: make(chan *ReceiveStream, acceptQueue)}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	context.AfterFunc(conn.Context(), func() { s.cancel(rawCloseCause(context.Cause(conn.Context()))) })
	go s.acceptUni()
	go s.acceptBidi()
	return s, nil
}

// rawCloseCause reports a peer's application close of a raw QUIC session as
// the SessionError a WebTransport close capsule would have given.
func rawCloseCause(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && uint64(ae.ErrorCode) <= 1<<32-1 {
		return &SessionError{Code: uint32(ae.ErrorCode), Message: ae.ErrorMessage}
	}
	return err
}
