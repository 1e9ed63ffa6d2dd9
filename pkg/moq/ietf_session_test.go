package moq_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/quic-go/webtransport-go"

	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/moq/moqtest"
	"github.com/every-channel/ec-node/pkg/moq/wire"
	"github.com/every-channel/ec-node/pkg/moq/wire/ietf"
)

// ietfRelay is the stand-in's side of a draft-14 control stream.
type ietfRelay struct {
	t   *testing.T
	p   *moqtest.Peer
	str *webtransport.Stream
	r   *bufio.Reader
}

// acceptIETF accepts the control stream, reads CLIENT_SETUP and answers
// SERVER_SETUP with version. It returns nil if the client opened none.
func acceptIETF(t *testing.T, p *moqtest.Peer, version uint64) *ietfRelay {
	ctx := p.Session.Context()
	str, err := p.Session.AcceptStream(ctx)
	if err != nil {
		return nil
	}
	rl := &ietfRelay{t: t, p: p, str: str, r: bufio.NewReader(str)}
	if msg := rl.read(); msg.Type != ietf.TypeClientSetup {
		t.Errorf("first message %#x, want CLIENT_SETUP", msg.Type)
	}
	b, _ := ietf.ServerSetup{Version: version, MaxRequestID: 100}.Append(nil)
	rl.write(b, nil)
	return rl
}

func (rl *ietfRelay) read() ietf.Message {
	msg, err := ietf.ReadMessage(rl.r)
	if err != nil {
		rl.t.Errorf("stand-in read: %v", err)
	}
	return msg
}

func (rl *ietfRelay) write(b []byte, err error) {
	if err == nil {
		_, err = rl.str.Write(b)
	}
	if err != nil {
		rl.t.Errorf("stand-in write: %v", err)
	}
}

// subgroup opens a data stream: header type 0x19 (as moq-relay sends), then
// objects with the given id deltas and payloads, then FIN.
func (rl *ietfRelay) subgroup(alias, group uint64, deltas []uint64, payloads ...string) {
	b, _ := ietf.SubgroupHeader{Type: 0x19, TrackAlias: alias, Group: group}.Append(nil)
	for i, p := range payloads {
		b, _ = ietf.ObjectHeader{IDDelta: deltas[i], Extensions: []byte{0x10, 0x01}, Size: uint64(len(p))}.Append(b, true)
		b = append(b, p...)
	}
	if str, err := rl.p.OpenUni(rl.p.Session.Context(), b); err == nil {
		str.Close()
	}
}

func dialIETF(t *testing.T, s *moqtest.StandIn) (moq.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := moq.Dial(ctx, s.URL+"anon", moq.DialOptions{Protocol: moq.ProtocolIETF,
		TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Logger: quietLogger()})
	if err == nil {
		t.Cleanup(func() { sess.Close() })
	}
	return sess, err
}

