package moq

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/every-channel/ec-node/pkg/moq/h3wt"
	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// conn is what the subscriber sessions (moq-lite and IETF) and the publisher
// share over one WebTransport session: the negotiated version, the goroutines
// they start, and why and when the session ended.
type conn struct {
	wt      *h3wt.Session
	version wire.Version
	log     *slog.Logger

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine started by goSafe

	endMu sync.Mutex
	err   error // why the session ended: the first reason given to end
	done  chan struct{}
}

// init sets c up over wt; it starts nothing.
func (c *conn) init(wt *h3wt.Session, v wire.Version, log *slog.Logger) {
	c.wt, c.version, c.log = wt, v, log
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.done = make(chan struct{})
}

// watchRelay ends the session when the relay closes it, or falls silent for
// silentAfter (watchLiveness).
func (c *conn) watchRelay() {
	c.goSafe(func() { watchLiveness(c.ctx, c.wt.PacketsReceived, silentAfter, c.end) })
	c.goSafe(func() {
		select {
		case <-c.wt.Context().Done():
			c.end(fmt.Errorf("moq: session closed by relay: %w", context.Cause(c.wt.Context())))
		case <-c.ctx.Done():
		}
	})
}

func (c *conn) goSafe(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// Version is the negotiated moq-lite version, e.g. "moq-lite-05".
func (c *conn) Version() string { return c.version.String() }

// Done is closed when the session has ended; Err then says why.
func (c *conn) Done() <-chan struct{} { return c.done }

// Err is why the session ended, nil while it runs.
func (c *conn) Err() error {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	return c.err
}

// end records why the session ended (the first reason wins) and tears it down.
func (c *conn) end(err error) {
	c.endMu.Lock()
	if c.err != nil {
		c.endMu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	c.endMu.Unlock()
	c.cancel()
	_ = c.wt.CloseWithError(wire.SessionCancel, "")
}

// sendSetup writes our SETUP uni stream (lite-05 on). The role tells moq-relay
// which half to wire: a subscriber gets no announce stream toward it, a
// publisher is only subscribed to. target is the request target raw QUIC must
// send (relayLink.target), "" for none.
func (c *conn) sendSetup(ctx context.Context, role uint64, target string) error {
	if !c.version.HasSetup() {
		return nil
	}
	b := wire.AppendStreamType(nil, wire.StreamSetup)
	b, err := wire.Setup{Role: role, Path: target, HasPath: target != ""}.Append(b, c.version)
	if err != nil {
		return err
	}
	str, err := c.wt.OpenUniStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("moq: open setup stream: %w", err)
	}
	if _, err := str.Write(b); err != nil {
		return fmt.Errorf("moq: write setup: %w", err)
	}
	// moq-relay reads the one message and then stops the stream; its
	// STOP_SENDING can beat our FIN (seen over raw QUIC), and Close then fails
	// although the SETUP was delivered. A relay refusing it ends the session.
	_ = str.Close()
	return nil
}

// serveUni hands every uni stream the relay opens to handle, each on its own
// goroutine, until the session ends.
func (c *conn) serveUni(handle func(*h3wt.ReceiveStream)) {
	for {
		str, err := c.wt.AcceptUniStream(c.ctx)
		if err != nil {
			return
		}
		c.goSafe(func() { handle(str) })
	}
}

// serveBidi is serveUni for the bidi streams the relay opens.
func (c *conn) serveBidi(handle func(*h3wt.Stream)) {
	for {
		str, err := c.wt.AcceptStream(c.ctx)
		if err != nil {
			return
		}
		c.goSafe(func() { handle(str) })
	}
}

// endOnGoaway reads the relay's GOAWAY and ends the session with ErrGoAway. A
// malformed one is logged and its stream cancelled, and the session kept, as
// moq-net does.
func (c *conn) endOnGoaway(str *h3wt.Stream, br *bufio.Reader) {
	msg, err := wire.ReadGoaway(br, c.version)
	if err != nil {
		c.log.Warn("bad GOAWAY", "err", err)
		cancelStream(str, wire.CodeCancel)
		return
	}
	c.log.Info("relay sent GOAWAY; ending session", "uri", RedactURL(msg.URI))
	_ = str.Close()
	c.end(fmt.Errorf("%w (redirect %q)", ErrGoAway, RedactURL(msg.URI)))
}

// answerProbe ends the relay's bandwidth probe: we measure nothing to report,
// and a FIN ends it quietly on the relay's side where a reset logs a warning.
func answerProbe(str *h3wt.Stream) {
	_ = str.Close()
	str.CancelRead(wire.CodeCancel)
}
