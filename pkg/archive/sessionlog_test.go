package archive

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
)

func readSessionLog(t *testing.T, dir string) []manifest.SubscriberSession {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, manifest.SessionLogName))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []manifest.SubscriberSession
	dec := manifest.NewSessionLogDecoder(f)
	for {
		s, err := dec.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
}

// Every session that records the broadcast (here: the first, and the one
// after a reconnect) is one line of the session log, saying how it was
// negotiated; a session that cannot say is not logged.
func TestFollowLogsSessions(t *testing.T) {
	for _, negotiates := range []bool{true, false} {
		dir := t.TempDir()
		log, err := manifest.OpenSessionLog(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		relay := newFakeRelay("video0.m4s")
		if negotiates {
			relay.negotiation = &moq.Negotiation{Protocol: moq.ProtocolIETF, Version: "moq-transport-14", Transport: "webtransport", ALPN: "h3"}
		}
		v := relay.tracks["video0.m4s"]
		v <- fakeGroup{seq: 1, frames: [][]byte{{1}}}
		dropped := false
		runFake(t, relay, Config{Tracks: []string{"video0.m4s"}, SessionLog: log, Tool: "wt-archive"}, func(hs []record.Header) bool {
			if len(hs) == 1 && !dropped {
				dropped = true
				relay.drop()
				v <- fakeGroup{seq: 2, frames: [][]byte{{2}}}
			}
			return len(hs) >= 2
		})
		got := readSessionLog(t, dir)
		if !negotiates {
			if len(got) != 0 {
				t.Errorf("stand-in without negotiation: %d lines logged, want none", len(got))
			}
			continue
		}
		if len(got) != 2 {
			t.Fatalf("%d session lines, want 2 (one per session): %+v", len(got), got)
		}
		for _, s := range got {
			if s.Broadcast != "bbb" || s.Relay != "https://relay.test/anon" || s.Tool != "wt-archive" ||
				s.Protocol != moq.ProtocolIETF || s.Version != "moq-transport-14" || s.ALPN != "h3" || s.PID != os.Getpid() {
				t.Errorf("session line %+v", s)
			}
		}
	}
}
