//go:build e2e

package e2e

import (
	"cmp"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
)

// sessionWant is what every line of a session log must say.
type sessionWant struct {
	broadcast         string // "" for any
	tool              string
	protocol, version string
	// transport and alpn: "" for webtransport and h3.
	transport, alpn string
}

// checkSessionLog requires the session log of manifestDir to hold at least
// one line, every one of them as want says (by default over WebTransport, ALPN
// h3), with a relay URL that carries no query.
func checkSessionLog(t *testing.T, manifestDir string, want sessionWant) []manifest.SubscriberSession {
	t.Helper()
	path := filepath.Join(manifestDir, manifest.SessionLogName)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("session log: %v", err)
	}
	defer f.Close()
	var lines []manifest.SubscriberSession
	dec := manifest.NewSessionLogDecoder(f)
	for {
		s, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		lines = append(lines, s)
	}
	if len(lines) == 0 {
		t.Fatalf("%s: no session line", path)
	}
	want.transport, want.alpn = cmp.Or(want.transport, "webtransport"), cmp.Or(want.alpn, "h3")
	for _, s := range lines {
		if want.broadcast != "" && s.Broadcast != want.broadcast || s.Tool != want.tool || s.Protocol != want.protocol ||
			s.Version != want.version || s.Transport != want.transport || s.ALPN != want.alpn || strings.Contains(s.Relay, "?") {
			t.Errorf("%s: session %+v, want %+v", path, s, want)
		}
	}
	return lines
}
