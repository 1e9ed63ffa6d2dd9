package moq

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// Publisher is the publisher side of a moq-lite session: it announces one
// broadcast to the relay and serves the relay's subscriptions to its tracks.
//
// The relay pulls: it asks for announcements (ANNOUNCE_PLEASE), and subscribes
// to a track (SUBSCRIBE, from lite-05 after a TRACK request) only while one of
// its own subscribers wants it. A subscription without a start group begins
// with the track's latest group, sent whole, as moq-relay does for its own
// subscribers; each group goes out on its own uni stream.
type Publisher struct {
	conn
	broadcast string
	hop       uint64 // our origin id in announcements

	mu        sync.Mutex
	tracks    map[string]*Track
	announces map[*announceStream]struct{}
	announced bool          // Announce was called and Close was not
	subWake   chan struct{} // closed and replaced when a subscription starts
	done      chan struct{}
}

// TrackInfo describes a published track.
type TrackInfo struct {
	// Priority is the track's priority in TRACK_INFO, lite-05 on (moq-net's
	// default is 127).
	Priority uint8
	// MaxLatency bounds how long the relay keeps serving a group once a newer
	// one exists (TRACK_INFO, lite-05 on; 0 means 5 s, moq-net's default).
	MaxLatency time.Duration
	// Timescale is the unit of the frame timestamps, per second (lite-05
	// on; 0 means 1000).
	Timescale uint64
}

// OutGroup is one group to publish: its sequence and its frames, in order.
type OutGroup struct {
	Sequence uint64
	Frames   []OutFrame
}

// OutFrame is one frame. Timestamp (in the track's timescale) goes on the
// wire from lite-05 on; older versions have no field for it.
type OutFrame struct {
	Payload   []byte
	Timestamp uint64
}

// DialPublisher opens a session to rawURL (as Dial does) to publish the
// broadcast named broadcast, relative to the URL's root. Add tracks with
// Track, then call Announce.
func DialPublisher(ctx context.Context, rawURL, broadcast string, opts DialOptions) (*Publisher, error) {
	broadcast = strings.Trim(broadcast, "/")
	if broadcast == "" {
		return nil, errors.New("moq: publish: empty broadcast name")
	}
	if _, err := (wire.Announce{Suffix: broadcast}).Append(nil, wire.Lite05); err != nil {
		return nil, fmt.Errorf("moq: publish %q: %w", broadcast, err)
	}
	var err error
	if opts.Versions, err = publisherVersions(opts.Versions); err != nil {
		return nil, err
	}
	switch opts.Protocol {
	case "", ProtocolAuto, ProtocolLite:
		opts.Protocol = ProtocolLite
	default:
		return nil, fmt.Errorf("moq: publish: protocol %q: the publisher speaks moq-lite only", opts.Protocol)
	}
	hctx, cancel := handshakeContext(ctx)
	defer cancel()
	rl, err := dialRelay(hctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	version, err := rl.liteVersion()
	if err != nil {
		return nil, err
	}
	p := &Publisher{broadcast: broadcast, hop: randomHop(), tracks: map[string]*Track{},
		announces: map[*announceStream]struct{}{}, subWake: make(chan struct{})}
	p.init(rl.wt, version, rl.log.With("version", version.String(), "broadcast", broadcast))
	p.watchRelay()
	p.goSafe(func() { p.serveBidi(p.handleBidi) })
	p.goSafe(func() { p.serveUni(p.handleUni) })
	if err := p.sendSetup(hctx, wire.RolePublisher, rl.target); err != nil {
		p.end(err)
		p.wg.Wait()
		return nil, err
	}
	p.log.Info("moq publisher session established")
	return p, nil
}

// PublisherVersions are the moq-lite versions the publisher speaks, most
// preferred first (all that the subscriber speaks).
var PublisherVersions = []wire.Version{wire.Lite06, wire.Lite05, wire.Lite04, wire.Lite03}

// publisherVersions returns the versions to offer: PublisherVersions when none
// are asked for, else the asked ones, each of which the publisher must speak.
func publisherVersions(asked []string) ([]string, error) {
	if len(asked) == 0 {
		for _, v := range PublisherVersions {
			asked = append(asked, v.String())
		}
		return asked, nil
	}
	for _, n := range asked {
		v, err := wire.ParseVersion(n)
		if err != nil {
			return nil, fmt.Errorf("moq: %w", err)
		}
		if !slices.Contains(PublisherVersions, v) {
			return nil, fmt.Errorf("moq: publish: version %s is not supported by the publisher (it speaks %v)", n, PublisherVersions)
		}
	}
	return asked, nil
}

// withdrawDelay is how long Close waits between the end of the tracks and the
// end of the announcement.
const withdrawDelay = 500 * time.Millisecond

// randomHop is a non-zero 62-bit origin id (0 means "unknown" to moq-net).
func randomHop() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])&wire.MaxVarint | 1
}

