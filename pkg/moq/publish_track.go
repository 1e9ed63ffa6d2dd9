package moq

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// maxInFlight bounds the group streams one subscription may have open at a
// time. WriteGroup waits for room, so a publisher is paced by its slowest
// subscriber (for a relay: by what the relay accepts) instead of opening
// streams without limit.
const maxInFlight = 64

// endAckTimeout bounds how long an ended subscription waits for the relay to
// close its side, its sign that the last groups arrived.
const endAckTimeout = 2 * time.Second

// Track is one published track. Its groups are written with WriteGroup, in
// publishing order; Close ends it.
type Track struct {
	p    *Publisher
	name string
	info TrackInfo

	mu      sync.Mutex
	latest  *OutGroup
	next    uint64 // one past the highest sequence written: the end of the track
	subs    map[*pubSubscription]struct{}
	closed  bool
	written int64
}

// ErrTrackClosed: WriteGroup after Close.
var ErrTrackClosed = errors.New("moq: track closed")

func (t *Track) wireInfo() wire.TrackInfo {
	return wire.TrackInfo{Priority: t.info.Priority, MaxLatencyMs: uint64(t.info.MaxLatency / time.Millisecond),
		Timescale: t.info.Timescale}
}

func (t *Track) latestGroup() *OutGroup {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.latest
}

func (t *Track) subscribers() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.subs)
}

