package moq_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/quic-go/webtransport-go"

	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/moq/moqtest"
	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// relayScript plays the relay's subscriber half against our Publisher, the way
// moq-net does it: announce request, (lite-05) TRACK, SUBSCRIBE, then reads the
// group streams. Each step reports to the test through the channels.
type relayScript struct {
	announced chan wire.Announce
	groups    chan receivedGroup
	responses chan wire.SubscribeResponse
	notFound  chan error
	subEnded  chan error
	withdrawn chan wire.Announce
	failed    chan error
}

type receivedGroup struct {
	seq    uint64
	frames [][]byte
	stamps []uint64
}

func newRelayScript() *relayScript {
	return &relayScript{announced: make(chan wire.Announce, 1), groups: make(chan receivedGroup, 16),
		responses: make(chan wire.SubscribeResponse, 16), notFound: make(chan error, 1),
		subEnded: make(chan error, 1), withdrawn: make(chan wire.Announce, 1), failed: make(chan error, 8)}
}

func (r *relayScript) fail(err error) { r.failed <- err }

func (r *relayScript) serve(p *moqtest.Peer) {
	ctx := p.Session.Context()
	v := p.Version
	if v.HasSetup() {
		setup, err := p.ReadClientSetup(ctx)
		if err != nil || setup.Role != wire.RolePublisher {
			r.fail(fmt.Errorf("client SETUP %+v, %v; want role publisher", setup, err))
			return
		}
	}
	go r.readGroups(ctx, p)

	b := wire.AppendStreamType(nil, wire.StreamAnnounce)
	b, _ = wire.AnnouncePlease{Prefix: "live"}.Append(b, v)
	ann, err := p.OpenBidi(ctx, b)
	if err != nil {
		r.fail(err)
		return
	}
	ar := bufio.NewReader(ann)
	if v.HasAnnounceOK() {
		if _, err := wire.ReadAnnounceOK(ar, v); err != nil {
			r.fail(fmt.Errorf("announce ok: %w", err))
			return
		}
	}
	a, err := wire.ReadAnnounce(ar, v)
	if err != nil {
		r.fail(fmt.Errorf("announce: %w", err))
		return
	}
	r.announced <- a

	if v.HasTrackStream() {
		b = wire.AppendStreamType(nil, wire.StreamTrack)
		b, _ = wire.Track{Broadcast: "live/show", Track: "video"}.Append(b, v)
		str, err := p.OpenBidi(ctx, b)
		if err != nil {
			r.fail(err)
			return
		}
		info, err := wire.ReadTrackInfo(bufio.NewReader(str), v)
		if err != nil || info.Timescale != 90000 {
			r.fail(fmt.Errorf("track info %+v, %v; want timescale 90000", info, err))
			return
		}
	}

	// An unknown track is refused with NotFound.
	b = wire.AppendStreamType(nil, wire.StreamSubscribe)
	b, _ = wire.Subscribe{ID: 1, Broadcast: "live/show", Track: "nope"}.Append(b, v)
	str, err := p.OpenBidi(ctx, b)
	if err != nil {
		r.fail(err)
		return
	}
	_, err = wire.ReadSubscribeResponse(bufio.NewReader(str), v)
	r.notFound <- err

	b = wire.AppendStreamType(nil, wire.StreamSubscribe)
	b, _ = wire.Subscribe{ID: 7, Broadcast: "live/show", Track: "video", Priority: 3}.Append(b, v)
	sub, err := p.OpenBidi(ctx, b)
	if err != nil {
		r.fail(err)
		return
	}
	sr := bufio.NewReader(sub)
	for {
		resp, err := wire.ReadSubscribeResponse(sr, v)
		if err != nil {
			r.subEnded <- err
			break
		}
		r.responses <- resp
	}
	_ = sub.Close()

	a, err = wire.ReadAnnounce(ar, v)
	if err != nil {
		r.fail(fmt.Errorf("announce end: %w", err))
		return
	}
	r.withdrawn <- a
	_, err = ar.ReadByte()
	if err != io.EOF {
		r.fail(fmt.Errorf("announce stream after withdrawal: %v, want EOF", err))
	}
	_ = ann.Close()
	<-ctx.Done()
}

