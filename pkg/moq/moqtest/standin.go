// Package moqtest is a Go STAND-IN for a moq-lite relay and publisher, built on
// the server side of github.com/quic-go/webtransport-go v0.10.0. It exists for
// fast unit tests of what the real moq-relay cannot be made to do on demand:
// resets at chosen byte offsets, hostile sizes and varints, streams that never
// end, unknown stream types, GOAWAY.
//
// It is NOT evidence of interoperability: a Go client and this Go server share
// one WebTransport implementation. The real peers (moq-relay, moq-cli) are
// exercised by the e2e tests (internal/peers).
package moqtest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// StandIn is a running stand-in relay on 127.0.0.1.
type StandIn struct {
	// URL is https://127.0.0.1:PORT/ (append a session root path).
	URL string
	// Fingerprint is the hex SHA-256 of the self-signed leaf certificate.
	Fingerprint string

	server *webtransport.Server
	conn   net.PacketConn
	wg     sync.WaitGroup
}

// Handler serves one client session. The session is closed when it returns.
type Handler func(p *Peer)

// Start listens on a free loopback UDP port. versions are the moq-lite
// subprotocols the stand-in accepts (e.g. "moq-lite-05"), which it picks from
// the client's offer in the client's order, as moq-relay does.
func Start(versions []string, h Handler) (*StandIn, error) {
	cert, fp, err := selfSigned()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("moqtest: listen: %w", err)
	}
	s := &StandIn{
		URL:         fmt.Sprintf("https://%s/", conn.LocalAddr()),
		Fingerprint: fp,
		conn:        conn,
	}
	mux := http.NewServeMux()
	s.server = &webtransport.Server{
		H3: &http3.Server{
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{http3.NextProtoH3}},
			Handler:   mux,
		},
		ApplicationProtocols: versions,
		CheckOrigin:          func(*http.Request) bool { return true },
	}
	webtransport.ConfigureHTTP3Server(s.server.H3)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.server.Upgrade(w, r)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		v, _ := wire.ParseVersion(sess.SessionState().ApplicationProtocol)
		h(&Peer{Session: sess, Version: v, Path: r.URL.RequestURI()})
		_ = sess.CloseWithError(0, "")
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.server.Serve(conn)
	}()
	return s, nil
}

// Close stops the stand-in and closes every session.
func (s *StandIn) Close() error {
	err := s.server.Close()
	s.conn.Close()
	s.wg.Wait()
	return err
}

func selfSigned() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "moqtest stand-in"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:]), nil
}

// Peer is the stand-in's end of one client session.
type Peer struct {
	Session *webtransport.Session
	Version wire.Version // zero if the client offered nothing we accept
	Path    string       // request path and query
}

// Control is a client-opened bidi stream whose type has been read.
type Control struct {
	Type   uint64
	Stream *webtransport.Stream
	R      *bufio.Reader
}

// AcceptControl waits for the client's next bidi stream and reads its type.
func (p *Peer) AcceptControl(ctx context.Context) (*Control, error) {
	str, err := p.Session.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(str)
	t, err := wire.ReadStreamType(r)
	if err != nil {
		return nil, err
	}
	return &Control{Type: t, Stream: str, R: r}, nil
}

// ReadClientSetup accepts the client's lite-05 SETUP uni stream.
func (p *Peer) ReadClientSetup(ctx context.Context) (wire.Setup, error) {
	str, err := p.Session.AcceptUniStream(ctx)
	if err != nil {
		return wire.Setup{}, err
	}
	r := bufio.NewReader(str)
	t, err := wire.ReadStreamType(r)
	if err != nil {
		return wire.Setup{}, err
	}
	if t != wire.StreamSetup {
		return wire.Setup{}, fmt.Errorf("moqtest: uni stream type %d, want SETUP", t)
	}
	return wire.ReadSetup(r, p.Version)
}

// OpenUni opens a uni stream and writes raw bytes to it (without FIN).
func (p *Peer) OpenUni(ctx context.Context, raw []byte) (*webtransport.SendStream, error) {
	str, err := p.Session.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	_, err = str.Write(raw)
	return str, err
}

// OpenBidi opens a bidi stream and writes raw bytes to it (without FIN).
func (p *Peer) OpenBidi(ctx context.Context, raw []byte) (*webtransport.Stream, error) {
	str, err := p.Session.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	_, err = str.Write(raw)
	return str, err
}

