package moq

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// maxAnnounced bounds the broadcasts one announce stream may hold active, so a
// hostile relay cannot grow the set without limit.
const maxAnnounced = 1 << 16

type announcements struct {
	s      *session
	prefix string
	str    *h3wt.Stream

	items  chan Announcement
	done   chan struct{} // closed when the reader goroutine stops
	err    error         // why it stopped, set before done is closed
	closed chan struct{}
	once   sync.Once
}

// Announced implements Session: it opens an announce stream with
// ANNOUNCE_PLEASE for prefix. A broadcast restarted while active (lite-05: a
// second active or status restart; lite-06: ANNOUNCE_RESTART) is reported as
// ended and then active again.
func (s *session) Announced(ctx context.Context, prefix string) (Announcements, error) {
	prefix = strings.Trim(prefix, "/")
	b := wire.AppendStreamType(nil, wire.StreamAnnounce)
	b, err := wire.AnnouncePlease{Prefix: prefix}.Append(b, s.version)
	if err != nil {
		return nil, fmt.Errorf("moq: announce %q: %w", prefix, err)
	}
	str, br, err := s.openControl(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("moq: announce %q: %w", prefix, err)
	}
	a := &announcements{s: s, prefix: prefix, str: str,
		items: make(chan Announcement), done: make(chan struct{}), closed: make(chan struct{})}
	s.goSafe(func() {
		a.err = a.read(br)
		close(a.done)
	})
	return a, nil
}

func (a *announcements) read(br *bufio.Reader) error {
	v := a.s.version
	if v.HasAnnounceOK() {
		if _, err := wire.ReadAnnounceOK(br, v); err != nil {
			return a.streamError(err)
		}
	}
	var set announceSet
	for {
		msg, err := wire.ReadAnnounce(br, v)
		if err != nil {
			return a.streamError(err)
		}
		out, err := set.apply(msg, a.prefix, v)
		if err != nil {
			return fmt.Errorf("moq: announce %q: %w", a.prefix, err)
		}
		for _, ann := range out {
			select {
			case a.items <- ann:
			case <-a.closed:
				return fmt.Errorf("moq: announce %q: closed", a.prefix)
			case <-a.s.ctx.Done():
				return a.s.Err()
			}
		}
	}
}

// announceSet is what one announce stream has announced and not yet ended.
type announceSet struct {
	active map[string]bool
	// Lite-06: each ANNOUNCE_START takes the next id; END and RESTART name a
	// live one.
	byID   map[uint64]string
	nextID uint64
}

// apply records one announce message and returns what to report for it. Like
// moq-net, it refuses lite-06 messages naming an id that is not live, and a
// second START for an active path (lite-06 restarts by id).
func (set *announceSet) apply(msg wire.Announce, prefix string, v wire.Version) ([]Announcement, error) {
	if set.active == nil {
		set.active, set.byID = map[string]bool{}, map[uint64]string{}
	}
	path := joinPath(prefix, msg.Suffix)
	if v.HasAnnounceIDs() && msg.Status != wire.AnnounceActive {
		p, ok := set.byID[msg.ID]
		if !ok {
			return nil, fmt.Errorf("announce id %d is not live", msg.ID)
		}
		path = p
		if msg.Status == wire.AnnounceEnded {
			delete(set.byID, msg.ID)
		}
	}
	status := msg.Status
	if status == wire.AnnounceRestart && !v.HasAnnounceIDs() {
		status = wire.AnnounceActive // lite-05: the same as a second active
	}
	restart := []Announcement{{Broadcast: path}, {Broadcast: path, Active: true}}
	switch {
	case status == wire.AnnounceEnded:
		delete(set.active, path)
		return []Announcement{{Broadcast: path}}, nil
	case status == wire.AnnounceRestart:
		return restart, nil
	case set.active[path] && v.HasAnnounceIDs():
		return nil, fmt.Errorf("broadcast %q announced twice", path)
	case set.active[path]:
		return restart, nil
	}
	if len(set.active) >= maxAnnounced {
		return nil, fmt.Errorf("more than %d active broadcasts", maxAnnounced)
	}
	set.active[path] = true
	if v.HasAnnounceIDs() {
		set.byID[set.nextID] = path
		set.nextID++
	}
	return []Announcement{{Broadcast: path, Active: true}}, nil
}

func (a *announcements) streamError(err error) error {
	if err == io.EOF {
		return io.EOF // the relay finished this announce stream cleanly
	}
	return requestError("announce", a.prefix, err)
}

// Next implements Announcements.
func (a *announcements) Next(ctx context.Context) (Announcement, error) {
	select {
	case ann := <-a.items:
		return ann, nil
	case <-a.done:
		return Announcement{}, a.err
	case <-ctx.Done():
		return Announcement{}, ctx.Err()
	}
}

// Close implements Announcements.
func (a *announcements) Close() error {
	a.once.Do(func() {
		close(a.closed)
		_ = a.str.Close()
		a.str.CancelRead(wire.CodeCancel)
	})
	return nil
}

// joinPath joins a prefix and a suffix with one '/', as moq-net Path::join does.
func joinPath(prefix, suffix string) string {
	switch {
	case prefix == "":
		return suffix
	case suffix == "":
		return prefix
	}
	return prefix + "/" + suffix
}