func (r *relayScript) readGroups(ctx context.Context, p *moqtest.Peer) {
	for {
		str, err := p.Session.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		go func(str *webtransport.ReceiveStream) {
			br := bufio.NewReader(str)
			if typ, err := wire.ReadStreamType(br); err != nil || typ != wire.StreamGroup {
				r.fail(fmt.Errorf("uni stream type %d, %v", typ, err))
				return
			}
			hdr, err := wire.ReadGroup(br, p.Version)
			if err != nil || hdr.SubscribeID != 7 {
				r.fail(fmt.Errorf("group header %+v, %v", hdr, err))
				return
			}
			g := receivedGroup{seq: hdr.Sequence}
			var prev uint64
			for {
				h, err := wire.ReadFrameHeader(br, p.Version, prev)
				if err == io.EOF {
					break
				}
				if err != nil {
					r.fail(err)
					return
				}
				prev = h.Timestamp
				f := make([]byte, h.Size)
				if _, err := io.ReadFull(br, f); err != nil {
					r.fail(err)
					return
				}
				g.frames = append(g.frames, f)
				g.stamps = append(g.stamps, h.Timestamp)
			}
			r.groups <- g
		}(str)
	}
}

func TestPublisherServesRelay(t *testing.T) {
	for _, version := range publisherVersions() {
		t.Run(version, func(t *testing.T) {
			v, _ := wire.ParseVersion(version)
			script := newRelayScript()
			s := startStandIn(t, []string{version}, script.serve)
			ctx := testCtx(t)
			pub, err := moq.DialPublisher(ctx, s.URL+"anon", "live/show", moq.DialOptions{
				TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			track, err := pub.Track("video", moq.TrackInfo{Timescale: 90000})
			if err != nil {
				t.Fatal(err)
			}
			// A group written before anyone subscribes is the one a new
			// subscription starts with.
			first := moq.OutGroup{Sequence: 5, Frames: []moq.OutFrame{{Payload: []byte("key"), Timestamp: 9000}, {Payload: []byte{}, Timestamp: 12000}}}
			if err := track.WriteGroup(ctx, first); err != nil {
				t.Fatal(err)
			}
			if err := pub.Announce(); err != nil {
				t.Fatal(err)
			}
			a := expect(t, script, script.announced)
			if a.Status != wire.AnnounceActive || a.Suffix != "show" || a.Cost != (wire.RouteCost{}) {
				t.Fatalf("announce %+v, want active suffix show at no cost", a)
			}
			if err := expect(t, script, script.notFound); !isReset(err, wire.CodeNotFound) {
				t.Fatalf("unknown track: %v, want reset NotFound", err)
			}
			if err := pub.WaitSubscribed(ctx, []string{"video"}); err != nil {
				t.Fatal(err)
			}
			resp := expect(t, script, script.responses)
			wantFirst := wire.SubscribeResponse{Kind: wire.ResponseOK, OK: wire.SubscribeOK{Priority: 3}}
			if v.HasTrackStream() {
				wantFirst = wire.SubscribeResponse{Kind: wire.ResponseStart, Group: 5}
			}
			if resp != wantFirst {
				t.Fatalf("first response %+v, want %+v", resp, wantFirst)
			}
			second := moq.OutGroup{Sequence: 8, Frames: []moq.OutFrame{{Payload: bytes.Repeat([]byte("x"), 100_000), Timestamp: 15000}}}
			if err := track.WriteGroup(ctx, second); err != nil {
				t.Fatal(err)
			}
			got := map[uint64]receivedGroup{}
			for range 2 {
				g := expect(t, script, script.groups)
				got[g.seq] = g
			}
			for _, want := range []moq.OutGroup{first, second} {
				g := got[want.Sequence]
				if len(g.frames) != len(want.Frames) {
					t.Fatalf("group %d: %d frames, want %d", want.Sequence, len(g.frames), len(want.Frames))
				}
				for i, f := range want.Frames {
					if !bytes.Equal(g.frames[i], f.Payload) {
						t.Errorf("group %d frame %d differs", want.Sequence, i)
					}
					if v.HasTrackStream() && g.stamps[i] != f.Timestamp {
						t.Errorf("group %d frame %d: timestamp %d, want %d", want.Sequence, i, g.stamps[i], f.Timestamp)
					}
				}
			}

			track.Close()
			if v.HasTrackStream() {
				if end := expect(t, script, script.responses); end != (wire.SubscribeResponse{Kind: wire.ResponseEnd, Group: 9}) {
					t.Fatalf("end response %+v, want END 9", end)
				}
			}
			if err := expect(t, script, script.subEnded); err != io.EOF {
				t.Fatalf("subscription ended with %v, want FIN", err)
			}
			if err := track.WriteGroup(ctx, second); !errors.Is(err, moq.ErrTrackClosed) {
				t.Fatalf("write after close: %v", err)
			}
			closeCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- pub.Close(closeCtx) }()
			// Lite-06 names the announcement by the id its START took (the
			// stream's first: 0), earlier versions by the path.
			want := wire.Announce{Status: wire.AnnounceEnded, Suffix: "show", Hops: []uint64{}}
			if v.HasAnnounceIDs() {
				want = wire.Announce{Status: wire.AnnounceEnded, ID: 0}
			}
			if a := expect(t, script, script.withdrawn); !reflect.DeepEqual(a, want) {
				t.Fatalf("withdrawal %+v, want %+v", a, want)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func expect[T any](t *testing.T, r *relayScript, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case err := <-r.failed:
		t.Fatalf("relay script: %v", err)
	case <-testCtx(t).Done():
		t.Fatal("timed out")
	}
	panic("unreachable")
}

func isReset(err error, code webtransport.StreamErrorCode) bool {
	var se *webtransport.StreamError
	return errors.As(err, &se) && se.ErrorCode == code
}

// TestPublisherBoundedAndCancelledSubscriptions: a SUBSCRIBE with an end group
// gets exactly its groups and then its end; a subscriber that FINs is answered
// with our FIN.
func TestPublisherBoundedAndCancelledSubscriptions(t *testing.T) {
	for _, version := range publisherVersions() {
		t.Run(version, func(t *testing.T) {
			v, _ := wire.ParseVersion(version)
			seqs := make(chan uint64, 16)
			result := make(chan error, 4)
			s := startStandIn(t, []string{version}, func(p *moqtest.Peer) {
				ctx := p.Session.Context()
				if v.HasSetup() {
					if _, err := p.ReadClientSetup(ctx); err != nil {
						result <- err
						return
					}
				}
				go func() {
					for {
						str, err := p.Session.AcceptUniStream(ctx)
						if err != nil {
							return
						}
						br := bufio.NewReader(str)
						_, _ = wire.ReadStreamType(br)
						if hdr, err := wire.ReadGroup(br, v); err == nil {
							seqs <- hdr.Sequence
						}
						_, _ = io.Copy(io.Discard, br)
					}
				}()
				// Like the relay: subscribe only once the broadcast is announced.
				b := wire.AppendStreamType(nil, wire.StreamAnnounce)
				b, _ = wire.AnnouncePlease{}.Append(b, v)
				ann, err := p.OpenBidi(ctx, b)
				if err != nil {
					result <- err
					return
				}
				ar := bufio.NewReader(ann)
				if v.HasAnnounceOK() {
					if _, err := wire.ReadAnnounceOK(ar, v); err != nil {
						result <- err
						return
					}
				}
				if _, err := wire.ReadAnnounce(ar, v); err != nil {
					result <- err
					return
				}
				subscribe := func(id uint64, end wire.OptionalGroup) (*webtransport.Stream, *bufio.Reader, error) {
					b := wire.AppendStreamType(nil, wire.StreamSubscribe)
					b, _ = wire.Subscribe{ID: id, Broadcast: "b", Track: "t", End: end}.Append(b, v)
					str, err := p.OpenBidi(ctx, b)
					return str, bufio.NewReader(str), err
				}
				// Bounded: read responses to the FIN.
				bounded, br, err := subscribe(1, wire.OptionalGroup{Seq: 6, Set: true})
				if err != nil {
					result <- err
					return
				}
				var kinds []string
				for {
					resp, err := wire.ReadSubscribeResponse(br, v)
					if err == io.EOF {
						break
					}
					if err != nil {
						result <- err
						return
					}
					kinds = append(kinds, fmt.Sprintf("%d:%d", resp.Kind, resp.Group))
				}
				_ = bounded.Close() // as the relay does once it has every group
				result <- fmt.Errorf("bounded %v", kinds)
				// Cancelled: FIN right after subscribing; the publisher FINs too.
				str, br, err := subscribe(2, wire.OptionalGroup{})
				if err != nil {
					result <- err
					return
				}
				_ = str.Close()
				_, err = io.Copy(io.Discard, br)
				result <- fmt.Errorf("cancelled %v", err)
				<-ctx.Done()
			})
			ctx := testCtx(t)
			pub, err := moq.DialPublisher(ctx, s.URL, "b", moq.DialOptions{
				TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close(ctx)
			track, _ := pub.Track("t", moq.TrackInfo{})
			if err := pub.Announce(); err != nil {
				t.Fatal(err)
			}
			if err := pub.WaitSubscribed(ctx, []string{"t"}); err != nil {
				t.Fatal(err)
			}
			for seq := uint64(5); seq <= 7; seq++ {
				if err := track.WriteGroup(ctx, moq.OutGroup{Sequence: seq, Frames: []moq.OutFrame{{Payload: []byte("f")}}}); err != nil {
					t.Fatal(err)
				}
			}
			want := "bounded [1:0]" // lite-03/04: SUBSCRIBE_OK, then FIN
			if v.HasTrackStream() {
				want = fmt.Sprintf("bounded [%d:5 %d:7]", wire.ResponseStart, wire.ResponseEnd)
			}
			if got := (<-result).Error(); got != want {
				t.Fatalf("%s, want %s", got, want)
			}
			got := []uint64{<-seqs, <-seqs}
			if !(got[0] == 5 && got[1] == 6 || got[0] == 6 && got[1] == 5) {
				t.Fatalf("groups %v, want 5 and 6", got)
			}
			if got := (<-result).Error(); got != "cancelled <nil>" {
				t.Fatalf("%s, want the publisher's FIN", got)
			}
			// Only the unbounded second subscription may have got a group: the
			// latest one, 7, which it starts with.
			select {
			case seq := <-seqs:
				if seq != 7 {
					t.Fatalf("group %d sent past the end", seq)
				}
			default:
			}
		})
	}
}

// publisherVersions are the versions the publisher speaks, as names.
func publisherVersions() []string {
	var names []string
	for _, v := range moq.PublisherVersions {
		names = append(names, v.String())
	}
	return names
}

// TestLite06PublisherFrameBounds: lite-06 FETCH and SUBSCRIBE may name frame
// bounds; the publisher serves exactly those frames, a GROUP header says where
// the stream's first frame sits in its group, and timestamps count from 0 on
// each stream.
func TestLite06PublisherFrameBounds(t *testing.T) {
	v := wire.Lite06
	type fetchResult struct {
		frames [][]byte
		stamps []uint64
		err    error
	}
	fetches := make(chan fetchResult, 4)
	groups := make(chan error, 4) // nil: a group as wanted
	responses := make(chan wire.SubscribeResponse, 4)
	failed := make(chan error, 4)
	// readFrames reads frames to the stream's FIN.
	readFrames := func(br *bufio.Reader) ([][]byte, []uint64, error) {
		var frames [][]byte
		var stamps []uint64
		var prev uint64
		for {
			h, err := wire.ReadFrameHeader(br, v, prev)
			if err == io.EOF {
				return frames, stamps, nil
			}
			if err != nil {
				return frames, stamps, err
			}
			prev = h.Timestamp
			f := make([]byte, h.Size)
			if _, err := io.ReadFull(br, f); err != nil {
				return frames, stamps, err
			}
			frames, stamps = append(frames, f), append(stamps, h.Timestamp)
		}
	}
	s := startStandIn(t, []string{v.String()}, func(p *moqtest.Peer) {
		ctx := p.Session.Context()
		if _, err := p.ReadClientSetup(ctx); err != nil {
			failed <- err
			return
		}
		// Groups: 5 from frame 1 (the subscription's start), 6 through frame 0
		// (its end).
		want := map[uint64]struct {
			start  uint64
			frames []string
			stamps []uint64
		}{5: {1, []string{"b", "c"}, []uint64{200, 300}}, 6: {0, []string{"d"}, []uint64{400}}}
		go func() {
			for range 2 {
				str, err := p.Session.AcceptUniStream(ctx)
				if err != nil {
					return
				}
				br := bufio.NewReader(str)
				_, _ = wire.ReadStreamType(br)
				hdr, err := wire.ReadGroup(br, v)
				if err != nil {
					groups <- err
					continue
				}
				frames, stamps, err := readFrames(br)
				w := want[hdr.Sequence]
				got := fmt.Sprintf("%d@%d %q %v %v", hdr.Sequence, hdr.FrameStart, frames, stamps, err)
				if exp := fmt.Sprintf("%d@%d %q %v <nil>", hdr.Sequence, w.start, w.frames, w.stamps); got != exp {
					groups <- fmt.Errorf("group %s, want %s", got, exp)
					continue
				}
				groups <- nil
			}
		}()
		b := wire.AppendStreamType(nil, wire.StreamAnnounce)
		b, _ = wire.AnnouncePlease{}.Append(b, v)
		ann, err := p.OpenBidi(ctx, b)
		if err != nil {
			failed <- err
			return
		}
		ar := bufio.NewReader(ann)
		if _, err := wire.ReadAnnounceOK(ar, v); err != nil {
			failed <- err
			return
		}
		if a, err := wire.ReadAnnounce(ar, v); err != nil || a.Suffix != "b" {
			failed <- fmt.Errorf("announce %+v, %v", a, err)
			return
		}
		b = wire.AppendStreamType(nil, wire.StreamTrack)
		b, _ = wire.Track{Broadcast: "b", Track: "t"}.Append(b, v)
		str, err := p.OpenBidi(ctx, b)
		if err != nil {
			failed <- err
			return
		}
		if info, err := wire.ReadTrackInfo(bufio.NewReader(str), v); err != nil || info.Timescale != 1000 {
			failed <- fmt.Errorf("track info %+v, %v", info, err)
			return
		}
		for _, f := range []wire.Fetch{
			{Broadcast: "b", Track: "t", Group: 5, StartFrame: 1, EndFrame: wire.OptionalFrame{Index: 1, Set: true}},
			{Broadcast: "b", Track: "t", Group: 5, StartFrame: 2},
			{Broadcast: "b", Track: "t", Group: 5, StartFrame: 4}, // past the group's 3 frames
		} {
			b = wire.AppendStreamType(nil, wire.StreamFetch)
			b, _ = f.Append(b, v)
			str, err := p.OpenBidi(ctx, b)
			if err != nil {
				failed <- err
				return
			}
			_ = str.Close()
			frames, stamps, err := readFrames(bufio.NewReader(str))
			fetches <- fetchResult{frames, stamps, err}
		}
		b = wire.AppendStreamType(nil, wire.StreamSubscribe)
		b, _ = wire.Subscribe{ID: 9, Broadcast: "b", Track: "t", Start: wire.OptionalGroup{Seq: 5, Set: true}, StartFrame: 1,
			End: wire.OptionalGroup{Seq: 6, Set: true}, EndFrame: wire.OptionalFrame{Index: 0, Set: true}}.Append(b, v)
		sub, err := p.OpenBidi(ctx, b)
		if err != nil {
			failed <- err
			return
		}
		sr := bufio.NewReader(sub)
		for {
			resp, err := wire.ReadSubscribeResponse(sr, v)
			if err != nil {
				if err != io.EOF {
					failed <- err
				}
				break
			}
			responses <- resp
		}
		_ = sub.Close()
		<-ctx.Done()
	})
	ctx := testCtx(t)
	pub, err := moq.DialPublisher(ctx, s.URL, "b", moq.DialOptions{
		TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx)
	if pub.Version() != "moq-lite-06" {
		t.Fatalf("negotiated %s", pub.Version())
	}
	track, _ := pub.Track("t", moq.TrackInfo{})
	frames := func(stamp uint64, payloads ...string) []moq.OutFrame {
		var out []moq.OutFrame
		for i, p := range payloads {
			out = append(out, moq.OutFrame{Payload: []byte(p), Timestamp: stamp + uint64(i)*100})
		}
		return out
	}
	if err := track.WriteGroup(ctx, moq.OutGroup{Sequence: 5, Frames: frames(100, "a", "b", "c")}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Announce(); err != nil {
		t.Fatal(err)
	}
	recv := func() fetchResult {
		select {
		case r := <-fetches:
			return r
		case err := <-failed:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("timed out")
		}
		panic("unreachable")
	}
	for _, want := range []string{`["b"] [200] <nil>`, `["c"] [300] <nil>`} {
		r := recv()
		if got := fmt.Sprintf("%q %v %v", r.frames, r.stamps, r.err); got != want {
			t.Errorf("fetch: %s, want %s", got, want)
		}
	}
	if r := recv(); !isReset(r.err, wire.CodeNotFound) {
		t.Errorf("fetch past the group's end: %v, want reset NotFound", r.err)
	}
	if err := pub.WaitSubscribed(ctx, []string{"t"}); err != nil {
		t.Fatal(err)
	}
	if err := track.WriteGroup(ctx, moq.OutGroup{Sequence: 6, Frames: frames(400, "d", "e", "f")}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-groups:
			if err != nil {
				t.Error(err)
			}
		case err := <-failed:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("timed out")
		}
	}
	var got []wire.SubscribeResponse
	for range 2 {
		select {
		case r := <-responses:
			got = append(got, r)
		case err := <-failed:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("timed out")
		}
	}
	want := []wire.SubscribeResponse{{Kind: wire.ResponseStart, Group: 5}, {Kind: wire.ResponseEnd, Group: 7}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("responses %+v, want %+v", got, want)
	}
}

// TestPublisherUpdateEndBelowSent: a SUBSCRIBE_UPDATE whose end falls below a
// group already sent ends the subscription after that group; SUBSCRIBE_END
// never names an end below a group the subscriber has (a lite-06 relay drops
// such a subscription as a protocol violation).
func TestPublisherUpdateEndBelowSent(t *testing.T) {
	for _, v := range []wire.Version{wire.Lite06, wire.Lite05} {
		t.Run(v.String(), func(t *testing.T) {
			got := make(chan uint64, 4)   // group sequences received
			resps := make(chan string, 4) // subscribe responses, then the error that ended them
			s := startStandIn(t, []string{v.String()}, func(p *moqtest.Peer) {
				ctx := p.Session.Context()
				if _, err := p.ReadClientSetup(ctx); err != nil {
					resps <- err.Error()
					return
				}
				go func() {
					for {
						str, err := p.Session.AcceptUniStream(ctx)
						if err != nil {
							return
						}
						br := bufio.NewReader(str)
						_, _ = wire.ReadStreamType(br)
						hdr, err := wire.ReadGroup(br, v)
						_, _ = io.Copy(io.Discard, br)
						if err == nil {
							got <- hdr.Sequence
						}
					}
				}()
				b := wire.AppendStreamType(nil, wire.StreamSubscribe)
				b, _ = wire.Subscribe{ID: 1, Broadcast: "b", Track: "t"}.Append(b, v)
				sub, err := p.OpenBidi(ctx, b)
				if err != nil {
					resps <- err.Error()
					return
				}
				sr := bufio.NewReader(sub)
				for {
					resp, err := wire.ReadSubscribeResponse(sr, v)
					if err != nil {
						resps <- fmt.Sprint(err)
						break
					}
					resps <- fmt.Sprintf("%d:%d", resp.Kind, resp.Group)
					if resp.Kind == wire.ResponseStart {
						// Wait for groups 5 and 6, then cap the subscription at 5.
						<-got
						<-got
						b, _ := wire.SubscribeUpdate{End: wire.OptionalGroup{Seq: 5, Set: true}}.Append(nil, v)
						if _, err := sub.Write(b); err != nil {
							resps <- err.Error()
							return
						}
					}
				}
				_ = sub.Close()
				<-ctx.Done()
			})
			ctx := testCtx(t)
			pub, err := moq.DialPublisher(ctx, s.URL, "b", moq.DialOptions{
				TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Logger: quietLogger(), Versions: []string{v.String()}})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close(ctx)
			track, _ := pub.Track("t", moq.TrackInfo{})
			if err := track.WriteGroup(ctx, moq.OutGroup{Sequence: 5, Frames: []moq.OutFrame{{Payload: []byte("a")}}}); err != nil {
				t.Fatal(err)
			}
			if err := pub.WaitSubscribed(ctx, []string{"t"}); err != nil {
				t.Fatal(err)
			}
			if err := track.WriteGroup(ctx, moq.OutGroup{Sequence: 6, Frames: []moq.OutFrame{{Payload: []byte("b")}}}); err != nil {
				t.Fatal(err)
			}
			var seen []string
			for range 3 {
				select {
				case r := <-resps:
					seen = append(seen, r)
				case <-ctx.Done():
					t.Fatalf("timed out after %v", seen)
				}
			}
			want := []string{fmt.Sprintf("%d:5", wire.ResponseStart), fmt.Sprintf("%d:7", wire.ResponseEnd), "EOF"}
			if !reflect.DeepEqual(seen, want) {
				t.Fatalf("responses %v, want %v", seen, want)
			}
		})
	}
}