// WriteGroup publishes a group: every current subscription gets it on a new
// stream, and it becomes the group a new subscription starts with. It returns
// once each stream is under way; it waits while a subscription already has
// maxInFlight groups in flight, until ctx ends. The frames must not be
// modified afterwards.
func (t *Track) WriteGroup(ctx context.Context, g OutGroup) error {
	if len(g.Frames) > wire.MaxGroupFrames {
		return fmt.Errorf("moq: track %q group %d: %d frames: %w", t.name, g.Sequence, len(g.Frames), ErrTooLarge)
	}
	for _, f := range g.Frames {
		if len(f.Payload) > wire.MaxFrameSize {
			return fmt.Errorf("moq: track %q group %d: frame of %d bytes: %w", t.name, g.Sequence, len(f.Payload), ErrTooLarge)
		}
	}
	if g.Sequence >= wire.MaxVarint {
		return fmt.Errorf("moq: track %q: group sequence %d: %w", t.name, g.Sequence, ErrTooLarge)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("moq: track %q: %w", t.name, ErrTrackClosed)
	}
	t.latest = &g
	t.next = max(t.next, g.Sequence+1)
	t.written++
	subs := make([]*pubSubscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	// Streams of the higher-priority subscription open first (quic-go has no
	// per-stream send priority, so the order of opening is what we control).
	slices.SortFunc(subs, func(a, b *pubSubscription) int { return cmp.Compare(b.priority(), a.priority()) })
	for _, s := range subs {
		if err := s.offer(ctx, &g); err != nil {
			return err
		}
	}
	return nil
}

// Close ends the track: each subscription gets its end (SUBSCRIBE_END,
// lite-05 on) and, once its groups are written, a FIN. Later
// subscriptions end at once.
func (t *Track) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	subs := make([]*pubSubscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	end := t.next
	t.mu.Unlock()
	for _, s := range subs {
		t.p.goSafe(func() { s.finish(end) })
	}
}

// waitDrained waits until every subscription of the track is over.
func (t *Track) waitDrained(ctx context.Context) {
	t.mu.Lock()
	subs := make([]*pubSubscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	for _, s := range subs {
		select {
		case <-s.gone:
		case <-ctx.Done():
			return
		}
	}
}

func (t *Track) remove(s *pubSubscription) {
	t.mu.Lock()
	delete(t.subs, s)
	t.mu.Unlock()
}

// pubSubscription is one SUBSCRIBE of the relay to one of our tracks.
type pubSubscription struct {
	t   *Track
	id  uint64
	str *h3wt.Stream

	ctx    context.Context // cancelled when the subscriber leaves
	cancel context.CancelFunc
	slots  chan struct{} // one token per group stream in flight
	wg     sync.WaitGroup
	gone   chan struct{} // closed when the subscription is over
	peer   chan struct{} // closed when the relay closed its side

	mu         sync.Mutex // guards the fields below and writes on str
	prio       uint8
	start      wire.OptionalGroup
	end        wire.OptionalGroup
	startFrame uint64             // lite-06: first frame of the start group
	endFrame   wire.OptionalFrame // lite-06: last frame of the end group
	sentNext   uint64             // one past the highest group sent: the lowest valid end
	started    bool
	finished   bool
}

func (s *pubSubscription) priority() uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prio
}

// serveSubscribe serves one SUBSCRIBE stream until the relay or the track
// ends it.
func (p *Publisher) serveSubscribe(str *h3wt.Stream, br *bufio.Reader) {
	req, err := wire.ReadSubscribe(br, p.version)
	if err != nil {
		p.log.Warn("bad subscribe request", "err", err)
		cancelStream(str, wire.CodeCancel)
		return
	}
	_ = str.SetReadDeadline(time.Time{})
	t := p.track(req.Broadcast, req.Track)
	if t == nil {
		p.log.Debug("subscription to an unknown track", "broadcast", req.Broadcast, "track", req.Track)
		cancelStream(str, wire.CodeNotFound)
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	s := &pubSubscription{t: t, id: req.ID, str: str, ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, maxInFlight), gone: make(chan struct{}), peer: make(chan struct{}),
		prio: req.Priority, start: req.Start, end: req.End, startFrame: req.StartFrame, endFrame: req.EndFrame}
	defer cancel()
	p.log.Info("relay subscribed", "track", t.name, "id", req.ID, "priority", req.Priority,
		"start", optGroupString(req.Start), "end", optGroupString(req.End),
		"start_frame", req.StartFrame, "end_frame", optFrameString(req.EndFrame))
	if !p.version.HasTrackStream() {
		// Lite-03/04 acknowledge; lite-05 on accept implicitly (SUBSCRIBE_START).
		ok := wire.SubscribeResponse{Kind: wire.ResponseOK, OK: wire.SubscribeOK{Priority: req.Priority}}
		if err := s.writeControl(ok); err != nil {
			p.log.Debug("subscribe ok", "track", t.name, "err", err)
			cancelStream(str, wire.CodeCancel)
			return
		}
	}

	t.mu.Lock()
	if t.closed {
		end := t.next
		t.mu.Unlock()
		close(s.peer) // nothing was sent: no need to wait for the relay
		s.finish(end)
		str.CancelRead(wire.CodeCancel)
		return
	}
	t.subs[s] = struct{}{}
	if t.latest != nil {
		// A new subscription has no stream in flight: this never waits.
		_ = s.offer(ctx, t.latest)
	}
	t.mu.Unlock()
	p.subscribed()

	for {
		upd, err := wire.ReadSubscribeUpdate(br, p.version)
		if err != nil {
			s.leave(err)
			return
		}
		p.log.Debug("subscription updated", "track", t.name, "id", s.id, "priority", upd.Priority,
			"start", optGroupString(upd.Start), "end", optGroupString(upd.End),
			"start_frame", upd.StartFrame, "end_frame", optFrameString(upd.EndFrame))
		s.update(upd)
	}
}

func optGroupString(g wire.OptionalGroup) string {
	if !g.Set {
		return "none"
	}
	return fmt.Sprint(g.Seq)
}

func optFrameString(f wire.OptionalFrame) string {
	if !f.Set {
		return "none"
	}
	return fmt.Sprint(f.Index)
}

func (s *pubSubscription) writeControl(m wire.SubscribeResponse) error {
	b, err := m.Append(nil, s.t.p.version)
	if err != nil {
		return err
	}
	_, err = s.str.Write(b)
	return err
}

// offer sends g to this subscription if it falls in its range, waiting for a
// free stream slot. Lite-06 frame bounds cut the start and end group: the
// start group from its start frame, the end group through its end frame.
func (s *pubSubscription) offer(ctx context.Context, g *OutGroup) error {
	s.mu.Lock()
	if s.finished || (s.start.Set && g.Sequence < s.start.Seq) || (s.end.Set && g.Sequence > s.end.Seq) {
		s.mu.Unlock()
		return nil
	}
	if !s.started {
		s.started = true
		if s.t.p.version.HasTrackStream() {
			if err := s.writeControl(wire.SubscribeResponse{Kind: wire.ResponseStart, Group: g.Sequence}); err != nil {
				s.t.p.log.Debug("subscribe start", "track", s.t.name, "err", err)
			}
		}
	}
	last := s.end.Set && g.Sequence >= s.end.Seq
	// SUBSCRIBE_END below a group already sent contradicts it (lite-06 relays
	// drop the subscription as a protocol violation).
	s.sentNext = max(s.sentNext, g.Sequence+1)
	end := s.sentNext
	var first uint64
	if s.start.Set && g.Sequence == s.start.Seq {
		first = min(s.startFrame, uint64(len(g.Frames)))
	}
	lastFrame := wire.OptionalFrame{}
	if s.end.Set && g.Sequence == s.end.Seq {
		lastFrame = s.endFrame
	}
	frames := frameRange(g.Frames, first, lastFrame)
	s.wg.Add(1) // under mu, so finish never waits before this group is counted
	s.mu.Unlock()

	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		s.wg.Done()
		return nil
	case <-ctx.Done():
		s.wg.Done()
		return ctx.Err()
	}
	s.t.p.goSafe(func() {
		defer s.wg.Done()
		defer func() { <-s.slots }()
		s.sendGroup(g.Sequence, first, frames)
	})
	if last {
		s.t.p.goSafe(func() { s.finish(end) })
	}
	return nil
}

