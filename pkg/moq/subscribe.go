package moq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// groupQueue is how many received groups a subscription holds for a consumer
// that has not called NextGroup yet. When it is full, the stream of the next
// group is simply not read (backpressure): QUIC flow control then stalls the
// relay, which drops groups the subscriber is too slow for by resetting their
// streams (Old/TooFarBehind), and the consumer sees those as ErrGroupReset.
// Beyond maxWaiting more, groups are dropped on our side (logged; the consumer
// sees a gap in the sequence).
const groupQueue = 16

// maxWaiting bounds the groups of one subscription waiting for room in its
// queue. Each holds a stream, its buffer and a goroutine, and a relay can open
// group streams far faster than they are consumed (QUIC grants new streams as
// complete ones are read), so beyond it the newest group is dropped and the
// consumer sees a gap in the sequence, rather than memory growing unbounded.
const maxWaiting = 64

// endGrace is how long after the relay ends a subscription its last group
// streams may still arrive and be delivered.
const endGrace = 500 * time.Millisecond

type subscription struct {
	s         *session
	id        uint64
	name      string // broadcast/track, for errors and logs
	timescale uint64
	str       *h3wt.Stream

	queue    chan *group
	accepted chan error    // first response, once
	started  chan uint64   // SUBSCRIBE_START's group, once (lite-05/06)
	ended    chan struct{} // closed when the relay ended the subscription
	endErr   error         // why, set before ended is closed
	closed   chan struct{} // closed by Close
	once     sync.Once
	endOnce  sync.Once
	waiting  atomic.Int64 // groups blocked in deliver
	dropped  atomic.Int64 // groups dropped because maxWaiting were waiting
}

// Subscribe implements Session.
func (s *session) Subscribe(ctx context.Context, broadcast, track string) (Subscription, error) {
	return asSubscription(s.subscribe(ctx, wire.Subscribe{Broadcast: broadcast, Track: track}))
}