// Track adds a track (or returns the one of that name). Subscriptions to a
// track that was never added are refused with NotFound.
func (p *Publisher) Track(name string, info TrackInfo) (*Track, error) {
	if name == "" || len(name) > wire.MaxStringLength {
		return nil, fmt.Errorf("moq: publish track %q: invalid name", name)
	}
	if info.Timescale == 0 {
		info.Timescale = 1000
	}
	if info.MaxLatency == 0 {
		info.MaxLatency = 5 * time.Second
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.tracks[name]; ok {
		return t, nil
	}
	t := &Track{p: p, name: name, info: info, subs: map[*pubSubscription]struct{}{}}
	p.tracks[name] = t
	return t, nil
}

func (p *Publisher) track(broadcast, name string) *Track {
	if broadcast != p.broadcast {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tracks[name]
}

// Announce makes the broadcast visible: every announce request of the relay,
// past and future, whose prefix covers it gets an active announcement.
func (p *Publisher) Announce() error {
	if err := p.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	p.announced = true
	streams := p.announceList()
	p.mu.Unlock()
	for _, a := range streams {
		a.send(wire.AnnounceActive)
	}
	p.log.Info("broadcast announced")
	return nil
}

func (p *Publisher) announceList() []*announceStream {
	out := make([]*announceStream, 0, len(p.announces))
	for a := range p.announces {
		out = append(out, a)
	}
	return out
}

// WaitSubscribed blocks until every named track has at least one active
// subscription, or ctx ends.
func (p *Publisher) WaitSubscribed(ctx context.Context, tracks []string) error {
	for {
		p.mu.Lock()
		wake := p.subWake
		missing := ""
		for _, name := range tracks {
			t := p.tracks[name]
			if t == nil || t.subscribers() == 0 {
				missing = name
				break
			}
		}
		p.mu.Unlock()
		if missing == "" {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("moq: waiting for a subscription to %q: %w", missing, ctx.Err())
		case <-p.done:
			return p.Err()
		}
	}
}

// subscribed wakes WaitSubscribed.
func (p *Publisher) subscribed() {
	p.mu.Lock()
	close(p.subWake)
	p.subWake = make(chan struct{})
	p.mu.Unlock()
}

// Close ends the broadcast: every track ends (subscriptions get their end and
// a FIN once their last group is written, waiting at most until ctx ends), the
// announcement is withdrawn, and the session is closed.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	tracks := make([]*Track, 0, len(p.tracks))
	for _, t := range p.tracks {
		tracks = append(tracks, t)
	}
	p.announced = false
	streams := p.announceList()
	p.mu.Unlock()
	for _, t := range tracks {
		t.Close()
	}
	for _, t := range tracks {
		t.waitDrained(ctx)
	}
	// The relay has every group now; its subscribers may still be receiving
	// the last ones, and moq-net subscribers abandon the groups in flight when
	// the announcement ends.
	select {
	case <-time.After(withdrawDelay):
	case <-ctx.Done():
	case <-p.ctx.Done(): // the session is gone already
	}
	for _, a := range streams {
		a.send(wire.AnnounceEnded)
		a.finish()
	}
	for _, a := range streams {
		a.waitPeer(ctx)
	}
	p.end(errClosed)
	p.wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("moq: publisher close: %w", err)
	}
	return nil
}

// handleUni reads the relay's SETUP (lite-05 on) and refuses anything else: we
// subscribe to nothing, so no group stream is ours.
func (p *Publisher) handleUni(str *h3wt.ReceiveStream) {
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	br := bufio.NewReaderSize(str, streamBufferSize)
	typ, err := wire.ReadStreamType(br)
	if err == nil && typ == wire.StreamSetup && p.version.HasSetup() {
		if setup, err := wire.ReadSetup(br, p.version); err != nil {
			p.log.Warn("bad relay SETUP", "err", err)
		} else {
			p.log.Debug("relay SETUP", "probe", setup.Probe, "hop", setup.Hop)
		}
	}
	str.CancelRead(wire.CodeCancel)
}

