package moq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/every-channel/ec-node/pkg/moq/wire"
	"github.com/every-channel/ec-node/pkg/moq/wire/ietf"
)

const (
	// maxNamespaces bounds the namespaces a relay may publish to one session:
	// each costs memory until it is withdrawn.
	maxNamespaces = 4096
	// maxAnnounceBacklog bounds the announcements waiting for a consumer that
	// does not call Next; beyond it the stream fails rather than grow.
	maxAnnounceBacklog = 4096
)

// ietfAnnouncements follows the namespaces the relay publishes under a
// prefix, after a SUBSCRIBE_NAMESPACE the relay accepted.
type ietfAnnouncements struct {
	s        *ietfSession
	id       uint64
	prefix   string
	accepted chan error // the SUBSCRIBE_NAMESPACE answer, once

	mu      sync.Mutex
	backlog []Announcement
	err     error         // sticky: why the stream ended
	ready   chan struct{} // signalled when backlog grows or err is set
	once    sync.Once
}

// under reports whether path is prefix or below it, on segment boundaries.
func under(path, prefix string) bool {
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Announced implements Session with SUBSCRIBE_NAMESPACE. A relay that refuses
// it (Cloudflare's does) yields an error, and the archiver subscribes directly.
func (s *ietfSession) Announced(ctx context.Context, prefix string) (Announcements, error) {
	ns, err := ietf.Namespace(prefix)
	if err != nil {
		return nil, fmt.Errorf("moq: announcements under %q: %w", prefix, err)
	}
	s.mu.Lock()
	id, err := s.allocRequest()
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("moq: announcements under %q: %w", prefix, err)
	}
	a := &ietfAnnouncements{s: s, id: id, prefix: prefix, accepted: make(chan error, 1), ready: make(chan struct{}, 1)}
	// First the current set, then changes: snapshot and register at once.
	for path := range s.published {
		if under(path, prefix) {
			a.backlog = append(a.backlog, Announcement{Broadcast: path, Active: true})
		}
	}
	s.watchers[id] = a
	s.mu.Unlock()
	b, err := ietf.SubscribeNamespace{RequestID: id, Prefix: ns}.Append(nil)
	if err == nil {
		err = s.send(b)
	}
	if err != nil {
		a.forget()
		return nil, fmt.Errorf("moq: announcements under %q: %w", prefix, err)
	}
	select {
	case err = <-a.accepted:
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.ctx.Done():
		err = s.Err()
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// push queues an announcement; a consumer too far behind ends the stream.
func (a *ietfAnnouncements) push(ann Announcement) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return
	}
	if len(a.backlog) >= maxAnnounceBacklog {
		a.err = fmt.Errorf("moq: announcements under %q: more than %d unread", a.prefix, maxAnnounceBacklog)
	} else {
		a.backlog = append(a.backlog, ann)
	}
	select {
	case a.ready <- struct{}{}:
	default:
	}
}

// Next implements Announcements.
func (a *ietfAnnouncements) Next(ctx context.Context) (Announcement, error) {
	for {
		a.mu.Lock()
		if len(a.backlog) > 0 {
			ann := a.backlog[0]
			a.backlog = a.backlog[1:]
			a.mu.Unlock()
			return ann, nil
		}
		err := a.err
		a.mu.Unlock()
		if err != nil {
			return Announcement{}, err
		}
		select {
		case <-a.ready:
		case <-ctx.Done():
			return Announcement{}, ctx.Err()
		case <-a.s.ctx.Done():
			return Announcement{}, a.s.Err()
		}
	}
}

func (a *ietfAnnouncements) forget() {
	a.s.mu.Lock()
	delete(a.s.watchers, a.id)
	a.s.mu.Unlock()
}

// Close implements Announcements with UNSUBSCRIBE_NAMESPACE.
func (a *ietfAnnouncements) Close() error {
	a.once.Do(func() {
		a.forget()
		a.mu.Lock()
		if a.err == nil {
			a.err = fmt.Errorf("moq: announcements under %q closed", a.prefix)
		}
		a.mu.Unlock()
		if a.s.ctx.Err() == nil {
			if b, err := ietf.AppendRequestID(nil, ietf.TypeUnsubscribeNamespace, a.id); err == nil {
				_ = a.s.send(b)
			}
		}
	})
	return nil
}

// published records a namespace the relay published (PUBLISH_NAMESPACE) or
// withdrew (PUBLISH_NAMESPACE_DONE) and tells the watchers it concerns.
func (s *ietfSession) publish(namespace []string, active bool) error {
	path, err := ietf.Path(namespace)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if active == s.published[path] {
		return nil // repeated; moq-relay sends one per SUBSCRIBE_NAMESPACE too
	}
	if active {
		if len(s.published) >= maxNamespaces {
			return fmt.Errorf("more than %d namespaces published: %w", maxNamespaces, wire.ErrTooLarge)
		}
		s.published[path] = true
	} else {
		delete(s.published, path)
	}
	for _, a := range s.watchers {
		if under(path, a.prefix) {
			a.push(Announcement{Broadcast: path, Active: active})
		}
	}
	return nil
}

// handleNamespace handles the namespace messages of the control stream.
func (s *ietfSession) handleNamespace(msg ietf.Message) error {
	switch msg.Type {
	case ietf.TypePublishNamespace:
		m, err := ietf.ParsePublishNamespace(msg)
		if err != nil {
			return err
		}
		var reply []byte
		if err := s.publish(m.Namespace, true); err != nil {
			if !errors.Is(err, wire.ErrInvalid) {
				return err
			}
			s.log.Warn("relay published an unusable namespace; refused", "namespace", m.Namespace, "err", err)
			reply, err = ietf.RequestError{RequestID: m.RequestID, Code: ietf.CodeNotSupported, Reason: "no broadcast path"}.
				Append(nil, ietf.TypePublishNamespaceError)
			if err != nil {
				return err
			}
		} else if reply, err = ietf.AppendRequestID(nil, ietf.TypePublishNamespaceOK, m.RequestID); err != nil {
			return err
		}
		return s.send(reply)
	case ietf.TypePublishNamespaceDone:
		ns, err := ietf.ParsePublishNamespaceDone(msg)
		if err != nil {
			return err
		}
		if err := s.publish(ns, false); err != nil && !errors.Is(err, wire.ErrInvalid) {
			return err
		}
	case ietf.TypeSubscribeNamespaceOK:
		id, err := ietf.ParseRequestID(msg)
		if err != nil {
			return err
		}
		if a := s.watcher(id); a != nil {
			a.answer(nil)
		}
	case ietf.TypeSubscribeNamespaceError:
		e, err := ietf.ParseRequestError(msg)
		if err != nil {
			return err
		}
		if a := s.watcher(e.RequestID); a != nil {
			a.answer(fmt.Errorf("%w: relay refused SUBSCRIBE_NAMESPACE %q with code %#x (%q)",
				ErrUnsupported, a.prefix, e.Code, e.Reason))
		}
	}
	return nil
}

// watcher returns the announcement stream of a request, if still open.
func (s *ietfSession) watcher(id uint64) *ietfAnnouncements {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watchers[id]
}

// answer delivers the relay's answer to SUBSCRIBE_NAMESPACE; only the first counts.
func (a *ietfAnnouncements) answer(err error) {
	select {
	case a.accepted <- err:
	default:
	}
}
