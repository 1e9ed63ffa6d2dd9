package moq

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// group reads one GROUP uni stream frame by frame.
type group struct {
	seq       uint64
	str       *h3wt.ReceiveStream
	br        *bufio.Reader
	version   wire.Version
	timescale uint64

	// readHeader, when set, reads frame headers in place of the moq-lite
	// layout (an IETF subgroup stream; see ietf_session.go).
	readHeader func() (wire.FrameHeader, error)

	prevTS uint64
	frames int
	body   *frameBody // the frame handed out last
	err    error      // sticky: io.EOF once complete, else why it failed
}

func newGroup(seq uint64, str *h3wt.ReceiveStream, br *bufio.Reader, v wire.Version, timescale uint64) *group {
	return &group{seq: seq, str: str, br: br, version: v, timescale: timescale}
}

func (g *group) Sequence() uint64 { return g.seq }

// NextFrame implements Group. Whatever the caller left unread of the previous
// frame's body is skipped first.
func (g *group) NextFrame() (Frame, error) {
	if g.err != nil {
		return Frame{}, g.err
	}
	if g.body != nil && g.body.left > 0 {
		if _, err := io.Copy(io.Discard, g.body); err != nil {
			return Frame{}, g.fail(err)
		}
	}
	var h wire.FrameHeader
	var err error
	if g.readHeader != nil {
		h, err = g.readHeader()
	} else {
		h, err = wire.ReadFrameHeader(g.br, g.version, g.prevTS)
	}
	if err == io.EOF {
		g.err = io.EOF
		return Frame{}, io.EOF
	}
	if err != nil {
		return Frame{}, g.fail(g.streamError(err))
	}
	g.frames++
	if g.frames > wire.MaxGroupFrames {
		g.str.CancelRead(wire.CodeGroupTooLarge)
		return Frame{}, g.fail(fmt.Errorf("%w: group %d: more than %d frames", ErrTooLarge, g.seq, wire.MaxGroupFrames))
	}
	g.prevTS = h.Timestamp
	g.body = &frameBody{g: g, left: h.Size}
	return Frame{
		Size:         int64(h.Size),
		Timestamp:    int64(h.Timestamp),
		Timescale:    g.timescale,
		HasTimestamp: g.version.HasTrackStream(),
		Body:         g.body,
	}, nil
}

func (g *group) fail(err error) error {
	if g.err == nil {
		g.err = err
	}
	return g.err
}

// streamError classifies a read error: a reset or a stream that ends inside a
// frame is a truncated group (ErrGroupReset); anything else is passed on.
func (g *group) streamError(err error) error {
	if code, ok := resetCode(err); ok {
		return fmt.Errorf("%w: group %d, relay code %#x", ErrGroupReset, g.seq, code)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: group %d truncated mid-frame", ErrGroupReset, g.seq)
	}
	if errors.Is(err, wire.ErrTooLarge) {
		g.str.CancelRead(wire.CodeGroupTooLarge)
		return fmt.Errorf("%w: group %d: %w", ErrTooLarge, g.seq, err)
	}
	return fmt.Errorf("moq: group %d: %w", g.seq, err)
}

// Close implements Group: it abandons the rest of the stream.
func (g *group) Close() error {
	if g.err != io.EOF {
		g.str.CancelRead(wire.CodeCancel)
		g.fail(fmt.Errorf("moq: group %d closed", g.seq))
	}
	return nil
}

// frameBody streams one frame's payload straight from the stream buffer, so
// memory stays constant whatever the frame size.
type frameBody struct {
	g    *group
	left uint64
}

func (b *frameBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if b.g.err != nil {
		return 0, b.g.err
	}
	if uint64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.g.br.Read(p)
	b.left -= uint64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		return n, b.g.fail(b.g.streamError(err))
	}
	if b.left == 0 {
		return n, io.EOF
	}
	return n, nil
}
