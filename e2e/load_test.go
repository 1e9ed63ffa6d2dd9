//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/cliptag"
	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// The short mode of the load harness (scripts/load.sh is the full one).
const (
	loadBroadcasts = 6
	loadWindow     = 45 * time.Second
)

// TestLoadShort: loadBroadcasts replays (`ec-node replay --loop --speed 1`,
// each of its own copy of a recorded clip (internal/cliptag), so the window
// spans several loop boundaries and every group is a new object) into the real
// moq-relay, all archived by one archive-auto --mode inprocess that follows the
// relay's announcements. After every broadcast is being archived, for
// loadWindow: no process may exit, and nothing may be lost: no gap record, no
// sequence number missing between a track's groups, no broadcast silent. The
// store must verify. No timing or throughput is asserted; scripts/load.sh
// measures those.
func TestLoadShort(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srcCAS, srcManifests := filepath.Join(dir, "src-cas"), filepath.Join(dir, "src-manifests")

	relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Kill() })
	src := recordClip(t, ctx, ecNode, dir, relay, srcCAS, srcManifests)
	// Each broadcast replays its own copy, so that the archiver's store writes
	// every group instead of deduplicating all but one broadcast's.
	store, err := cas.OpenLocal(srcCAS)
	if err != nil {
		t.Fatal(err)
	}
	if err := cliptag.Derive(ctx, store, srcManifests, src, "copy-%d.hang", 0, loadBroadcasts); err != nil {
		t.Fatal(err)
	}

	var names []string
	replays := map[string]*exec.Cmd{}
	exited := map[string]chan error{}
	for i := range loadBroadcasts {
		name := fmt.Sprintf("load-%d.hang", i)
		names = append(names, name)
		cmd := exec.Command(ecNode, "replay", "--url", relay.URL("anon"), "--tls-fingerprint", relay.Fingerprint(),
			"--name", name, "--from-broadcast", fmt.Sprintf("copy-%d.hang", i), "--output-dir", srcCAS, "--manifest-dir", srcManifests,
			"--loop", "--speed", "1")
		cmd.Stderr = logFile(t, dir, name+".log")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		replays[name], exited[name] = cmd, make(chan error, 1)
		go func() { exited[name] <- cmd.Wait() }()
	}
	auto := startArchiveAuto(t, "--directory", "", "--relay-announce", relay.URL("anon"))
	want := map[string]int64{}
	for _, name := range names {
		want[name] = 2
	}
	archiving(t, statusView{dir: auto.statusDir}, want)

	// The window: every process stays up.
	start := time.Now()
	for deadline := start.Add(loadWindow); time.Now().Before(deadline); {
		select {
		case <-auto.done:
			t.Fatalf("archive-auto exited during the window: %v", auto.cmd.ProcessState)
		case <-time.After(time.Second):
		}
		for name, ch := range exited {
			select {
			case err := <-ch:
				t.Fatalf("replay %s exited during the window: %v\n%s", name, err, lastLines(readFile(dir, name+".log"), 20))
			default:
			}
		}
	}
	end := time.Now()

	if err := auto.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-auto.done:
	case <-time.After(15 * time.Second):
		t.Fatal("archive-auto did not stop within 15 s of SIGINT")
	}
	if code := auto.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("archive-auto exited %d on SIGINT", code)
	}

	root := filepath.Dir(auto.statusDir)
	mdir := filepath.Join(root, "manifests")
	if out, err := exec.Command(ecNode, "cas", "verify", "--root", filepath.Join(root, "cas"), "--manifest-dir", mdir,
		"--progress", "never").CombinedOutput(); err != nil {
		t.Fatalf("cas verify: %v\n%s", err, out)
	}
	for _, name := range names {
		l := windowLoss(t, mdir, name, start, end)
		t.Logf("%s: %d media groups in the %s window; %d superseded catalog groups skipped", name, l.groups, loadWindow, l.catalogSkipped)
		if l.groups == 0 {
			t.Errorf("%s: no media group archived in the window", name)
		}
		for _, p := range l.problems {
			t.Errorf("%s: %s", name, p)
		}
	}
}

