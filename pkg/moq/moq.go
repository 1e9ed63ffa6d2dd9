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
