// Package moq is the subscriber side of Media over QUIC: it dials a relay over
// WebTransport or raw QUIC, lists broadcasts and receives the groups of tracks. Its
// publisher side (DialPublisher, publish.go) announces a broadcast and serves
// the relay's subscriptions.
//
// The archiver depends only on the Session interface below, so that another wire
// protocol (IETF moq-transport draft-14 for relays that do not speak moq-lite) can
// be added as a second implementation. The moq-lite codec lives apart, in
// package moq/wire.
package moq

import (
	"context"
	"io"
	"time"
)

// Session is one subscriber connection to a relay.
type Session interface {
	// Version is the negotiated protocol, e.g. "moq-lite-04".
	Version() string
	// Announced streams announcements of broadcasts whose path starts with prefix
	// ("" for all), relative to the session root (the URL path).
	Announced(ctx context.Context, prefix string) (Announcements, error)
	// Subscribe subscribes to a track of a broadcast, starting with the relay's
	// latest group. An absent broadcast or track yields an error satisfying
	// errors.Is(err, ErrNotFound).
	Subscribe(ctx context.Context, broadcast, track string) (Subscription, error)
	// Done is closed when the session has ended; Err then says why.
	Done() <-chan struct{}
	Err() error
	// Close ends the session gracefully.
	Close() error
}

// Backfiller is implemented by sessions that can subscribe to past groups the
// relay still caches. The archiver uses it, when the session offers it, to take
// the groups it missed while disconnected instead of recording them as gaps.
type Backfiller interface {
	// SubscribeRange subscribes to the groups First..Last (inclusive) of a
	// track, as far as the relay still holds them; groups older than MaxAge are
	// not asked for. The subscription ends with io.EOF after Last; groups the
	// relay no longer has never arrive.
	SubscribeRange(ctx context.Context, broadcast, track string, r Range) (Subscription, error)
	// SubscribeRecent subscribes to a track starting with the oldest group the
	// relay holds that is at most maxAge old, then live, and returns the group
	// the relay starts with (moq-lite-06: no floor, so it never waits for a
	// sequence the publisher has not reached). Sessions that cannot ask for it
	// return an error satisfying errors.Is(err, errors.ErrUnsupported).
	SubscribeRecent(ctx context.Context, broadcast, track string, maxAge time.Duration) (Subscription, uint64, error)
}

// Range is a span of past groups of a track.
type Range struct {
	First, Last uint64
	MaxAge      time.Duration
}

// Announcement reports a broadcast appearing (Active) or going away.
type Announcement struct {
	Broadcast string
	Active    bool
}

// Announcements is a live stream of announcements: first the current set, then
// changes.
type Announcements interface {
	// Next blocks until the next announcement. It returns an error when the
	// announce stream or the session ends.
	Next(ctx context.Context) (Announcement, error)
	Close() error
}

// Subscription is one subscribed track.
type Subscription interface {
	// NextGroup blocks until the relay opens the next group of this track. Groups
	// may arrive out of order. io.EOF means the track ended cleanly.
	NextGroup(ctx context.Context) (Group, error)
	// Close unsubscribes.
	Close() error
}

// Group is one MoQ group: an ordered sequence of frames on its own stream.
type Group interface {
	Sequence() uint64
	// NextFrame returns the next frame. Its Body must be read to EOF (or the
	// group closed) before NextFrame is called again. io.EOF means the group is
	// complete; an error satisfying errors.Is(err, ErrGroupReset) means the relay
	// dropped or truncated it.
	NextFrame() (Frame, error)
	// Close abandons the rest of the group.
	Close() error
}

// Frame is one frame of a group.
type Frame struct {
	Size int64
	// Timestamp is the presentation time in the track's Timescale units, sent
	// by moq-lite-05 and later (HasTimestamp).
	Timestamp    int64
	Timescale    uint64
	HasTimestamp bool
	Body         io.Reader
}
