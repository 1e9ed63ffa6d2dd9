package moq

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// silentAfter ends a session from which no packet at all arrived for that long.
// A restarted relay does not know the old connection and our client cannot
// authenticate its stateless reset, so silence is the only sign of it. With
// pings every silentAfter/4, each retransmitted by QUIC when unanswered, only a
// path that loses everything for that long trips it (RELIABILITY.md,
// "Dead-relay detection", measures both sides).
const silentAfter = 2 * time.Second

// ErrRelaySilent ends a session from which nothing was received for too long.
var ErrRelaySilent = errors.New("moq: nothing received from the relay")

// watchLiveness calls end when received, a count of packets received, stays
// unchanged for after; it returns then or when ctx ends.
func watchLiveness(ctx context.Context, received func() uint64, after time.Duration, end func(error)) {
	tick := time.NewTicker(after / 8)
	defer tick.Stop()
	last, since := received(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := received(); n != last {
			last, since = n, time.Now()
			continue
		}
		if silent := time.Since(since); silent >= after {
			end(fmt.Errorf("%w for %s", ErrRelaySilent, silent.Round(100*time.Millisecond)))
			return
		}
	}
}
