//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/moq"
)

// TestMSFCatalogFromRelay: moq-relay 0.17.8 serves, over draft-14, an MSF
// catalog track ("catalog", draft-01 form) for a moq-cli broadcast beside its
// hang catalog.json. catalog.ParseMSF reads it, and it names the same media
// tracks with the same packaging as catalog.json.
func TestMSFCatalogFromRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	relay, pub := startLive(t, ctx, t.TempDir(), "bbb.hang", "moq-transport-14")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sess, err := moq.Dial(ctx, relay.URL("anon"), moq.DialOptions{Protocol: moq.ProtocolIETF,
		TLS: moq.TLSOptions{Fingerprint: relay.Fingerprint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	anns, err := sess.Announced(ctx, "bbb.hang")
	if err != nil {
		t.Fatal(err)
	}
	defer anns.Close()
	for {
		a, err := anns.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the announcement: %v\n%s", err, pub.Logs())
		}
		if a.Broadcast == "bbb.hang" && a.Active {
			break
		}
	}
	firstObject := func(track string) []byte {
		sub, err := sess.Subscribe(ctx, "bbb.hang", track)
		if err != nil {
			t.Fatalf("subscribe %s: %v", track, err)
		}
		defer sub.Close()
		g, err := sub.NextGroup(ctx)
		if err != nil {
			t.Fatalf("%s: %v", track, err)
		}
		defer g.Close()
		f, err := g.NextFrame()
		if err != nil {
			t.Fatalf("%s: %v", track, err)
		}
		b, err := io.ReadAll(f.Body)
		if err != nil {
			t.Fatalf("%s: %v", track, err)
		}
		return b
	}
	hang, err := catalog.Parse(firstObject(catalog.TrackName))
	if err != nil {
		t.Fatal(err)
	}
	raw := firstObject(catalog.MSFTrackName)
	msf, err := catalog.ParseMSF(raw, "bbb.hang")
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	t.Logf("MSF catalog: %.300s", raw)
	// catalog.json also names hang's archive timeline track, which is no
	// rendition and which the MSF catalog leaves out.
	renditions := slices.Sorted(maps.Keys(hang.Container))
	if len(msf.Tracks) == 0 || !slices.Equal(msf.Tracks, renditions) || len(msf.Skipped) != 0 {
		t.Fatalf("MSF catalog names %q (skipped %q), catalog.json's renditions are %q", msf.Tracks, msf.Skipped, renditions)
	}
	for _, name := range msf.Tracks {
		if msf.Container[name] != hang.Container[name] {
			t.Errorf("%s: MSF packaging %q, catalog.json container %q", name, msf.Container[name], hang.Container[name])
		}
	}
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