func (p *Publisher) handleBidi(str *h3wt.Stream) {
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	br := bufio.NewReaderSize(str, streamBufferSize)
	typ, err := wire.ReadStreamType(br)
	if err != nil {
		cancelStream(str, wire.CodeCancel)
		return
	}
	switch {
	case typ == wire.StreamAnnounce:
		p.serveAnnounce(str, br)
	case typ == wire.StreamSubscribe:
		p.serveSubscribe(str, br)
	case typ == wire.StreamTrack && p.version.HasTrackStream():
		p.serveTrackInfo(str, br)
	case typ == wire.StreamFetch && p.version.HasTrackStream():
		p.serveFetch(str, br)
	case typ == wire.StreamGoaway && p.version.HasGoaway():
		p.endOnGoaway(str, br)
	case typ == wire.StreamProbe:
		answerProbe(str)
	default:
		p.log.Debug("unexpected bidi stream", "type", typ)
		cancelStream(str, wire.CodeInternal)
	}
}

// announceStream is one announce request of the relay that covers our
// broadcast; it stays open for the session, carrying ANNOUNCE messages.
type announceStream struct {
	p      *Publisher
	str    *h3wt.Stream
	suffix string
	peer   chan struct{} // closed when the relay closed its side

	mu     sync.Mutex
	active bool
	done   bool
	id     uint64 // lite-06: the announce id our active START took
	nextID uint64 // lite-06: the id the stream's next START takes
}

// serveAnnounce answers an ANNOUNCE_PLEASE. The stream stays open while the
// session lives: the relay takes its end as "every broadcast is gone", and a
// reset as an error that ends the session.
func (p *Publisher) serveAnnounce(str *h3wt.Stream, br *bufio.Reader) {
	please, err := wire.ReadAnnouncePlease(br, p.version)
	if err != nil {
		p.log.Warn("bad announce request from relay", "err", err)
		_ = str.Close()
		str.CancelRead(wire.CodeCancel)
		return
	}
	_ = str.SetReadDeadline(time.Time{})
	suffix, covered := trimPathPrefix(p.broadcast, please.Prefix)
	a := &announceStream{p: p, str: str, suffix: suffix, peer: make(chan struct{})}
	p.mu.Lock()
	active := covered && p.announced
	if covered {
		p.announces[a] = struct{}{}
	}
	p.mu.Unlock()
	if p.version.HasAnnounceOK() {
		var n uint64
		if active {
			n = 1
		}
		b, _ := wire.AnnounceOK{Origin: p.hop, Active: n}.Append(nil, p.version)
		if _, err := str.Write(b); err != nil {
			p.log.Debug("answer announce request", "err", err)
		}
	}
	if active {
		a.send(wire.AnnounceActive)
	}
	p.log.Debug("relay asked for announcements", "prefix", please.Prefix, "covers_us", covered)
	// Anything more the relay sends is a protocol error; its FIN or reset ends
	// the request. Either way we stop announcing there.
	_, _ = io.Copy(io.Discard, io.LimitReader(br, wire.MaxMessageSize))
	close(a.peer)
	p.mu.Lock()
	delete(p.announces, a)
	p.mu.Unlock()
	a.finish()
	str.CancelRead(wire.CodeCancel)
}

// send writes an ANNOUNCE for our broadcast if it changes what the relay holds.
func (a *announceStream) send(status wire.AnnounceStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done || a.active == (status == wire.AnnounceActive) {
		return
	}
	a.active = status == wire.AnnounceActive
	// Hops stay empty from lite-05 on: the receiver appends our id from
	// ANNOUNCE_OK. A lite-06 START costs nothing (a live publisher's
	// production cost is 0) and takes the stream's next id, which END names.
	msg := wire.Announce{Status: status, Suffix: a.suffix, Hops: []uint64{}}
	switch {
	case a.p.version.HasAnnounceIDs() && a.active:
		a.id = a.nextID
		a.nextID++
	case a.p.version.HasAnnounceIDs():
		msg = wire.Announce{Status: status, ID: a.id}
	case a.active && !a.p.version.HasAnnounceOK():
		// Before lite-05 the sender appends its own id to the chain (lite-03
		// carries only the count).
		msg.Hops = []uint64{a.p.hop}
	}
	b, err := msg.Append(nil, a.p.version)
	if err == nil {
		_, err = a.str.Write(b)
	}
	if err != nil {
		a.p.log.Debug("write announce", "err", err)
	}
}

