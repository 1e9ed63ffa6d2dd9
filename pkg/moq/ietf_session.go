package moq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"
	"github.com/every-channel/ec-node/pkg/moq/wire"
	"github.com/every-channel/ec-node/pkg/moq/wire/ietf"
)

// Protocol families a dial may offer (DialOptions.Protocol).
const (
	ProtocolAuto = "auto"     // both, moq-lite preferred
	ProtocolLite = "moq-lite" // moq-lite only
	ProtocolIETF = "ietf"     // IETF moq-transport draft-14 only
)

// ErrUnsupported: the negotiated protocol has no such feature.
var ErrUnsupported = errors.New("moq: not supported by this protocol")

// maxRequestsFromRelay is the MAX_REQUEST_ID we grant the relay, as moq-net
// grants its peers. Every PUBLISH_NAMESPACE takes a request id, so a small
// grant would cap the broadcasts a relay can announce to us; what the
// requests cost is bounded elsewhere (maxNamespaces; the others are refused).
const maxRequestsFromRelay = 1<<32 - 1

// ietfSession is the Session of IETF moq-transport draft-14: one bidi control
// stream carries SETUP, SUBSCRIBE and their answers; each group arrives on its
// own subgroup uni stream. It shares the moq-lite session's life cycle and
// subscription queues (the embedded session), and only speaks another wire.
type ietfSession struct {
	*session
	ctrl    *h3wt.Stream
	writeMu sync.Mutex // one control message at a time

	// Guarded by session.mu.
	nextRequest  uint64
	maxRequest   uint64                   // the relay's MAX_REQUEST_ID: ours must stay below it
	byRequest    map[uint64]*subscription // our subscriptions by request id
	byAlias      map[uint64]*subscription // and by the track alias SUBSCRIBE_OK gave them
	aliasChanged chan struct{}            // closed and replaced when byAlias grows
	published    map[string]bool          // broadcast paths the relay published to us
	watchers     map[uint64]*ietfAnnouncements
}

var _ Session = (*ietfSession)(nil)

// dialIETF runs the draft-14 SETUP exchange on a freshly dialled relay.
func dialIETF(ctx context.Context, rl *relayLink) (*ietfSession, error) {
	wt := rl.wt
	s := &ietfSession{
		session:   &session{subs: map[uint64]*subscription{}},
		byRequest: map[uint64]*subscription{}, byAlias: map[uint64]*subscription{},
		aliasChanged: make(chan struct{}),
		published:    map[string]bool{}, watchers: map[uint64]*ietfAnnouncements{},
	}
	s.init(wt, 0, rl.log.With("version", ietf.Name)) // the moq-lite version stays unset: Version reports the draft
	ctrl, err := wt.OpenStreamSync(ctx)
	if err != nil {
		s.end(err)
		return nil, fmt.Errorf("moq: open control stream: %w", err)
	}
	s.ctrl = ctrl
	br := bufio.NewReaderSize(ctrl, streamBufferSize)
	setup, err := ietf.ClientSetup{Versions: []uint64{ietf.Draft14}, MaxRequestID: maxRequestsFromRelay,
		Implementation: "ec-node", Path: rl.target, Authority: rl.authority}.Append(nil)
	if err == nil {
		_, err = ctrl.Write(setup)
	}
	if err != nil {
		s.end(err)
		return nil, fmt.Errorf("moq: write CLIENT_SETUP: %w", err)
	}
	var reply ietf.ServerSetup
	err = s.readCtx(ctx, ctrl, func() error {
		msg, err := ietf.ReadMessage(br)
		if err != nil {
			return err
		}
		reply, err = ietf.ParseServerSetup(msg)
		return err
	})
	if err == nil && reply.Version != ietf.Draft14 {
		err = fmt.Errorf("relay chose version %#x, which we did not offer", reply.Version)
	}
	if err != nil {
		s.end(err)
		s.wg.Wait()
		return nil, fmt.Errorf("moq: SETUP: %w", err)
	}
	s.maxRequest = reply.MaxRequestID
	s.watchRelay()
	s.goSafe(func() { s.readControl(br) })
	s.goSafe(func() { s.serveUni(s.handleSubgroup) })
	s.goSafe(func() { s.serveBidi(s.refuseBidi) })
	return s, nil
}

func (s *ietfSession) Version() string { return ietf.Name }

// send writes one control message.
func (s *ietfSession) send(msg []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.ctrl.Write(msg); err != nil {
		return fmt.Errorf("moq: write control message: %w", err)
	}
	return nil
}

