//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/record"
)

// TestIETFArchiveRealPeers archives one live moq-cli broadcast through a real
// moq-relay that accepts both moq-lite-06 and IETF draft-14, three ways at
// once: wt-archive and the moq-sub pipeline over draft-14, and wt-archive over
// moq-lite as the reference. Both IETF archives must pass checkArchive (cas
// verify, manifests, no holes, ffmpeg decodes), and every group archived both
// over draft-14 and over moq-lite must be the same object: the relay maps a
// moq-lite frame to one IETF object, so a group's objects concatenated are
// its frames concatenated.
func TestIETFArchiveRealPeers(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	moqSub := buildBinary(t, "moq-sub")
	casPut := buildBinary(t, "cas-put")
	manifestAppend := buildBinary(t, "manifest-append")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	relay, _ := startLive(t, ctx, dir, "e2e.hang", "moq-lite-06", "moq-transport-14")

	wtArchive := func(name, protocol string) *exec.Cmd {
		root := filepath.Join(dir, name)
		c := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", "e2e.hang",
			"--tls-fingerprint", relay.Fingerprint(), "--protocol", protocol,
			"--status-file", root+"/status.json",
			"--output-dir", root+"/cas", "--manifest-dir", root+"/manifests")
		c.Stderr = logFile(t, dir, name+".log")
		return c
	}
	ietfArchiver, liteArchiver := wtArchive("ietf", "ietf"), wtArchive("lite", "moq-lite")
	pipe := filepath.Join(dir, "pipeline")
	pipeline := newPipeline(t, dir,
		exec.Command(moqSub, "--url", relay.URL("anon"), "--name", "e2e.hang",
			"--tls-fingerprint", relay.Fingerprint(), "--protocol", "ietf", "--session-log-dir", pipe+"/manifests"),
		exec.Command(casPut, "--root", pipe+"/cas", "--records"),
		exec.Command(manifestAppend, "--manifest-dir", pipe+"/manifests"))

	for _, c := range []*exec.Cmd{ietfArchiver, liteArchiver} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	pipeline.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("wt-archive --protocol ietf:\n%s\nmoq-sub --protocol ietf:\n%s", readFile(dir, "ietf.log"), readFile(dir, "moq-sub.log"))
		}
	})
	time.Sleep(archiveWindow)
	for _, name := range []string{"ietf", "lite"} {
		var status archive.Status
		raw, err := os.ReadFile(filepath.Join(dir, name, "status.json"))
		if err == nil {
			err = json.Unmarshal(raw, &status)
		}
		if err != nil {
			t.Fatalf("%s status file: %v", name, err)
		}
		want := map[string]string{"ietf": "moq-transport-14", "lite": "moq-lite-06"}[name]
		if status.Version != want {
			t.Errorf("%s status file: version %q, want %q", name, status.Version, want)
		}
	}
	for _, c := range []*exec.Cmd{ietfArchiver, liteArchiver} {
		if err := c.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	pipeline.signal(syscall.SIGTERM)
	for name, c := range map[string]*exec.Cmd{"ietf": ietfArchiver, "lite": liteArchiver} {
		if err := c.Wait(); err != nil {
			t.Fatalf("wt-archive --protocol %s: %v\n%s", name, err, readFile(dir, name+".log"))
		}
	}
	pipeline.wait()
	for _, root := range []string{filepath.Join(dir, "ietf"), pipe, filepath.Join(dir, "lite")} {
		checkArchive(t, root, "e2e.hang", archiveWindow)
	}
	for _, root := range []string{filepath.Join(dir, "ietf"), pipe} {
		sameGroups(t, filepath.Join(dir, "lite"), root, "e2e.hang")
	}
	for root, want := range map[string]sessionWant{
		filepath.Join(dir, "ietf"): {tool: "wt-archive", protocol: "ietf", version: "moq-transport-14"},
		filepath.Join(dir, "lite"): {tool: "wt-archive", protocol: "moq-lite", version: "moq-lite-06"},
		pipe:                       {tool: "moq-sub", protocol: "ietf", version: "moq-transport-14"},
	} {
		want.broadcast = "e2e.hang"
		checkSessionLog(t, filepath.Join(root, "manifests"), want)
	}
}

// sameGroups requires every group archived in both roots to have the same
// BLAKE3, and at least three such groups per CMAF media track of the catalog
// (the others, like a timeline, may hold one group that never completes).
func sameGroups(t *testing.T, ref, root, broadcast string) {
	t.Helper()
	tracks := []string{catalog.TrackName}
	catalogs := readManifest(t, ref+"/manifests", broadcast, catalog.TrackName)
	if len(catalogs) == 0 {
		t.Fatalf("%s: no catalog", ref)
	}
	store, err := cas.OpenLocal(ref + "/cas")
	if err != nil {
		t.Fatal(err)
	}
	last := catalogs[len(catalogs)-1]
	c, err := catalog.Parse(readObject(t, store, last.BLAKE3)[:last.Frames[0]])
	if err != nil {
		t.Fatal(err)
	}
	tracks = append(tracks, c.Tracks...)
	for _, track := range tracks {
		want := map[uint64]string{}
		for _, e := range readManifest(t, ref+"/manifests", broadcast, track) {
			if e.Kind == record.KindGroup {
				want[e.Group] = e.BLAKE3
			}
		}
		common := 0
		for _, e := range readManifest(t, root+"/manifests", broadcast, track) {
			h, ok := want[e.Group]
			if e.Kind != record.KindGroup || !ok {
				continue
			}
			common++
			if h != e.BLAKE3 {
				t.Errorf("%s %s group %d: %s over IETF, %s over moq-lite", root, track, e.Group, e.BLAKE3, h)
			}
		}
		if _, media := c.Init[track]; media && common < 3 {
			t.Errorf("%s %s: only %d groups archived over both protocols", root, track, common)
		}
		t.Logf("%s %s: %d groups archived over both protocols, all identical", filepath.Base(root), track, common)
	}
}