func (a *announceStream) finish() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.done {
		a.done = true
		_ = a.str.Close()
	}
}

// waitPeer waits for the relay to close its side after our FIN.
func (a *announceStream) waitPeer(ctx context.Context) {
	select {
	case <-a.peer:
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

// trimPathPrefix reports whether prefix covers path on segment boundaries, as
// moq-net's Path::strip_prefix does, and the suffix that remains.
func trimPathPrefix(path, prefix string) (string, bool) {
	prefix = strings.Trim(prefix, "/")
	switch {
	case prefix == "":
		return path, true
	case path == prefix:
		return "", true
	case strings.HasPrefix(path, prefix+"/"):
		return path[len(prefix)+1:], true
	}
	return "", false
}

// serveTrackInfo answers a TRACK request (lite-05 on) with the track's TRACK_INFO,
// or resets the stream with NotFound.
func (p *Publisher) serveTrackInfo(str *h3wt.Stream, br *bufio.Reader) {
	req, err := wire.ReadTrack(br, p.version)
	if err != nil {
		p.log.Warn("bad track request", "err", err)
		cancelStream(str, wire.CodeCancel)
		return
	}
	t := p.track(req.Broadcast, req.Track)
	if t == nil {
		p.log.Debug("track request for an unknown track", "broadcast", req.Broadcast, "track", req.Track)
		cancelStream(str, wire.CodeNotFound)
		return
	}
	b, err := t.wireInfo().Append(nil, p.version)
	if err == nil {
		_, err = str.Write(b)
	}
	if err != nil {
		p.log.Debug("answer track request", "track", t.name, "err", err)
		cancelStream(str, wire.CodeInternal)
		return
	}
	_ = str.Close()
	str.CancelRead(wire.CodeCancel)
}

// serveFetch answers a FETCH (lite-05 and later) for the track's latest group,
// the only one a publisher without a cache still holds; any other group is
// NotFound. A lite-06 fetch gets the frames it bounds; the answer has no
// header, so a start frame past the group's end is NotFound too.
func (p *Publisher) serveFetch(str *h3wt.Stream, br *bufio.Reader) {
	req, err := wire.ReadFetch(br, p.version)
	if err != nil {
		p.log.Warn("bad fetch request", "err", err)
		cancelStream(str, wire.CodeCancel)
		return
	}
	var g *OutGroup
	if t := p.track(req.Broadcast, req.Track); t != nil {
		g = t.latestGroup()
	}
	if g == nil || g.Sequence != req.Group || req.StartFrame > uint64(len(g.Frames)) {
		cancelStream(str, wire.CodeNotFound)
		return
	}
	str.CancelRead(wire.CodeCancel)
	stop := context.AfterFunc(p.ctx, func() { str.CancelWrite(wire.CodeSessionClosed) })
	defer stop()
	if err := writeFrames(str, frameRange(g.Frames, req.StartFrame, req.EndFrame), p.version); err != nil {
		p.log.Debug("fetch", "group", g.Sequence, "err", err)
		str.CancelWrite(wire.CodeCancel)
		return
	}
	_ = str.Close()
}

// frameRange is frames first to last (inclusive; unset: to the end), clamped
// to the frames there are.
func frameRange(frames []OutFrame, first uint64, last wire.OptionalFrame) []OutFrame {
	n := uint64(len(frames))
	end := n
	if last.Set && last.Index < n {
		end = last.Index + 1
	}
	return frames[min(first, end):end]
}

// writeFrames writes frames in group-stream format; timestamps are deltas
// from the previous frame written, from 0.
func writeFrames(w io.Writer, frames []OutFrame, v wire.Version) error {
	var prev uint64
	var hdr []byte
	for _, f := range frames {
		var err error
		hdr, err = wire.FrameHeader{Size: uint64(len(f.Payload)), Timestamp: f.Timestamp}.Append(hdr[:0], v, prev)
		if err != nil {
			return err
		}
		prev = f.Timestamp
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		if _, err := w.Write(f.Payload); err != nil {
			return err
		}
	}
	return nil
}
