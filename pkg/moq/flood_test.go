package moq_test

import (
	"context"
	"runtime"
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
