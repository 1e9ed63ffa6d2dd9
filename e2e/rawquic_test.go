//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/archive"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/moq"
)

// TestRawQUICDial: moq-relay serves moq-lite-06 and draft-14 over raw QUIC on
// its QUIC port, the version being the ALPN; a moq-cli publisher on raw QUIC
// too. Our client reads the catalog over each.
func TestRawQUICDial(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	relay, pub := startRawQUICPeers(t, ctx, dir, "bbb.hang")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, tc := range []struct {
		protocol, want string
		timed          bool // moq-lite-05 on sends frame timestamps
	}{
		{moq.ProtocolLite, "moq-lite-06", true},
		{moq.ProtocolIETF, "moq-transport-14", false},
		{moq.ProtocolAuto, "moq-lite-06", true},
	} {
		sess, err := moq.Dial(ctx, relay.QUICURL("anon"), moq.DialOptions{Protocol: tc.protocol,
			TLS: moq.TLSOptions{Fingerprint: relay.Fingerprint()}, Logger: log})
		if err != nil {
			t.Fatalf("%s: %v", tc.protocol, err)
		}
		if sess.Version() != tc.want {
			t.Errorf("%s: negotiated %s, want %s", tc.protocol, sess.Version(), tc.want)
		}
		anns, err := sess.Announced(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for {
			a, err := anns.Next(ctx)
			if err != nil {
				t.Fatalf("%s: waiting for the announcement: %v\n%s", tc.protocol, err, pub.Logs())
			}
			if a.Broadcast == "bbb.hang" && a.Active {
				break
			}
		}
		anns.Close()
		sub, err := sess.Subscribe(ctx, "bbb.hang", "catalog.json")
		if err != nil {
			t.Fatalf("%s: %v", tc.protocol, err)
		}
		g, err := sub.NextGroup(ctx)
		if err != nil {
			t.Fatalf("%s: %v", tc.protocol, err)
		}
		if n, _, err := interopReadGroup(g, tc.timed); err != nil || n != 1 {
			t.Fatalf("%s: catalog group: %d frames, %v", tc.protocol, n, err)
		}
		sub.Close()
		sess.Close()
	}
}

// TestRawQUICArchiveRealPeers archives one live moq-cli broadcast, published
// over raw QUIC, through the real moq-relay three ways at once: wt-archive
// over raw QUIC (moqt://) with moq-lite-06 and with draft-14, and wt-archive
// over WebTransport as the reference. Every archive must pass checkArchive
// (cas verify, manifests, no holes, ffmpeg decodes), and each group archived
// over raw QUIC and over WebTransport must be the same object.
func TestRawQUICArchiveRealPeers(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	relay, _ := startRawQUICPeers(t, ctx, dir, "e2e.hang")

	archivers := []struct {
		name, url, protocol, version string
		transport, alpn              string // as the session log records them
	}{
		{"quic-lite", relay.QUICURL("anon"), "moq-lite", "moq-lite-06", "quic", "moq-lite-06"},
		{"quic-ietf", relay.QUICURL("anon"), "ietf", "moq-transport-14", "quic", "moq-00"},
		{"wt", relay.URL("anon"), "moq-lite", "moq-lite-06", "webtransport", "h3"},
	}
	cmds := map[string]*exec.Cmd{}
	for _, a := range archivers {
		root := filepath.Join(dir, a.name)
		c := exec.Command(ecNode, "wt-archive", "--url", a.url, "--name", "e2e.hang",
			"--tls-fingerprint", relay.Fingerprint(), "--protocol", a.protocol,
			"--status-file", root+"/status.json",
			"--output-dir", root+"/cas", "--manifest-dir", root+"/manifests")
		c.Stderr = logFile(t, dir, a.name+".log")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[a.name] = c
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range archivers {
				t.Logf("wt-archive %s:\n%s", a.name, readFile(dir, a.name+".log"))
			}
		}
	})
	time.Sleep(archiveWindow)
	for _, a := range archivers {
		var status archive.Status
		raw, err := os.ReadFile(filepath.Join(dir, a.name, "status.json"))
		if err == nil {
			err = json.Unmarshal(raw, &status)
		}
		if err != nil {
			t.Fatalf("%s status file: %v", a.name, err)
		}
		if status.Version != a.version {
			t.Errorf("%s status file: version %q, want %q", a.name, status.Version, a.version)
		}
	}
	for _, c := range cmds {
		if err := c.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("wt-archive %s: %v\n%s", name, err, readFile(dir, name+".log"))
		}
	}
	for _, a := range archivers {
		checkArchive(t, filepath.Join(dir, a.name), "e2e.hang", archiveWindow)
		checkSessionLog(t, filepath.Join(dir, a.name, "manifests"), sessionWant{broadcast: "e2e.hang", tool: "wt-archive",
			protocol: a.protocol, version: a.version, transport: a.transport, alpn: a.alpn})
	}
	for _, name := range []string{"quic-lite", "quic-ietf"} {
		sameGroups(t, filepath.Join(dir, "wt"), filepath.Join(dir, name), "e2e.hang")
	}
}

// startRawQUICPeers starts moq-relay serving moq-lite-06 and draft-14, and a
// moq-cli publisher of broadcast that reaches it over raw QUIC.
func startRawQUICPeers(t *testing.T, ctx context.Context, dir, broadcast string) (*peers.Relay, *peers.Publisher) {
	t.Helper()
	relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{Versions: []string{"moq-lite-06", "moq-transport-14"}, LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Kill() })
	pub, err := peers.StartPublisher(ctx, relay, broadcast, t.Logf, peers.PublisherOptions{LogDir: dir, RawQUIC: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Kill() })
	return relay, pub
}