// asSubscription keeps a failed subscribe from becoming a non-nil interface.
func asSubscription(sub *subscription, err error) (Subscription, error) {
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// SubscribeRange implements Backfiller. Every version carries a start and an
// end group; from lite-06 the start is a floor and MaxAge is what reaches back
// into the cache, so both are sent. A floor of group 0 is no floor on lite-06,
// which is what a range from 0 means anyway.
func (s *session) SubscribeRange(ctx context.Context, broadcast, track string, r Range) (Subscription, error) {
	if r.Last < r.First || r.MaxAge <= 0 {
		return nil, fmt.Errorf("moq: subscribe %q: invalid range %d..%d (max age %s)", broadcast+"/"+track, r.First, r.Last, r.MaxAge)
	}
	return asSubscription(s.subscribe(ctx, wire.Subscribe{
		Broadcast:    broadcast,
		Track:        track,
		MaxLatencyMs: uint64(r.MaxAge.Milliseconds()),
		Start:        wire.OptionalGroup{Seq: r.First, Set: true},
		End:          wire.OptionalGroup{Seq: r.Last, Set: true},
	}))
}

// SubscribeRecent implements Backfiller. From lite-06 the relay resolves the
// start from the max age alone when no floor is named, and reports it in
// SUBSCRIBE_START; earlier versions start at the latest group or wait at an
// explicit start, so they are not asked.
func (s *session) SubscribeRecent(ctx context.Context, broadcast, track string, maxAge time.Duration) (Subscription, uint64, error) {
	name := broadcast + "/" + track
	if !s.version.HasFrameBounds() {
		return nil, 0, fmt.Errorf("moq: subscribe %q from the relay's cache on %s: %w", name, s.version, errors.ErrUnsupported)
	}
	if maxAge <= 0 {
		return nil, 0, fmt.Errorf("moq: subscribe %q: max age %s", name, maxAge)
	}
	sub, err := s.subscribe(ctx, wire.Subscribe{Broadcast: broadcast, Track: track, MaxLatencyMs: uint64(maxAge.Milliseconds())})
	if err != nil {
		return nil, 0, err
	}
	select {
	case start := <-sub.started:
		return sub, start, nil
	case <-sub.ended:
		sub.Close()
		return nil, 0, fmt.Errorf("moq: subscribe %q: ended before it started: %w", name, sub.endErr)
	case <-ctx.Done():
		sub.Close()
		return nil, 0, ctx.Err()
	case <-s.ctx.Done():
		sub.Close()
		return nil, 0, s.Err()
	}
}

// subscribe sends m (its ID assigned here) and returns the subscription.
func (s *session) subscribe(ctx context.Context, m wire.Subscribe) (*subscription, error) {
	broadcast, track := m.Broadcast, m.Track
	name := broadcast + "/" + track
	if !utf8.ValidString(broadcast) || !utf8.ValidString(track) || len(track) > wire.MaxStringLength {
		return nil, fmt.Errorf("moq: subscribe %q: invalid broadcast or track name", name)
	}
	var timescale uint64
	if s.version.HasTrackStream() {
		info, err := s.trackInfo(ctx, broadcast, track)
		if err != nil {
			return nil, err
		}
		timescale = info.Timescale
	}

	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.mu.Unlock()
	m.ID = id
	b := wire.AppendStreamType(nil, wire.StreamSubscribe)
	b, err := m.Append(b, s.version)
	if err != nil {
		return nil, fmt.Errorf("moq: subscribe %q: %w", name, err)
	}
	sub := &subscription{s: s, id: id, name: name, timescale: timescale,
		queue: make(chan *group, groupQueue), accepted: make(chan error, 1), started: make(chan uint64, 1),
		ended: make(chan struct{}), closed: make(chan struct{})}
	// Registered before SUBSCRIBE goes out: a group stream can overtake the reply.
	s.mu.Lock()
	s.subs[id] = sub
	s.mu.Unlock()

	str, br, err := s.openControl(ctx, b)
	if err != nil {
		sub.unregister()
		return nil, fmt.Errorf("moq: subscribe %q: %w", name, err)
	}
	sub.str = str
	s.goSafe(func() { sub.readResponses(br) })
	if s.version.HasTrackStream() {
		// Lite-05 and later have no SUBSCRIBE_OK: TRACK_INFO proved the track exists,
		// and a later refusal arrives as a reset through NextGroup.
		return sub, nil
	}
	select {
	case err := <-sub.accepted:
		if err != nil {
			sub.Close()
			return nil, err
		}
		return sub, nil
	case <-ctx.Done():
		sub.Close()
		return nil, ctx.Err()
	case <-s.ctx.Done():
		sub.Close()
		return nil, s.Err()
	}
}

// trackInfo asks for a track's properties on a lite-05/06 TRACK stream. The relay
// answers once and FINs; FINning before the answer would cancel it.
func (s *session) trackInfo(ctx context.Context, broadcast, track string) (wire.TrackInfo, error) {
	name := broadcast + "/" + track
	b := wire.AppendStreamType(nil, wire.StreamTrack)
	b, err := wire.Track{Broadcast: broadcast, Track: track}.Append(b, s.version)
	if err != nil {
		return wire.TrackInfo{}, fmt.Errorf("moq: track info %q: %w", name, err)
	}
	str, br, err := s.openControl(ctx, b)
	if err != nil {
		return wire.TrackInfo{}, fmt.Errorf("moq: track info %q: %w", name, err)
	}
	defer cancelStream(str, wire.CodeCancel)
	var info wire.TrackInfo
	err = s.readCtx(ctx, str, func() error {
		var err error
		info, err = wire.ReadTrackInfo(br, s.version)
		return err
	})
	if err != nil {
		return info, requestError("track info", name, err)
	}
	_ = str.Close()
	return info, nil
}

// requestError maps a failed control request to an error, with ErrNotFound for
// the codes moq-relay resets with when the broadcast or track does not exist.
func requestError(what, name string, err error) error {
	if code, ok := resetCode(err); ok {
		if code == wire.CodeNotFound || code == wire.CodeUnroutable {
			return fmt.Errorf("%w: %s %q (relay code %#x)", ErrNotFound, what, name, code)
		}
		return fmt.Errorf("moq: %s %q: relay reset the stream with code %#x", what, name, code)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("moq: %s %q: relay closed the stream without an answer", what, name)
	}
	return fmt.Errorf("moq: %s %q: %w", what, name, err)
}

// readResponses reads the relay's side of the subscribe stream until it ends.
func (sub *subscription) readResponses(br *bufio.Reader) {
	v := sub.s.version
	for {
		resp, err := wire.ReadSubscribeResponse(br, v)
		if err == io.EOF {
			sub.accept(fmt.Errorf("moq: subscribe %q: relay ended the subscription before accepting it", sub.name))
			// QUIC does not order streams: the last groups may still be in flight
			// when the FIN arrives. Give them a moment before reporting the end.
			select {
			case <-time.After(endGrace):
			case <-sub.closed:
			case <-sub.s.ctx.Done():
			}
			sub.end(io.EOF)
			return
		}
		if err != nil {
			err = requestError("subscribe", sub.name, err)
			sub.accept(err)
			sub.end(err)
			return
		}
		switch resp.Kind {
		case wire.ResponseOK:
			sub.accept(nil)
		case wire.ResponseStart:
			sub.s.log.Debug("subscription started", "track", sub.name, "group", resp.Group)
			select {
			case sub.started <- resp.Group:
			default: // only the first counts
			}
		case wire.ResponseEnd:
			sub.s.log.Debug("subscription will end", "track", sub.name, "end_group", resp.Group)
		case wire.ResponseDrop:
			sub.s.log.Warn("relay dropped groups", "track", sub.name,
				"first", resp.Drop.Start, "last", resp.Drop.End, "code", resp.Drop.Error)
		}
	}
}

func (sub *subscription) accept(err error) {
	select {
	case sub.accepted <- err:
	default: // only the first response counts
	}
}

func (sub *subscription) end(err error) {
	sub.endOnce.Do(func() {
		sub.endErr = err
		close(sub.ended)
	})
}

// deliver hands a group to the consumer, waiting (backpressure) while the
// queue is full, unless maxWaiting groups wait already.
func (sub *subscription) deliver(g *group) {
	select {
	case sub.queue <- g:
		return
	default:
	}
	if sub.waiting.Add(1) > maxWaiting {
		sub.waiting.Add(-1)
		g.Close()
		if n := sub.dropped.Add(1); n&(n-1) == 0 { // 1, 2, 4, … : a flood logs little
			sub.s.log.Warn("groups arrive faster than they are consumed; dropping", "track", sub.name, "dropped", n)
		}
		return
	}
	defer sub.waiting.Add(-1)
	select {
	case sub.queue <- g:
	case <-sub.closed:
		g.Close()
	case <-sub.s.ctx.Done():
		g.Close()
	}
}

// NextGroup implements Subscription.
func (sub *subscription) NextGroup(ctx context.Context) (Group, error) {
	select {
	case g := <-sub.queue:
		return g, nil
	case <-sub.ended:
		// Groups already received come before the end.
		select {
		case g := <-sub.queue:
			return g, nil
		default:
			return nil, sub.endErr
		}
	case <-sub.closed:
		return nil, fmt.Errorf("moq: subscription %q closed", sub.name)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-sub.s.ctx.Done():
		return nil, sub.s.Err()
	}
}

func (sub *subscription) unregister() {
	sub.s.mu.Lock()
	delete(sub.s.subs, sub.id)
	sub.s.mu.Unlock()
}

// Close unsubscribes: FIN our side, stop reading theirs, and cancel every
// group not yet handed out.
func (sub *subscription) Close() error {
	sub.once.Do(func() {
		sub.unregister()
		close(sub.closed)
		if sub.str != nil {
			_ = sub.str.Close()
			sub.str.CancelRead(wire.CodeCancel)
		}
		for {
			select {
			case g := <-sub.queue:
				g.Close()
			default:
				return
			}
		}
	})
	return nil
}