// sendGroup writes one group's frames, the first of which has index first,
// on its own uni stream and FINs it. A subscriber that leaves, or a relay that
// stops the stream, abandons the group.
func (s *pubSubscription) sendGroup(seq, first uint64, frames []OutFrame) {
	str, err := s.t.p.wt.OpenUniStreamSync(s.ctx)
	if err != nil {
		if s.ctx.Err() == nil {
			s.t.p.log.Debug("open group stream", "track", s.t.name, "group", seq, "err", err)
		}
		return
	}
	stop := context.AfterFunc(s.ctx, func() { str.CancelWrite(wire.CodeCancel) })
	defer stop()
	b := wire.AppendStreamType(nil, wire.StreamGroup)
	b, err = wire.Group{SubscribeID: s.id, Sequence: seq, FrameStart: first}.Append(b, s.t.p.version)
	if err == nil {
		_, err = str.Write(b)
	}
	if err == nil {
		err = writeFrames(str, frames, s.t.p.version)
	}
	if err != nil {
		if s.ctx.Err() == nil {
			s.t.p.log.Debug("group not sent", "track", s.t.name, "group", seq, "err", err)
		}
		str.CancelWrite(wire.CodeCancel)
		return
	}
	_ = str.Close()
}

// update applies a SUBSCRIBE_UPDATE: new priority and range.
func (s *pubSubscription) update(u wire.SubscribeUpdate) {
	s.mu.Lock()
	s.prio, s.start, s.end, s.startFrame, s.endFrame = u.Priority, u.Start, u.End, u.StartFrame, u.EndFrame
	end := max(u.End.Seq+1, s.sentNext)
	s.mu.Unlock()
	if u.End.Set {
		if g := s.t.latestGroup(); g != nil && g.Sequence >= u.End.Seq {
			s.t.p.goSafe(func() { s.finish(end) })
		}
	}
}

// finish ends the subscription from our side: SUBSCRIBE_END (lite-05 on) with
// the exclusive end group, the groups in flight written out, then FIN.
func (s *pubSubscription) finish(end uint64) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	if s.t.p.version.HasTrackStream() {
		if err := s.writeControl(wire.SubscribeResponse{Kind: wire.ResponseEnd, Group: end}); err != nil {
			s.t.p.log.Debug("subscribe end", "track", s.t.name, "err", err)
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	_ = s.str.Close()
	// The relay closes its side once it has every group it is owed (moq-net
	// waits for the tail of the track). Closing the session before then
	// would discard group data still in flight, so Close waits for this.
	select {
	case <-s.peer:
	case <-s.ctx.Done():
	case <-time.After(endAckTimeout):
	}
	s.t.remove(s)
	s.t.p.log.Info("subscription ended", "track", s.t.name, "id", s.id, "end_group", end)
	close(s.gone)
}

// leave handles the subscriber closing its side: a FIN unsubscribes (we
// answer with our FIN), a reset aborts. Groups still in flight are cancelled.
func (s *pubSubscription) leave(err error) {
	close(s.peer)
	s.mu.Lock()
	ours := s.finished
	s.finished = true
	s.mu.Unlock()
	if ours {
		// We ended it; this is the relay's FIN in reply. The groups still in
		// flight are owed: wait for finish to write them before the caller
		// cancels the subscription's context.
		s.str.CancelRead(wire.CodeCancel)
		<-s.gone
		return
	}
	s.cancel()
	s.wg.Wait()
	if errors.Is(err, io.EOF) {
		_ = s.str.Close()
		s.str.CancelRead(wire.CodeCancel)
	} else {
		if code, ok := resetCode(err); !ok || code != wire.CodeCancel {
			s.t.p.log.Debug("subscription aborted", "track", s.t.name, "id", s.id, "err", err)
		}
		cancelStream(s.str, wire.CodeCancel)
	}
	s.t.remove(s)
	s.t.p.log.Info("relay unsubscribed", "track", s.t.name, "id", s.id)
	close(s.gone)
}
