package segment

import (
	"context"
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
)

// The session log is not a track's manifest: it is not shipped, and its
// presence fails nothing.
func TestShipLeavesSessionLog(t *testing.T) {
	f := newFixture(t)
	l, err := manifest.OpenSessionLog(f.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Append(manifest.SubscriberSession{V: manifest.SessionLogVersion, Tool: "wt-archive", PID: 1, Broadcast: "live/alice",
		Relay: "https://relay.example/anon", Protocol: "ietf", Version: "moq-transport-14", Transport: "webtransport", ALPN: "h3"})
	if err != nil {
		t.Fatal(err)
	}
	f.appendGaps("live/alice", "video0.m4s", 2)
	b := newMemBucket()
	ship(t, &Shipper{Bucket: b, ManifestDir: f.dir, Origin: "host-a"}, 1)
	tracks, err := Tracks(context.Background(), b, "host-a")
	if err != nil || len(tracks) != 1 {
		t.Errorf("Tracks = %q, %v; want only live/alice video0.m4s", tracks, err)
	}
}