// fail ends the session for a protocol violation on the control stream.
func (s *ietfSession) fail(err error) {
	s.log.Warn("control stream failed; ending session", "err", err)
	s.end(fmt.Errorf("moq: control stream: %w", err))
}

// readControl reads the relay's control messages until the stream or the
// session ends. The control stream is the session: its end ends the session.
func (s *ietfSession) readControl(br *bufio.Reader) {
	for {
		msg, err := ietf.ReadMessage(br)
		if err != nil {
			if s.ctx.Err() == nil {
				s.fail(err)
			}
			return
		}
		if err := s.handleControl(msg); err != nil {
			s.fail(err)
			return
		}
	}
}

func (s *ietfSession) handleControl(msg ietf.Message) error {
	switch msg.Type {
	case ietf.TypeSubscribeOK:
		ok, err := ietf.ParseSubscribeOK(msg)
		if err != nil {
			return err
		}
		s.mu.Lock()
		sub := s.byRequest[ok.RequestID]
		if sub != nil {
			if other := s.byAlias[ok.TrackAlias]; other != nil && other != sub {
				s.mu.Unlock()
				return fmt.Errorf("track alias %d given twice: %w", ok.TrackAlias, wire.ErrInvalid)
			}
			s.byAlias[ok.TrackAlias] = sub
			close(s.aliasChanged)
			s.aliasChanged = make(chan struct{})
		}
		s.mu.Unlock()
		if sub != nil {
			s.log.Debug("subscribed", "track", sub.name, "alias", ok.TrackAlias,
				"content", ok.ContentExists, "largest_group", ok.LargestGroup)
			sub.accept(nil)
		}
	case ietf.TypeSubscribeError:
		e, err := ietf.ParseRequestError(msg)
		if err != nil {
			return err
		}
		if sub := s.finished(e.RequestID); sub != nil {
			err := fmt.Errorf("moq: subscribe %q: relay refused with code %#x (%q)", sub.name, e.Code, e.Reason)
			if e.Code == ietf.CodeTrackDoesNotExist {
				err = fmt.Errorf("%w: subscribe %q (relay code %#x, %q)", ErrNotFound, sub.name, e.Code, e.Reason)
			}
			sub.accept(err)
			sub.end(err)
		}
	case ietf.TypePublishDone:
		done, err := ietf.ParsePublishDone(msg)
		if err != nil {
			return err
		}
		if sub := s.finished(done.RequestID); sub != nil {
			s.log.Debug("relay ended subscription", "track", sub.name, "status", done.Status, "reason", done.Reason)
			sub.accept(fmt.Errorf("moq: subscribe %q: relay ended the subscription before accepting it", sub.name))
			// Its last group streams may still be in flight.
			s.goSafe(func() {
				select {
				case <-time.After(endGrace):
				case <-sub.closed:
				case <-s.ctx.Done():
				}
				sub.end(io.EOF)
			})
		}
	case ietf.TypeGoaway:
		g, err := ietf.ParseGoaway(msg)
		if err != nil {
			return err
		}
		s.log.Info("relay sent GOAWAY; ending session", "uri", RedactURL(g.URI))
		s.end(fmt.Errorf("%w (redirect %q)", ErrGoAway, RedactURL(g.URI)))
	case ietf.TypeMaxRequestID:
		max, err := ietf.ParseRequestID(msg)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if max > s.maxRequest {
			s.maxRequest = max
		}
		s.mu.Unlock()
	case ietf.TypePublishNamespace, ietf.TypePublishNamespaceDone,
		ietf.TypeSubscribeNamespaceOK, ietf.TypeSubscribeNamespaceError:
		return s.handleNamespace(msg)
	case ietf.TypeSubscribeNamespace, ietf.TypeSubscribe,
		ietf.TypeTrackStatus, ietf.TypeFetch, ietf.TypePublish:
		// The relay asks something of a publisher; we publish nothing.
		return s.refuse(msg)
	case ietf.TypeRequestsBlocked, ietf.TypeUnsubscribe, ietf.TypeSubscribeUpdate,
		ietf.TypeUnsubscribeNamespace, ietf.TypePublishNamespaceOK, ietf.TypePublishNamespaceError:
		s.log.Debug("ignored control message", "type", msg.Type)
	default:
		// Draft-14 makes an unknown message a protocol violation.
		return fmt.Errorf("unknown message type %#x: %w", msg.Type, wire.ErrInvalid)
	}
	return nil
}

