package moq_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/moq/h3wt"
	"github.com/every-channel/ec-node/pkg/moq/wire"
	"github.com/every-channel/ec-node/pkg/moq/wire/ietf"
)

// rawRelay is a bare QUIC listener on loopback that accepts the given ALPNs,
// as moq-relay does for moqt:// and moql:// clients. Each connection goes to
// handle with the ALPNs the client offered.
type rawRelay struct {
	port        int
	fingerprint string
}

func startRawRelay(t *testing.T, alpns []string, handle func(conn *quic.Conn, offered []string)) *rawRelay {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	offered := make(chan []string, 16)
	conf := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   alpns,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			offered <- hello.SupportedProtos
			return nil, nil
		},
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", conf, &quic.Config{MaxIncomingUniStreams: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go handle(conn, <-offered)
		}
	}()
	return &rawRelay{port: ln.Addr().(*net.UDPAddr).Port, fingerprint: hex.EncodeToString(sum[:])}
}

func (r *rawRelay) url(scheme, rest string) string {
	return fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, r.port, rest)
}

// moqt:// and moql:// dial raw QUIC with the versions as ALPNs (moq-lite-03
// and -04, which have no SETUP to carry the path, left out), and the path and
// ?jwt= travel in the moq-lite SETUP.
func TestRawQUICLite(t *testing.T) {
	for _, tc := range []struct {
		scheme, rest string
		opts         moq.DialOptions
		offer        []string
		path         string
		hasPath      bool
	}{
		{"moqt", "/anon?jwt=secret", moq.DialOptions{}, []string{"moq-lite-06", "moq-lite-05", ietf.Protocol}, "/anon?jwt=secret", true},
		{"moql", "/a/b", moq.DialOptions{Protocol: moq.ProtocolLite}, []string{"moq-lite-06", "moq-lite-05"}, "/a/b", true},
		{"moqt", "/", moq.DialOptions{Versions: []string{"moq-lite-05", "moq-lite-04"}}, []string{"moq-lite-05", ietf.Protocol}, "", false},
		{"moqt", "", moq.DialOptions{Protocol: moq.ProtocolLite}, []string{"moq-lite-06", "moq-lite-05"}, "", false},
	} {
		name := tc.scheme + tc.rest
		got := make(chan wire.Setup, 1)
		offered := make(chan []string, 1)
		r := startRawRelay(t, []string{"moq-lite-06", "moq-lite-05"}, func(conn *quic.Conn, alpns []string) {
			offered <- alpns
			str, err := conn.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			br := bufio.NewReader(str)
			v, _ := wire.ParseVersion(conn.ConnectionState().TLS.NegotiatedProtocol)
			if typ, err := wire.ReadStreamType(br); err != nil || typ != wire.StreamSetup {
				t.Errorf("%s: first uni stream: type %d, %v", name, typ, err)
				return
			}
			setup, err := wire.ReadSetup(br, v)
			if err != nil {
				t.Errorf("%s: SETUP: %v", name, err)
			}
			got <- setup
			<-conn.Context().Done()
		})
		opts := tc.opts
		opts.TLS, opts.Logger = moq.TLSOptions{Fingerprint: r.fingerprint}, quietLogger()
		sess, err := moq.Dial(testCtx(t), r.url(tc.scheme, tc.rest), opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := tc.offer[0]; sess.Version() != want {
			t.Errorf("%s: negotiated %s, want %s", name, sess.Version(), want)
		}
		if o := <-offered; !slices.Equal(o, tc.offer) {
			t.Errorf("%s: offered ALPNs %v, want %v", name, o, tc.offer)
		}
		setup := <-got
		if setup.HasPath != tc.hasPath || setup.Path != tc.path || setup.Role != wire.RoleSubscriber {
			t.Errorf("%s: SETUP path %q (sent %v), role %d; want %q (%v), subscriber", name, setup.Path, setup.HasPath, setup.Role, tc.path, tc.hasPath)
		}
		sess.Close()
	}
}

// Over raw QUIC with ALPN moq-00, CLIENT_SETUP carries PATH (with the query)
// and AUTHORITY; the session is draft-14.
func TestRawQUICIETF(t *testing.T) {
	got := make(chan []byte, 1)
	r := startRawRelay(t, []string{ietf.Protocol}, func(conn *quic.Conn, _ []string) {
		str, err := conn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		msg, err := ietf.ReadMessage(bufio.NewReader(str))
		if err != nil {
			t.Errorf("CLIENT_SETUP: %v", err)
			return
		}
		b, _ := ietf.AppendMessage(nil, msg.Type, msg.Body)
		got <- b
		reply, _ := ietf.ServerSetup{Version: ietf.Draft14, MaxRequestID: 10}.Append(nil)
		_, _ = str.Write(reply)
		<-conn.Context().Done()
	})
	sess, err := moq.Dial(testCtx(t), r.url("moql", "/anon?jwt=secret"), moq.DialOptions{
		TLS: moq.TLSOptions{Fingerprint: r.fingerprint}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if sess.Version() != ietf.Name {
		t.Fatalf("negotiated %s, want %s", sess.Version(), ietf.Name)
	}
	want, _ := ietf.ClientSetup{Versions: []uint64{ietf.Draft14}, MaxRequestID: 1<<32 - 1, Implementation: "ec-node",
		Path: "/anon?jwt=secret", Authority: fmt.Sprintf("127.0.0.1:%d", r.port)}.Append(nil)
	if b := <-got; string(b) != string(want) {
		t.Fatalf("CLIENT_SETUP\n% x, want\n% x", b, want)
	}
}

// A relay closing a raw QUIC session gives its application code and reason,
// as a CLOSE_WEBTRANSPORT_SESSION capsule does over WebTransport.
func TestRawQUICClosedByRelayReportsCode(t *testing.T) {
	r := startRawRelay(t, []string{"moq-lite-06"}, func(conn *quic.Conn, _ []string) {
		if _, err := conn.AcceptUniStream(context.Background()); err == nil {
			_ = conn.CloseWithError(0x7, "going away")
		}
	})
	sess, err := moq.Dial(testCtx(t), r.url("moqt", "/anon"), moq.DialOptions{
		TLS: moq.TLSOptions{Fingerprint: r.fingerprint}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session not ended by the relay's close")
	}
	var closed *h3wt.SessionError
	if !errors.As(sess.Err(), &closed) || closed.Code != 0x7 || closed.Message != "going away" {
		t.Fatalf("session error %v, want the relay's code 0x7 and message", sess.Err())
	}
}

// Schemes and version lists that cannot work fail before anything is dialled.
func TestDialRefusesBeforeDialling(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opts moq.DialOptions
		want string
	}{
		{"http://127.0.0.1:9/anon", moq.DialOptions{}, "scheme"},
		{"wss://127.0.0.1:9/anon", moq.DialOptions{}, "scheme"},
		{"moqt:///anon", moq.DialOptions{}, "want https://, moqt:// or moql://"},
		{"moqt://127.0.0.1:9/anon", moq.DialOptions{Versions: []string{"moq-lite-04", "moq-lite-03"}}, "raw QUIC needs moq-lite-05"},
		{"moqt://127.0.0.1:9/anon", moq.DialOptions{Protocol: moq.ProtocolLite, Versions: []string{"moq-lite-04"}}, "raw QUIC needs moq-lite-05"},
	} {
		_, err := moq.Dial(testCtx(t), tc.url, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dial(%s, %+v) = %v, want an error about %q", tc.url, tc.opts, err, tc.want)
		}
	}
}
