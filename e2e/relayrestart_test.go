//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// TestWTArchiveSurvivesRelayRestart kills the real moq-relay in the middle of a
// broadcast and starts it again: wt-archive must reconnect by itself, record
// the groups it missed as a gap, archive nothing twice, and leave a CAS that
// verifies. Its back-fill age is 2 s, shorter than the outage and the
// publisher's reconnect, so that some missed groups are no longer in the
// relay's cache (with the default 30 s it takes them all).
func TestWTArchiveSurvivesRelayRestart(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	relay, _ := startLive(t, ctx, dir, "restart.hang")

	out := filepath.Join(dir, "archive")
	archiver := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", "restart.hang",
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--announce-wait", "10s", "--backfill-max-age", "2s",
		"--output-dir", out+"/cas", "--manifest-dir", out+"/manifests")
	archiver.Stderr = logFile(t, dir, "wt-archive.log")
	if err := archiver.Start(); err != nil {
		t.Fatal(err)
	}
	defer archiver.Process.Kill()

	const video = "0.m4s"
	groups := func() int {
		n := 0
		for _, e := range readManifest(t, out+"/manifests", "restart.hang", video) {
			if e.Kind == record.KindGroup {
				n++
			}
		}
		return n
	}
	waitFor(t, "3 video groups before the restart", time.Minute, func() (bool, string) { return groups() >= 3, "" })
	before := groups()
	if err := relay.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the broadcast goes on without a relay
	if err := relay.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitFor(t, "a video group after the restart", time.Minute, func() (bool, string) { return groups() > before, "" })
	t.Logf("first group archived %.2fs after the relay was back", time.Since(restarted).Seconds())
	waitFor(t, "3 video groups after the restart", time.Minute, func() (bool, string) { return groups() >= before+3, "" })

	if err := archiver.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := archiver.Wait(); err != nil {
		t.Fatalf("wt-archive: %v\n%s", err, readFile(dir, "wt-archive.log"))
	}

	store, err := cas.OpenLocal(out + "/cas")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := store.Verify(ctx, cas.VerifyOptions{}); err != nil || !v.Clean() {
		t.Fatalf("cas verify: %+v %v", v, err)
	}
	if mc, err := manifest.Check(ctx, out+"/manifests", store, manifest.CheckOptions{Rehash: true}); err != nil || !mc.Clean() {
		t.Fatalf("manifest check (duplicates, missing objects): %+v %v", mc, err)
	}
	// Every sequence from the first to the last archived group is accounted
	// for: archived, or inside a gap record saying why it is missing.
	entries := readManifest(t, out+"/manifests", "restart.hang", video)
	accounted := map[uint64]string{}
	var gaps []record.Header
	for _, e := range entries {
		if e.Kind == record.KindGap {
			gaps = append(gaps, e.Header)
			for s := e.First; s <= e.Last; s++ {
				accounted[s] = "gap"
			}
			continue
		}
		accounted[e.Group] = "group"
	}
	seqs := make([]uint64, 0, len(accounted))
	for s := range accounted {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for s := seqs[0]; s <= seqs[len(seqs)-1]; s++ {
		if accounted[s] == "" {
			t.Errorf("group %d is neither archived nor in a gap record", s)
		}
	}
	missed := 0
	for _, g := range gaps {
		if g.Reason == record.GapExpired || g.Reason == record.GapDisconnected {
			missed++
		}
	}
	if missed == 0 {
		t.Errorf("no expired or disconnected gap recorded across the relay restart; gaps: %+v", gaps)
	}
	t.Logf("video: %d records, gaps %+v", len(entries), gaps)
	for _, line := range strings.Split(readFile(dir, "wt-archive.log"), "\n") {
		if strings.Contains(line, "msg=connected") || strings.Contains(line, "reconnecting") {
			t.Log(line)
		}
	}
}
