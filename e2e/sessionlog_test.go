//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/manifest"
)

// sessionWant is what every line of a session log must say.
type sessionWant struct {
	broadcast         string // "" for any
	tool              string
	protocol, version string
}

// checkSessionLog requires the session log of manifestDir to hold at least
// one line, every one of them as want says, over WebTransport (ALPN h3) and
// with a relay URL that carries no query.
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
	for _, s := range lines {
		if want.broadcast != "" && s.Broadcast != want.broadcast || s.Tool != want.tool || s.Protocol != want.protocol ||
			s.Version != want.version || s.Transport != "webtransport" || s.ALPN != "h3" || strings.Contains(s.Relay, "?") {
			t.Errorf("%s: session %+v, want %+v over webtransport/h3", path, s, want)
		}
	}
	return lines
}

// TestMSFCatalogAiomoqt: aiomoqt (a draft-14 implementation independent of
// moq-net and of ours) publishes, through moq-relay restricted to draft-14,
// a broadcast with no catalog.json but an MSF catalog track naming its one
// media track. `wt-archive --protocol ietf`, told no tracks, finds the media
// track through the MSF catalog and archives both, every group as aiomoqt
// sent it; the session log records the draft-14 session; manifest check is
// clean.
func TestMSFCatalogAiomoqt(t *testing.T) {
	if _, err := peers.AiomoqtVenv(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: CI must build it (scripts/install-aiomoqt.sh)", err)
		}
		t.Skipf("aiomoqt is not installed (%v); run scripts/install-aiomoqt.sh", err)
	}
	ecNode := buildBinary(t, "ec-node")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{LogDir: dir, Versions: []string{"moq-transport-14"}})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Stop()
	opts := peers.AiomoqtOptions{Relay: relay, Namespace: "aiomoqt/msf", Track: "data", Groups: 6, Objects: 4,
		MSFCatalog: true, LogDir: dir}
	pub, err := peers.StartAiomoqt(ctx, t.Logf, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()

	root := filepath.Join(dir, "archive")
	mdir := filepath.Join(root, "manifests")
	archiver := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", opts.Namespace,
		"--tls-fingerprint", relay.Fingerprint(), "--protocol", "ietf",
		"--output-dir", root+"/cas", "--manifest-dir", mdir)
	archiver.Stderr = logFile(t, dir, "wt-archive.log")
	if err := archiver.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("aiomoqt:\n%s\nwt-archive:\n%s", readFile(dir, "aiomoqt.log"), readFile(dir, "wt-archive.log"))
		}
	})
	sent, err := pub.Published(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the groups aiomoqt sent in the manifest", 30*time.Second, func() (bool, string) {
		n := len(readManifest(t, mdir, opts.Namespace, opts.Track))
		return n >= len(sent), ""
	})
	if err := archiver.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := archiver.Wait(); err != nil {
		t.Fatalf("wt-archive: %v", err)
	}

	if len(sent) != opts.Groups {
		t.Fatalf("aiomoqt reports %d groups sent, want %d", len(sent), opts.Groups)
	}
	archived := map[uint64]string{}
	for _, e := range readManifest(t, mdir, opts.Namespace, opts.Track) {
		if e.Kind != "group" {
			t.Fatalf("%s: %+v, want groups only", opts.Track, e)
		}
		archived[e.Group] = e.BLAKE3
	}
	for _, g := range sent {
		sum := blake3.Sum256(bytes.Join(g.Objects, nil))
		if got := archived[g.Group]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("group %d archived as %q, want the BLAKE3 of aiomoqt's objects %s", g.Group, got, hex.EncodeToString(sum[:]))
		}
	}
	if n := len(readManifest(t, mdir, opts.Namespace, "catalog")); n == 0 {
		t.Error("the MSF catalog track was not archived")
	}
	if n := len(readManifest(t, mdir, opts.Namespace, "catalog.json")); n != 0 {
		t.Errorf("%d catalog.json lines for a broadcast without one", n)
	}
	checkSessionLog(t, mdir, sessionWant{broadcast: opts.Namespace, tool: "wt-archive", protocol: "ietf", version: "moq-transport-14"})
	check := exec.Command(ecNode, "manifest", "check", "--manifest-dir", mdir, "--root", root+"/cas")
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), "0 problems") {
		t.Fatalf("manifest check: %v\n%s", err, out)
	}
}
