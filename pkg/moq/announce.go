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
// ANNOUNCE_PLEASE for prefix. A broadcast announced again while active (the
// lite-05 restart) is reported as ended and then active again.
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
	active := map[string]bool{}
	for {
		msg, err := wire.ReadAnnounce(br, v)
		if err != nil {
			return a.streamError(err)
		}
		path := joinPath(a.prefix, msg.Suffix)
		var out []Announcement
		switch {
		case msg.Status == wire.AnnounceEnded:
			delete(active, path)
			out = []Announcement{{Broadcast: path}}
		case active[path]: // restart: a second active, or status restart
			out = []Announcement{{Broadcast: path}, {Broadcast: path, Active: true}}
		default:
			if len(active) >= maxAnnounced {
				return fmt.Errorf("moq: announce %q: more than %d active broadcasts", a.prefix, maxAnnounced)
			}
			active[path] = true
			out = []Announcement{{Broadcast: path, Active: true}}
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
