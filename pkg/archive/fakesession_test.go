package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/every-channel/ec-node/pkg/moq"
)

// fakeRelay is an in-memory stand-in for a relay session, used to drive the
// worker through edge cases in unit tests. It proves nothing about interop:
// the e2e tests run the worker against the real moq-relay.
type fakeRelay struct {
	mu        sync.Mutex
	announced bool
	tracks    map[string]chan fakeGroup // groups to deliver per track
	sessions  int
	done      chan struct{} // closed to end the current session
	subs      map[string]int
	// subscribeErr, if set, fails every Subscribe (as a relay granting no
	// request ids does).
	subscribeErr error
	// negotiation, if set, is what the sessions report as moq.Negotiator.
	negotiation *moq.Negotiation
}

type fakeGroup struct {
	seq    uint64
	frames [][]byte
	reset  bool // the stream is reset after the frames
	huge   bool // the next frame header claims more than the limits allow
	broken bool // the stream breaks after the frames, as when the session dies
	// timestamp, if not 0, is every frame's timestamp (timescale 1000).
	timestamp int64
}

func newFakeRelay(tracks ...string) *fakeRelay {
	r := &fakeRelay{announced: true, tracks: map[string]chan fakeGroup{}, subs: map[string]int{}}
	for _, t := range tracks {
		r.tracks[t] = make(chan fakeGroup, 64)
	}
	return r
}

func (r *fakeRelay) dial(ctx context.Context, url string, _ moq.DialOptions) (moq.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions++
	r.done = make(chan struct{})
	s := &fakeSession{relay: r, done: r.done}
	if r.negotiation != nil {
		return negotiatingSession{s, *r.negotiation}, nil
	}
	return s, nil
}

// negotiatingSession is a stand-in session that reports a negotiation.
type negotiatingSession struct {
	*fakeSession
	n moq.Negotiation
}

func (s negotiatingSession) Negotiation() moq.Negotiation { return s.n }

// drop ends the current session as a relay restart would.
func (r *fakeRelay) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		close(r.done)
		r.done = nil
	}
}

type fakeSession struct {
	relay *fakeRelay
	done  chan struct{}
}

func (s *fakeSession) Version() string       { return "fake" }
func (s *fakeSession) Done() <-chan struct{} { return s.done }
func (s *fakeSession) Err() error            { return errors.New("fake session dropped") }
func (s *fakeSession) Close() error          { return nil }

func (s *fakeSession) Announced(ctx context.Context, prefix string) (moq.Announcements, error) {
	return &fakeAnnouncements{s: s, prefix: prefix}, nil
}

func (s *fakeSession) Subscribe(ctx context.Context, broadcast, track string) (moq.Subscription, error) {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if s.relay.subscribeErr != nil {
		return nil, s.relay.subscribeErr
	}
	ch, ok := s.relay.tracks[track]
	if !ok {
		return nil, fmt.Errorf("subscribe %s: %w", track, moq.ErrNotFound)
	}
	s.relay.subs[track]++
	return &fakeSubscription{s: s, groups: ch}, nil
}

type fakeAnnouncements struct {
	s      *fakeSession
	prefix string
	sent   bool
}

func (a *fakeAnnouncements) Next(ctx context.Context) (moq.Announcement, error) {
	a.s.relay.mu.Lock()
	announced := a.s.relay.announced
	a.s.relay.mu.Unlock()
	if announced && !a.sent {
		a.sent = true
		return moq.Announcement{Broadcast: a.prefix, Active: true}, nil
	}
	select {
	case <-ctx.Done():
		return moq.Announcement{}, ctx.Err()
	case <-a.s.done:
		return moq.Announcement{}, io.EOF
	}
}

func (a *fakeAnnouncements) Close() error { return nil }

type fakeSubscription struct {
	s      *fakeSession
	groups chan fakeGroup
}

func (sub *fakeSubscription) NextGroup(ctx context.Context) (moq.Group, error) {
	select {
	case g := <-sub.groups:
		return &fakeGroupStream{g: g}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-sub.s.done:
		return nil, errors.New("fake session dropped")
	}
}

func (sub *fakeSubscription) Close() error { return nil }

type fakeGroupStream struct {
	g    fakeGroup
	next int
}

func (g *fakeGroupStream) Sequence() uint64 { return g.g.seq }
func (g *fakeGroupStream) Close() error     { return nil }

func (g *fakeGroupStream) NextFrame() (moq.Frame, error) {
	if g.next == len(g.g.frames) {
		if g.g.huge {
			return moq.Frame{}, fmt.Errorf("%w: frame of 1 TiB", moq.ErrTooLarge)
		}
		if g.g.reset {
			return moq.Frame{}, moq.ErrGroupReset
		}
		if g.g.broken {
			return moq.Frame{}, errors.New("fake connection lost")
		}
		return moq.Frame{}, io.EOF
	}
	f := g.g.frames[g.next]
	g.next++
	fr := moq.Frame{Size: int64(len(f)), Body: bytes.NewReader(f)}
	if g.g.timestamp != 0 {
		fr.HasTimestamp, fr.Timescale, fr.Timestamp = true, 1000, g.g.timestamp
	}
	return fr, nil
}
