package moq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

const (
	// headerTimeout bounds how long a relay-opened stream may take to send its
	// type and first message; a silent stream is cancelled, not waited on forever.
	headerTimeout = 10 * time.Second
	// streamBufferSize is the read buffer of each stream.
	streamBufferSize = 16 << 10
)

// errClosed is Err after our own Close.
var errClosed = errors.New("moq: session closed")

// session is the moq-lite Session over one WebTransport session.
type session struct {
	conn

	mu        sync.Mutex
	subs      map[uint64]*subscription
	nextID    uint64
	setupSeen bool
}

var _ Session = (*session)(nil)

func newSession(wt *h3wt.Session, v wire.Version, log *slog.Logger) *session {
	s := &session{subs: map[uint64]*subscription{}}
	s.init(wt, v, log)
	s.watchRelay()
	s.goSafe(func() { s.serveUni(s.handleUni) })
	s.goSafe(func() { s.serveBidi(s.handleBidi) })
	return s
}

// Close ends the session and waits for its goroutines.
func (s *session) Close() error {
	s.end(errClosed)
	s.wg.Wait()
	return nil
}

func (s *session) handleUni(str *h3wt.ReceiveStream) {
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	br := bufio.NewReaderSize(str, streamBufferSize)
	typ, err := wire.ReadStreamType(br)
	if err != nil {
		str.CancelRead(wire.CodeCancel)
		return
	}
	switch {
	case typ == wire.StreamGroup:
		hdr, err := wire.ReadGroup(br, s.version)
		if err != nil {
			s.log.Warn("bad group header", "err", err)
			str.CancelRead(wire.CodeMalformedTrack)
			return
		}
		_ = str.SetReadDeadline(time.Time{})
		s.mu.Lock()
		sub := s.subs[hdr.SubscribeID]
		s.mu.Unlock()
		if sub == nil {
			// Unsubscribed, or never subscribed: moq-net cancels these too.
			str.CancelRead(wire.CodeCancel)
			return
		}
		g := newGroup(hdr.Sequence, str, br, s.version, sub.timescale)
		if hdr.FrameStart != 0 {
			// Lite-06: the relay holds only the group's tail. Without its head
			// (the keyframe) it cannot be decoded: report it as truncated.
			str.CancelRead(wire.CodeCancel)
			g.fail(fmt.Errorf("%w: group %d starts at frame %d", ErrGroupReset, hdr.Sequence, hdr.FrameStart))
		}
		sub.deliver(g)
	case typ == wire.StreamSetup && s.version.HasSetup():
		setup, err := wire.ReadSetup(br, s.version)
		s.mu.Lock()
		repeated := s.setupSeen
		s.setupSeen = true
		s.mu.Unlock()
		switch {
		case err != nil:
			s.log.Warn("bad relay SETUP", "err", err)
		case repeated:
			s.log.Warn("relay sent a second SETUP stream; ignored")
		default:
			s.log.Debug("relay SETUP", "probe", setup.Probe, "hop", setup.Hop)
		}
		str.CancelRead(wire.CodeCancel)
	default:
		s.log.Debug("unexpected uni stream", "type", typ)
		str.CancelRead(wire.CodeInternal)
	}
}

func (s *session) handleBidi(str *h3wt.Stream) {
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	br := bufio.NewReaderSize(str, streamBufferSize)
	typ, err := wire.ReadStreamType(br)
	if err != nil {
		cancelStream(str, wire.CodeCancel)
		return
	}
	switch {
	case typ == wire.StreamAnnounce:
		s.answerAnnounce(str, br)
	case typ == wire.StreamGoaway && s.version.HasGoaway():
		s.endOnGoaway(str, br)
	case typ == wire.StreamProbe:
		answerProbe(str)
	default:
		// moq-net refuses unexpected streams with code 0 (Internal).
		s.log.Debug("unexpected bidi stream", "type", typ)
		cancelStream(str, wire.CodeInternal)
	}
}

// answerAnnounce serves the relay's own announce request: it asks what we
// publish, and we publish nothing. Resetting this stream would make moq-relay
// end the whole session, so we answer (lite-05: an empty ANNOUNCE_OK, which it
// waits for) and FIN, which it takes as a clean "nothing to announce".
func (s *session) answerAnnounce(str *h3wt.Stream, br *bufio.Reader) {
	please, err := wire.ReadAnnouncePlease(br, s.version)
	if err != nil {
		s.log.Warn("bad announce request from relay", "err", err)
	} else {
		s.log.Debug("relay asked for our announcements; we publish none", "prefix", please.Prefix)
	}
	if s.version.HasAnnounceOK() {
		b, _ := wire.AnnounceOK{}.Append(nil, s.version)
		if _, err := str.Write(b); err != nil {
			s.log.Debug("answer announce request", "err", err)
		}
	}
	_ = str.Close()
	// Wait briefly for the relay's FIN so the stream is released on both sides.
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(br, wire.MaxMessageSize))
	str.CancelRead(wire.CodeCancel)
}

func cancelStream(str *h3wt.Stream, code uint32) {
	str.CancelRead(code)
	str.CancelWrite(code)
}

// resetCode reports the code of a stream reset by the peer.
func resetCode(err error) (uint32, bool) {
	var se *h3wt.StreamError
	if errors.As(err, &se) && se.Remote {
		return se.Code, true
	}
	return 0, false
}

// openControl opens a bidi stream and writes msg (stream type included).
func (s *session) openControl(ctx context.Context, msg []byte) (*h3wt.Stream, *bufio.Reader, error) {
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	str, err := s.wt.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("moq: open stream: %w", err)
	}
	if _, err := str.Write(msg); err != nil {
		cancelStream(str, wire.CodeCancel)
		return nil, nil, fmt.Errorf("moq: write request: %w", err)
	}
	return str, bufio.NewReaderSize(str, streamBufferSize), nil
}

// readCtx runs read in the calling goroutine and makes it return when ctx or
// the session ends, by expiring the stream's read deadline.
func (s *session) readCtx(ctx context.Context, str interface{ SetReadDeadline(time.Time) error }, read func() error) error {
	stop := context.AfterFunc(ctx, func() { _ = str.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	stopSession := context.AfterFunc(s.ctx, func() { _ = str.SetReadDeadline(time.Unix(1, 0)) })
	defer stopSession()
	err := read()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && s.ctx.Err() != nil {
		return s.Err()
	}
	return err
}