// GroupStream encodes a whole GROUP stream: type, header, then each frame with
// its header (lite-05 timestamps 0, 1000, 2000 … in the track timescale).
func GroupStream(v wire.Version, subscribeID, seq uint64, frames ...[]byte) []byte {
	b := wire.AppendStreamType(nil, wire.StreamGroup)
	b, _ = wire.Group{SubscribeID: subscribeID, Sequence: seq}.Append(b, v)
	var prev uint64
	for i, f := range frames {
		ts := uint64(i) * 1000
		b, _ = wire.FrameHeader{Size: uint64(len(f)), Timestamp: ts}.Append(b, v, prev)
		b = append(b, f...)
		prev = ts
	}
	return b
}

// Track is what the stand-in publisher serves for one track name.
type Track struct {
	Groups    [][][]byte // frames of groups 0, 1, …
	Timescale uint64     // lite-05 TRACK_INFO timescale; 0 means 1000
	End       bool       // FIN the subscribe stream after the last group
}

// Publisher answers requests like a relay with one broadcast: announce
// requests list Broadcast, TRACK and SUBSCRIBE for known tracks are served,
// and unknown ones are reset with wire.CodeNotFound.
type Publisher struct {
	Broadcast string
	Tracks    map[string]Track
}

// Serve handles the session until it ends. On lite-05 it reads the client's
// SETUP first, like moq-relay.
func (pub Publisher) Serve(p *Peer) {
	ctx := p.Session.Context()
	if p.Version.HasSetup() {
		if _, err := p.ReadClientSetup(ctx); err != nil {
			return
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := p.AcceptControl(ctx)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub.serveControl(ctx, p, c)
		}()
	}
}

func (pub Publisher) serveControl(ctx context.Context, p *Peer, c *Control) {
	v := p.Version
	switch c.Type {
	case wire.StreamAnnounce:
		req, err := wire.ReadAnnouncePlease(c.R, v)
		if err != nil {
			return
		}
		// Like moq-relay, announce the broadcast relative to the requested
		// prefix, and nothing outside it.
		suffix, under := strings.CutPrefix(pub.Broadcast, req.Prefix)
		suffix = strings.TrimPrefix(suffix, "/")
		var b []byte
		if v.HasAnnounceOK() {
			active := uint64(0)
			if under {
				active = 1
			}
			b, _ = wire.AnnounceOK{Active: active}.Append(b, v)
		}
		if under {
			b, _ = wire.Announce{Status: wire.AnnounceActive, Suffix: suffix}.Append(b, v)
		}
		_, _ = c.Stream.Write(b)
		_, _ = io.Copy(io.Discard, c.R) // keep it open until the client leaves
	case wire.StreamTrack:
		req, err := wire.ReadTrack(c.R, v)
		if err != nil {
			return
		}
		tr, ok := pub.track(req.Broadcast, req.Track)
		if !ok {
			c.Stream.CancelWrite(wire.CodeNotFound)
			return
		}
		b, _ := wire.TrackInfo{Timescale: max(tr.Timescale, 1000)}.Append(nil, v)
		_, _ = c.Stream.Write(b)
		_ = c.Stream.Close()
	case wire.StreamSubscribe:
		req, err := wire.ReadSubscribe(c.R, v)
		if err != nil {
			return
		}
		tr, ok := pub.track(req.Broadcast, req.Track)
		if !ok {
			c.Stream.CancelWrite(wire.CodeNotFound)
			return
		}
		resp := wire.SubscribeResponse{Kind: wire.ResponseOK}
		if v.HasTrackStream() {
			resp = wire.SubscribeResponse{Kind: wire.ResponseStart}
		}
		b, _ := resp.Append(nil, v)
		if _, err := c.Stream.Write(b); err != nil {
			return
		}
		for seq, frames := range tr.Groups {
			str, err := p.OpenUni(ctx, GroupStream(v, req.ID, uint64(seq), frames...))
			if err != nil {
				return
			}
			_ = str.Close()
		}
		if tr.End {
			_ = c.Stream.Close()
		}
		_, _ = io.Copy(io.Discard, c.R) // until the client unsubscribes
	default:
		c.Stream.CancelRead(wire.CodeInternal)
		c.Stream.CancelWrite(wire.CodeInternal)
	}
}

// track returns the named track of this publisher's broadcast.
func (pub Publisher) track(broadcast, name string) (Track, bool) {
	tr, ok := pub.Tracks[name]
	return tr, ok && broadcast == pub.Broadcast
}