// refuse answers a request from the relay with its error message. Requests
// the draft gives no error message to (PUBLISH's is PUBLISH_ERROR, not
// implemented by moq-relay toward subscribers) are logged only.
func (s *ietfSession) refuse(msg ietf.Message) error {
	id, err := ietf.ParseRequestID(msg)
	if err != nil {
		return err
	}
	errType := map[uint64]uint64{
		ietf.TypeSubscribeNamespace: ietf.TypeSubscribeNamespaceError,
		ietf.TypeSubscribe:          ietf.TypeSubscribeError,
	}[msg.Type]
	s.log.Debug("refusing relay request", "type", msg.Type, "request", id)
	if errType == 0 {
		return nil
	}
	b, err := ietf.RequestError{RequestID: id, Code: ietf.CodeNotSupported, Reason: "subscriber only"}.Append(nil, errType)
	if err != nil {
		return err
	}
	return s.send(b)
}

// allocRequest takes the next request id; s.mu must be held.
func (s *ietfSession) allocRequest() (uint64, error) {
	id := s.nextRequest
	if id >= s.maxRequest {
		return 0, fmt.Errorf("the relay allows no more requests (MAX_REQUEST_ID %d)", s.maxRequest)
	}
	s.nextRequest += 2 // client request ids are even
	return id, nil
}

// finished takes out the subscription of a request the relay ended, so that
// Close sends no UNSUBSCRIBE for it. Its alias stays until Close: the last
// group streams may still be in flight.
func (s *ietfSession) finished(id uint64) *subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.byRequest[id]
	delete(s.byRequest, id)
	return sub
}

// Subscribe implements Session: SUBSCRIBE from the start of the relay's
// latest group (NextGroupStart, which moq-relay serves like moq-lite's
// default), then wait for SUBSCRIBE_OK or SUBSCRIBE_ERROR.
func (s *ietfSession) Subscribe(ctx context.Context, broadcast, track string) (Subscription, error) {
	name := broadcast + "/" + track
	ns, err := ietf.Namespace(broadcast)
	if err != nil || !utf8.ValidString(broadcast) || !utf8.ValidString(track) || len(track) > wire.MaxStringLength {
		return nil, fmt.Errorf("moq: subscribe %q: invalid broadcast or track name", name)
	}
	s.mu.Lock()
	id, err := s.allocRequest()
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("moq: subscribe %q: %w", name, err)
	}
	sub := &subscription{s: s.session, id: id, name: name,
		queue: make(chan *group, groupQueue), accepted: make(chan error, 1),
		ended: make(chan struct{}), closed: make(chan struct{})}
	s.byRequest[id] = sub
	s.mu.Unlock()
	b, err := ietf.Subscribe{RequestID: id, Namespace: ns, Track: track, Priority: 128,
		GroupOrder: ietf.GroupOrderPublisher, Filter: ietf.FilterNextGroupStart}.Append(nil)
	if err == nil {
		err = s.send(b)
	}
	is := &ietfSubscription{subscription: sub, s: s}
	if err != nil {
		is.forget()
		return nil, fmt.Errorf("moq: subscribe %q: %w", name, err)
	}
	select {
	case err := <-sub.accepted:
		if err != nil {
			is.Close()
			return nil, err
		}
		return is, nil
	case <-ctx.Done():
		is.Close()
		return nil, ctx.Err()
	case <-s.ctx.Done():
		is.Close()
		return nil, s.Err()
	}
}

// ietfSubscription unsubscribes with UNSUBSCRIBE on the control stream.
type ietfSubscription struct {
	*subscription
	s    *ietfSession
	once sync.Once
}

// forget drops the subscription from the session's tables and reports
// whether the relay still considered it open.
func (is *ietfSubscription) forget() (open bool) {
	is.s.mu.Lock()
	defer is.s.mu.Unlock()
	_, open = is.s.byRequest[is.id]
	delete(is.s.byRequest, is.id)
	for alias, sub := range is.s.byAlias {
		if sub == is.subscription {
			delete(is.s.byAlias, alias)
		}
	}
	return open
}

// Close implements Subscription: UNSUBSCRIBE, unless the relay ended it.
func (is *ietfSubscription) Close() error {
	is.once.Do(func() {
		if is.forget() && is.s.ctx.Err() == nil {
			if b, err := ietf.AppendRequestID(nil, ietf.TypeUnsubscribe, is.id); err == nil {
				if err := is.s.send(b); err != nil {
					is.s.log.Debug("unsubscribe", "track", is.name, "err", err)
				}
			}
		}
		is.subscription.Close()
	})
	return nil
}

