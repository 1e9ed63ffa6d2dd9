package moq_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/moq/moqtest"
	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// TestSubscribeRangeOnTheWire checks, on every version, that a back-fill names
// its first and last group and its max age in SUBSCRIBE, and that the relay's
// FIN after the range ends it with io.EOF; and that a subscription from the
// relay's cache, lite-06 only, names no floor and returns SUBSCRIBE_START's group.
func TestSubscribeRangeOnTheWire(t *testing.T) {
	for _, v := range allVersions {
		t.Run(v, func(t *testing.T) {
			got := make(chan wire.Subscribe, 1)
			s := startStandIn(t, []string{v}, func(p *moqtest.Peer) {
				ctx := p.Session.Context()
				if p.Version.HasSetup() {
					if _, err := p.ReadClientSetup(ctx); err != nil {
						return
					}
				}
				for {
					c, err := p.AcceptControl(ctx)
					if err != nil {
						return
					}
					switch c.Type {
					case wire.StreamTrack:
						if _, err := wire.ReadTrack(c.R, p.Version); err != nil {
							return
						}
						b, _ := wire.TrackInfo{Timescale: 1000}.Append(nil, p.Version)
						_, _ = c.Stream.Write(b)
						_ = c.Stream.Close()
					case wire.StreamSubscribe:
						m, err := wire.ReadSubscribe(c.R, p.Version)
						if err != nil {
							return
						}
						got <- m
						resp := wire.SubscribeResponse{Kind: wire.ResponseOK}
						if p.Version.HasTrackStream() {
							resp = wire.SubscribeResponse{Kind: wire.ResponseStart, Group: 42}
						}
						b, _ := resp.Append(nil, p.Version)
						_, _ = c.Stream.Write(b)
						_ = c.Stream.Close() // the range is over: nothing cached
					}
				}
			})
			sess := dial(t, s, []string{v})
			bf, ok := sess.(moq.Backfiller)
			if !ok {
				t.Fatal("the moq-lite session does not implement moq.Backfiller")
			}
			ctx := testCtx(t)
			if _, err := bf.SubscribeRange(ctx, "bbb", "video0.m4s", moq.Range{First: 9, Last: 7, MaxAge: time.Second}); err == nil {
				t.Error("SubscribeRange accepted a range that ends before it starts")
			}
			sub, err := bf.SubscribeRange(ctx, "bbb", "video0.m4s", moq.Range{First: 7, Last: 9, MaxAge: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			m := <-got
			if m.Start != (wire.OptionalGroup{Seq: 7, Set: true}) || m.End != (wire.OptionalGroup{Seq: 9, Set: true}) || m.MaxLatencyMs != 30000 {
				t.Errorf("SUBSCRIBE start %+v end %+v max latency %d ms, want 7, 9, 30000", m.Start, m.End, m.MaxLatencyMs)
			}
			if _, err := sub.NextGroup(ctx); !errors.Is(err, io.EOF) {
				t.Errorf("NextGroup after the relay ended the range: %v, want io.EOF", err)
			}

			recent, start, err := bf.SubscribeRecent(ctx, "bbb", "video0.m4s", 30*time.Second)
			if v != "moq-lite-06" {
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("SubscribeRecent on %s: %v, want ErrUnsupported", v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer recent.Close()
			m = <-got
			if m.Start.Set || m.End.Set || m.MaxLatencyMs != 30000 || start != 42 {
				t.Errorf("SUBSCRIBE start %+v end %+v max latency %d ms, started at %d; want no floor, no end, 30000, SUBSCRIBE_START's 42",
					m.Start, m.End, m.MaxLatencyMs, start)
			}
		})
	}
}
