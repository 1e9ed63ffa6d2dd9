package moq_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/moq/moqtest"
	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// TestGroupFloodIsBounded: a relay opening tiny group streams faster than the
// subscriber consumes them must not make the session hold one goroutine and
// buffer per group (found by e2e TestReliabilityHostileRelay, which grew to
// 4 GiB): groups beyond the queue and a bounded number of waiters are dropped.
func TestGroupFloodIsBounded(t *testing.T) {
	const groups = 3000
	v := wire.Lite04
	sent := make(chan struct{})
	s := startStandIn(t, []string{v.String()}, func(p *moqtest.Peer) {
		id, _ := acceptSubscribe(t, p)
		ctx := p.Session.Context()
		for seq := range uint64(groups) {
			str, err := p.OpenUni(ctx, moqtest.GroupStream(v, id, seq, []byte{1}))
			if err != nil {
				return
			}
			str.Close()
		}
		close(sent)
		<-ctx.Done()
	})
	before := runtime.NumGoroutine()
	sess := dial(t, s, []string{v.String()})
	ctx := testCtx(t)
	sub, err := sess.Subscribe(ctx, "b", "t")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent:
	case <-ctx.Done():
		t.Fatal("the stand-in could not send its groups")
	}
	time.Sleep(200 * time.Millisecond) // let the last streams reach deliver
	if n := runtime.NumGoroutine() - before; n > 400 {
		t.Errorf("%d goroutines for %d unconsumed groups; want a bound independent of the flood", n, groups)
	}
	got := 0
	for {
		wait, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		g, err := sub.NextGroup(wait)
		cancel()
		if err != nil {
			break
		}
		g.Close()
		got++
	}
	if got >= groups || got == 0 {
		t.Errorf("consumer got %d of %d groups; want the queued ones and the rest dropped", got, groups)
	}
}

// TestLite06AnnounceFloodIsBounded: lite-06 announce ids must not let a relay
// grow the client's state. Ids churned by START/END and messages of unknown type
// leave nothing behind, and the active set stops at its bound (1<<16) with an
// error instead of growing.
func TestLite06AnnounceFloodIsBounded(t *testing.T) {
	const churn, bound = 20000, 1 << 16
	v := wire.Lite06
	s := startStandIn(t, []string{v.String()}, func(p *moqtest.Peer) {
		ctx := p.Session.Context()
		if _, err := p.ReadClientSetup(ctx); err != nil {
			t.Error(err)
		}
		c, err := p.AcceptControl(ctx)
		if err != nil {
			return
		}
		_, _ = wire.ReadAnnouncePlease(c.R, v)
		b, _ := wire.AnnounceOK{}.Append(nil, v)
		unknown := append([]byte{0x3f, 0x44, 0x00}, make([]byte, 1<<10)...) // type 63, 1 KiB
		for id := range uint64(churn) {
			b, _ = wire.Announce{Status: wire.AnnounceActive, Suffix: "churn"}.Append(b, v)
			b = append(b, unknown...)
			b, _ = wire.Announce{Status: wire.AnnounceEnded, ID: id}.Append(b, v)
		}
		for i := range bound + 1 {
			b, _ = wire.Announce{Status: wire.AnnounceActive, Suffix: fmt.Sprintf("b%d", i)}.Append(b, v)
		}
		c.Stream.Write(b)
		<-ctx.Done()
	})
	sess := dial(t, s, []string{v.String()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	anns, err := sess.Announced(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer anns.Close()
	active := 0
	for n := 0; ; n++ {
		a, err := anns.Next(ctx)
		if err != nil {
			if active != bound || !strings.Contains(err.Error(), "active broadcasts") {
				t.Fatalf("after %d announcements (%d active): %v; want the bound of %d to end the stream", n, active, err, bound)
			}
			return
		}
		if a.Broadcast != "churn" {
			active++
		} else if want := n%2 == 0; a.Active != want {
			t.Fatalf("announcement %d: %+v, want active=%v", n, a, want)
		}
	}
}