// recordClip archives 8 s of a live publisher and returns its broadcast name.
// A group lost while recording (a starved machine) would be replayed as a gap
// in every broadcast, so a recording with a gap before a track's last group is
// made again, at most three times.
func recordClip(t *testing.T, ctx context.Context, ecNode, dir string, relay *peers.Relay, casRoot, mdir string) string {
	t.Helper()
	for attempt := 1; attempt <= 3; attempt++ {
		name := fmt.Sprintf("src%d.hang", attempt)
		logs := filepath.Join(dir, name)
		if err := os.MkdirAll(logs, 0o755); err != nil {
			t.Fatal(err)
		}
		pub, err := peers.StartPublisher(ctx, relay, name, t.Logf, peers.PublisherOptions{LogDir: logs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pub.Kill() })
		recorder := startArchiver(t, ecNode, dir, "record-"+name, relay, name, casRoot, mdir)
		time.Sleep(8 * time.Second)
		stopProc(t, recorder, dir, "record-"+name)
		if err := pub.Stop(); err != nil {
			t.Logf("stopping the live publisher: %v", err)
		}
		n := midClipGaps(t, mdir, name)
		if n == 0 {
			return name
		}
		t.Logf("recording %d has %d gap records before its end", attempt, n)
	}
	t.Fatal("three recordings of the clip lost groups")
	return ""
}

// loss is what a broadcast's manifests say about a window.
type loss struct {
	groups         int      // media groups received in it
	catalogSkipped int      // superseded catalog groups skipped in it
	problems       []string // gap records in it; sequence numbers missing between its groups
}

// manifests reads every track manifest of broadcast, by track.
func manifests(t *testing.T, mdir, broadcast string) map[string][]manifest.Entry {
	t.Helper()
	comp, err := manifest.EscapeName(broadcast)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(mdir, comp, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no manifests (%v)", broadcast, err)
	}
	tracks := map[string][]manifest.Entry{}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		d := manifest.NewDecoder(f)
		for {
			e, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			tracks[e.Track] = append(tracks[e.Track], e)
		}
		f.Close()
	}
	return tracks
}

// midClipGaps counts the gap records of a recording that precede its track's
// last group; those after it are the recording's stop.
func midClipGaps(t *testing.T, mdir, broadcast string) int {
	t.Helper()
	n := 0
	for _, entries := range manifests(t, mdir, broadcast) {
		var last uint64
		for _, e := range entries {
			if e.Kind == record.KindGroup {
				last = max(last, e.Group)
			}
		}
		for _, e := range entries {
			if e.Kind == record.KindGap && e.Last < last {
				n++
			}
		}
	}
	return n
}

// windowLoss judges the groups and gap records of broadcast received between
// start and end.
func windowLoss(t *testing.T, mdir, broadcast string, start, end time.Time) loss {
	t.Helper()
	in := func(ms int64) bool { return ms >= start.UnixMilli() && ms < end.UnixMilli() }
	var l loss
	for track, entries := range manifests(t, mdir, broadcast) {
		var seqs []uint64
		for _, e := range entries {
			switch {
			case !in(e.ReceivedUnixMs):
			case e.Kind == record.KindGap && e.Track == "catalog.json" && e.Reason == record.GapSkipped:
				// At each loop boundary the replay republishes the clip's
				// catalog groups milliseconds apart; the relay hands a
				// live-edge subscriber the newest and skips the superseded.
				l.catalogSkipped++
			case e.Kind == record.KindGap:
				l.problems = append(l.problems, fmt.Sprintf("gap record in the window: track %s groups %d-%d %s", e.Track, e.First, e.Last, e.Reason))
			case e.Kind == record.KindGroup:
				seqs = append(seqs, e.Group)
			}
		}
		if track == "catalog.json" {
			continue // holes are the skipped groups above
		}
		slices.Sort(seqs)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] > seqs[i-1]+1 {
				l.problems = append(l.problems, fmt.Sprintf("track %s: groups %d-%d missing in the window", track, seqs[i-1]+1, seqs[i]-1))
			}
		}
		if !strings.HasPrefix(track, "timeline") {
			l.groups += len(seqs)
		}
	}
	return l
}
