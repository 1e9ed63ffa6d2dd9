//go:build e2e

package e2e

import (
	"context"
	"testing"

	"github.com/every-channel/ec-node/internal/peers"
)

// startLive starts the real moq-relay (restricted to versions, if any) and a
// real publisher of broadcast on it, logging into dir; both are killed when
// the test ends.
func startLive(t *testing.T, ctx context.Context, dir, broadcast string, versions ...string) (*peers.Relay, *peers.Publisher) {
	t.Helper()
	relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{Versions: versions, LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Kill() })
	pub, err := peers.StartPublisher(ctx, relay, broadcast, t.Logf, peers.PublisherOptions{LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Kill() })
	return relay, pub
}