// refuseBidi resets a bidi stream the relay opens: draft-14 has exactly one,
// the control stream we opened.
func (s *ietfSession) refuseBidi(str *h3wt.Stream) {
	s.log.Debug("relay opened a bidi stream; refused")
	cancelStream(str, wire.CodeInternal)
}

// handleSubgroup reads a subgroup header and hands the stream, as one group,
// to the subscription its track alias names.
func (s *ietfSession) handleSubgroup(str *h3wt.ReceiveStream) {
	deadline := time.Now().Add(headerTimeout)
	_ = str.SetReadDeadline(deadline)
	br := bufio.NewReaderSize(str, streamBufferSize)
	hdr, err := ietf.ReadSubgroupHeader(br)
	if err != nil {
		s.log.Warn("bad subgroup header", "err", err)
		str.CancelRead(wire.CodeCancel)
		return
	}
	if hdr.Subgroup != 0 {
		// moq-relay sends one subgroup per group; another would be a part of a
		// group we cannot place among its frames.
		s.log.Warn("subgroup other than 0; ignored", "group", hdr.Group, "subgroup", hdr.Subgroup)
		str.CancelRead(wire.CodeCancel)
		return
	}
	sub := s.awaitAlias(hdr.TrackAlias, deadline)
	if sub == nil {
		str.CancelRead(wire.CodeCancel)
		return
	}
	_ = str.SetReadDeadline(time.Time{})
	g := newGroup(hdr.Group, str, br, 0, 0)
	g.readHeader = objectReader(g, hdr.HasExtensions())
	sub.deliver(g)
}

// awaitAlias returns the subscription of a track alias. A group stream can
// overtake the SUBSCRIBE_OK that names its alias, so it waits for one until
// deadline.
func (s *ietfSession) awaitAlias(alias uint64, deadline time.Time) *subscription {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		sub, changed, pending := s.byAlias[alias], s.aliasChanged, s.awaitingOK()
		s.mu.Unlock()
		if sub != nil || !pending {
			// Nothing waits for an alias: an unknown one is a closed subscription.
			return sub
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil
		case <-s.ctx.Done():
			return nil
		}
	}
}

// awaitingOK reports whether a subscription still waits for the alias its
// SUBSCRIBE_OK will give; s.mu must be held.
func (s *ietfSession) awaitingOK() bool {
	named := map[*subscription]bool{}
	for _, sub := range s.byAlias {
		named[sub] = true
	}
	for _, sub := range s.byRequest {
		if !named[sub] {
			return true
		}
	}
	return false
}

// objectReader reads the objects of a subgroup stream as frames: a moq-lite
// frame is one object (moq-relay's mapping), numbered from 0 without gaps. A
// group that does not start at object 0 lacks its head, and a gap loses
// frames: both are reported as truncated groups. An END_OF_GROUP or
// END_OF_TRACK status ends the group like a FIN.
func objectReader(g *group, withExtensions bool) func() (wire.FrameHeader, error) {
	var objects uint64
	ended := false
	return func() (wire.FrameHeader, error) {
		if ended {
			return wire.FrameHeader{}, io.EOF
		}
		h, err := ietf.ReadObjectHeader(g.br, withExtensions)
		if err != nil {
			return wire.FrameHeader{}, err
		}
		if h.IDDelta != 0 {
			g.str.CancelRead(wire.CodeCancel)
			return wire.FrameHeader{}, fmt.Errorf("%w: group %d: object %d follows %d objects",
				ErrGroupReset, g.seq, objects+h.IDDelta, objects)
		}
		objects++
		if h.Size == 0 {
			switch h.Status {
			case ietf.StatusNormal:
			case ietf.StatusEndOfGroup, ietf.StatusEndOfTrack:
				ended = true
				return wire.FrameHeader{}, io.EOF
			default:
				return wire.FrameHeader{}, fmt.Errorf("object status %#x: %w", h.Status, wire.ErrInvalid)
			}
		}
		return wire.FrameHeader{Size: h.Size}, nil
	}
}

// protocolOffer returns the WebTransport subprotocols to offer for a protocol
// family, given the moq-lite versions chosen.
func protocolOffer(protocol string, lite []string) ([]string, error) {
	switch protocol {
	case "", ProtocolAuto:
		return append(lite[:len(lite):len(lite)], ietf.Protocol), nil
	case ProtocolLite:
		return lite, nil
	case ProtocolIETF:
		return []string{ietf.Protocol}, nil
	}
	return nil, fmt.Errorf("moq: protocol %q: want %s, %s or %s", protocol, ProtocolAuto, ProtocolLite, ProtocolIETF)
}
