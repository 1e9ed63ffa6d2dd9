package serve

import (
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
)

// The manifest directory's session log is not a broadcast.
func TestListArchiveIgnoresSessionLog(t *testing.T) {
	a, _ := fixture(t)
	l, err := manifest.OpenSessionLog(a.manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Append(manifest.SubscriberSession{V: manifest.SessionLogVersion, Tool: "wt-archive", PID: 1, Broadcast: testBroadcast,
		Relay: "https://relay.example/anon", Protocol: "moq-lite", Version: "moq-lite-06", Transport: "webtransport", ALPN: "h3"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := New(Options{ManifestDir: a.manifest, Store: a.store, StoreRoot: a.root}).listArchive()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != testBroadcast {
		t.Fatalf("archive lists %+v, want only %s", got, testBroadcast)
	}
}