// TestIETFSessionAgainstStandIn walks a draft-14 session: announcements,
// SUBSCRIBE_ERROR, a group stream that overtakes SUBSCRIBE_OK, groups missing
// their head or an object, PUBLISH_DONE and GOAWAY.
func TestIETFSessionAgainstStandIn(t *testing.T) {
	goaway := make(chan struct{})
	s := startStandIn(t, []string{ietf.Protocol}, func(p *moqtest.Peer) {
		rl := acceptIETF(t, p, ietf.Draft14)
		if rl == nil {
			return
		}
		rl.write(ietf.PublishNamespace{RequestID: 1, Namespace: []string{"live", "b"}}.Append(nil))
		// Our PUBLISH_NAMESPACE and the client's SUBSCRIBE_NAMESPACE cross.
		for range 2 {
			switch msg := rl.read(); msg.Type {
			case ietf.TypePublishNamespaceOK:
			case ietf.TypeSubscribeNamespace:
				sn, err := ietf.ParseSubscribeNamespace(msg)
				if err != nil || !reflect.DeepEqual(sn.Prefix, []string{"live"}) {
					t.Errorf("SUBSCRIBE_NAMESPACE %+v %v", sn, err)
				}
				rl.write(ietf.AppendRequestID(nil, ietf.TypeSubscribeNamespaceOK, sn.RequestID))
			default:
				t.Errorf("unexpected message %#x", msg.Type)
			}
		}

		missing, err := ietf.ParseSubscribe(rl.read())
		if err != nil || missing.Track != "missing" {
			t.Errorf("first SUBSCRIBE %+v %v", missing, err)
		}
		rl.write(ietf.RequestError{RequestID: missing.RequestID, Code: ietf.CodeTrackDoesNotExist, Reason: "no"}.Append(nil, ietf.TypeSubscribeError))

		sub, err := ietf.ParseSubscribe(rl.read())
		if err != nil || !reflect.DeepEqual(sub.Namespace, []string{"live", "b"}) || sub.Filter != ietf.FilterNextGroupStart {
			t.Errorf("SUBSCRIBE %+v %v", sub, err)
		}
		rl.subgroup(7, 1, []uint64{0, 0, 0}, "a", "", "bc") // before SUBSCRIBE_OK names alias 7
		time.Sleep(50 * time.Millisecond)
		rl.write(ietf.SubscribeOK{RequestID: sub.RequestID, TrackAlias: 7}.Append(nil))
		time.Sleep(50 * time.Millisecond)
		rl.subgroup(7, 2, []uint64{1}, "x") // object 0, the head, is missing
		time.Sleep(50 * time.Millisecond)
		rl.subgroup(7, 3, []uint64{0, 1}, "x", "y") // object 1 is missing
		time.Sleep(50 * time.Millisecond)
		rl.write(ietf.PublishDone{RequestID: sub.RequestID, Status: 2, StreamCount: 3, Reason: "ended"}.Append(nil))
		// The next message is the SUBSCRIBE of another track, not an UNSUBSCRIBE
		// of the ended one; closing that one does send UNSUBSCRIBE.
		other, err := ietf.ParseSubscribe(rl.read())
		if err != nil || other.Track != "u" {
			t.Errorf("after PUBLISH_DONE: %+v %v", other, err)
		}
		rl.write(ietf.SubscribeOK{RequestID: other.RequestID, TrackAlias: 8}.Append(nil))
		msg := rl.read()
		if id, err := ietf.ParseRequestID(msg); msg.Type != ietf.TypeUnsubscribe || err != nil || id != other.RequestID {
			t.Errorf("message %#x for request %d (%v), want UNSUBSCRIBE of %d", msg.Type, id, err, other.RequestID)
		}
		<-goaway
		rl.write(ietf.Goaway{URI: "https://elsewhere/?jwt=x"}.Append(nil))
		<-p.Session.Context().Done()
	})
	sess, err := dialIETF(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Version() != ietf.Name {
		t.Fatalf("version %q", sess.Version())
	}
	ctx := testCtx(t)
	anns, err := sess.Announced(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if a, err := anns.Next(ctx); err != nil || a != (moq.Announcement{Broadcast: "live/b", Active: true}) {
		t.Fatalf("announcement %+v %v", a, err)
	}
	if _, err := sess.Subscribe(ctx, "live/b", "missing"); !errors.Is(err, moq.ErrNotFound) {
		t.Fatalf("subscribe to a missing track: %v", err)
	}
	sub, err := sess.Subscribe(ctx, "live/b", "t")
	if err != nil {
		t.Fatal(err)
	}
	g, err := sub.NextGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frames, _, err := readGroup(g)
	if err != io.EOF || g.Sequence() != 1 || !reflect.DeepEqual(frames, [][]byte{[]byte("a"), {}, []byte("bc")}) {
		t.Fatalf("group %d: %q %v", g.Sequence(), frames, err)
	}
	for _, want := range []uint64{2, 3} {
		g, err := sub.NextGroup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := readGroup(g); g.Sequence() != want || !errors.Is(err, moq.ErrGroupReset) {
			t.Fatalf("group %d: %v, want group %d reset", g.Sequence(), err, want)
		}
	}
	if _, err := sub.NextGroup(ctx); err != io.EOF {
		t.Fatalf("after PUBLISH_DONE: %v, want io.EOF", err)
	}
	sub.Close()
	other, err := sess.Subscribe(ctx, "live/b", "u")
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	close(goaway)
	select {
	case <-sess.Done():
	case <-ctx.Done():
		t.Fatal("GOAWAY did not end the session")
	}
	if err := sess.Err(); !errors.Is(err, moq.ErrGoAway) {
		t.Fatalf("session error %v, want ErrGoAway", err)
	}
}

// TestIETFHostileControl: a malformed or unknown control message, or a flood
// of namespaces, ends the session instead of growing memory or being
// half-understood; a relay that answers another version fails the dial.
func TestIETFHostileControl(t *testing.T) {
	flood := func(rl *ietfRelay) {
		for i := uint64(0); i < 5000; i++ {
			b, _ := ietf.PublishNamespace{RequestID: 2*i + 1, Namespace: []string{"n", string(rune('a' + i%26)), string(rune(i))}}.Append(nil)
			if _, err := rl.str.Write(b); err != nil {
				return
			}
		}
	}
	raw := func(b []byte) func(*ietfRelay) { return func(rl *ietfRelay) { rl.write(b, nil) } }
	for _, tc := range []struct {
		name string
		send func(*ietfRelay)
		want error
	}{
		{"unknown type", raw([]byte{0x3f, 0, 0}), wire.ErrInvalid},
		{"namespace of 33 fields", raw([]byte{ietf.TypePublishNamespace, 0, 2, 1, 33}), wire.ErrTooLarge},
		{"trailing bytes", raw([]byte{ietf.TypeGoaway, 0, 2, 0, 0}), wire.ErrTrailingBytes},
		{"cut short", func(rl *ietfRelay) { rl.write([]byte{ietf.TypeGoaway, 0, 9, 1}, nil); rl.str.Close() }, io.ErrUnexpectedEOF},
		{"namespace flood", flood, wire.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStandIn(t, []string{ietf.Protocol}, func(p *moqtest.Peer) {
				if rl := acceptIETF(t, p, ietf.Draft14); rl != nil {
					tc.send(rl)
				}
				<-p.Session.Context().Done()
			})
			sess, err := dialIETF(t, s)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-sess.Done():
			case <-testCtx(t).Done():
				t.Fatal("session survived")
			}
			if !errors.Is(sess.Err(), tc.want) {
				t.Fatalf("session error %v, want %v", sess.Err(), tc.want)
			}
		})
	}
	s := startStandIn(t, []string{ietf.Protocol}, func(p *moqtest.Peer) {
		acceptIETF(t, p, ietf.Draft14+1)
		<-p.Session.Context().Done()
	})
	if _, err := dialIETF(t, s); err == nil {
		t.Fatal("dial accepted a version it did not offer")
	}
}

// TestProtocolOffer: auto offers moq-lite first and IETF after it, so a relay
// that speaks only draft-14 gets draft-14.
func TestProtocolOffer(t *testing.T) {
	s := startStandIn(t, []string{ietf.Protocol}, func(p *moqtest.Peer) {
		acceptIETF(t, p, ietf.Draft14)
		<-p.Session.Context().Done()
	})
	ctx := testCtx(t)
	sess, err := moq.Dial(ctx, s.URL+"anon", moq.DialOptions{TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if sess.Version() != ietf.Name {
		t.Fatalf("auto negotiated %q with a draft-14-only relay", sess.Version())
	}
	if _, err := moq.Dial(ctx, s.URL+"anon", moq.DialOptions{Protocol: moq.ProtocolLite,
		TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Logger: quietLogger()}); err == nil {
		t.Fatal("moq-lite only dialled a draft-14-only relay")
	}
	if _, err := moq.Dial(ctx, s.URL+"anon", moq.DialOptions{Protocol: "quic"}); err == nil {
		t.Fatal("unknown protocol accepted")
	}
}
