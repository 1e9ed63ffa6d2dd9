//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// videoTrack is the video track moq-cli's fmp4 import publishes.
const videoTrack = "0.m4s"

// TestReliabilityCrashWTArchive SIGKILLs `ec-node wt-archive` at random moments
// of a live broadcast (20 times, 100 in soak mode) and restarts it each time.
// After every kill the CAS verifies and every manifest line names an existing
// object of matching size and hash with no duplicate; torn lines injected now
// and then are repaired by the next run. At the end every sequence of every
// track is archived once or covered by a gap record, and the groups lost per
// outage stay within the group in flight plus those that passed while down.
func TestReliabilityCrashWTArchive(t *testing.T) {
	kills := bySoak(20, 100)
	ctx, cancel := context.WithTimeout(context.Background(), bySoak(3*time.Minute, 20*time.Minute))
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	relay, _ := startLive(t, ctx, dir, "crash.hang")
	root := filepath.Join(dir, "archive")
	cas, mdir := root+"/cas", root+"/manifests"
	arch := newArchiver(t, dir, "wt-archive", relay.URL("anon"), "crash.hang", cas, mdir,
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--announce-wait", "10s")

	videoGroups := func() int {
		n := 0
		for _, e := range readManifests(t, mdir)[trackKey{"crash.hang", videoTrack}] {
			if e.Kind == record.KindGroup {
				n++
			}
		}
		return n
	}
	arch.start()
	waitFor(t, "the first video group", time.Minute, func() (bool, string) { return videoGroups() > 0, "" })

	var faults []time.Time
	torn, tornInjected := 0, 0
	for i := range kills {
		if ctx.Err() != nil {
			t.Fatalf("out of time after %d kills", i)
		}
		if i > 0 {
			arch.start()
		}
		time.Sleep(time.Duration(300+rng.IntN(2700)) * time.Millisecond)
		if !arch.running() {
			t.Fatalf("wt-archive exited by itself before kill %d\n%s", i+1, lastLines(arch.logText(), 20))
		}
		arch.kill()
		faults = append(faults, time.Now())
		torn += checkStores(t, cas, mdir)
		if i%5 == 4 && tearRandomManifest(t, rng, mdir) {
			tornInjected++
		}
	}

	// A last run must repair every torn line, archive again, and stop cleanly.
	arch.start()
	before := videoGroups()
	// 12 groups: past the 10 s in which a catch-up from the relay's cache holds
	// back its gap decisions.
	waitFor(t, "12 video groups after the last restart", time.Minute, func() (bool, string) { return videoGroups() >= before+12, "" })
	// Every restart came back within the relay's cache window, so the groups
	// missed while down were all taken from the cache. (The clean stop below
	// may record the groups in flight at that moment.)
	if gaps := gapRecords(readManifests(t, mdir)); len(gaps) > 0 {
		t.Errorf("gap records after %d kills within the relay's cache window: %q", kills, gaps)
	}
	if err := arch.stop(); err != nil {
		t.Fatalf("wt-archive after %d kills: %v\n%s", kills, err, lastLines(arch.logText(), 20))
	}
	if n := checkStores(t, cas, mdir); n != 0 {
		t.Fatalf("%d torn lines left after the last run", n)
	}
	lost, report := crashLosses(t, readManifests(t, mdir), faults)
	figure(t, "crash wt-archive", "seed %d; %d SIGKILLs survived; torn tails seen after kills %d, injected %d, all repaired; stores verified clean after every kill",
		seed, kills, torn, tornInjected)
	figure(t, "crash wt-archive", "%s", report)
	figure(t, "crash wt-archive", "track subscriptions from the relay's cache: %d; range back-fills: %d",
		strings.Count(arch.logText(), "subscribed from the relay's cache"), strings.Count(arch.logText(), "back-filled missed groups"))
	if lost.exceeded > 0 {
		t.Errorf("%d outages lost more than the groups in flight plus those that passed while down", lost.exceeded)
	}
}

// gapRecords lists every gap record as "track first-last reason".
func gapRecords(manifests map[trackKey][]manifest.Entry) []string {
	var gaps []string
	for k, entries := range manifests {
		for _, e := range entries {
			if e.Kind == record.KindGap {
				gaps = append(gaps, fmt.Sprintf("%s %d-%d %s", k.track, e.First, e.Last, e.Reason))
			}
		}
	}
	slices.Sort(gaps)
	return gaps
}

// lossSummary totals lossPerOutage over the video track.
type lossSummary struct {
	outages, lost, bound, exceeded, maxLost int
}

// crashLosses accounts every track and summarises the video track's losses.
func crashLosses(t *testing.T, manifests map[trackKey][]manifest.Entry, faults []time.Time) (lossSummary, string) {
	t.Helper()
	var s lossSummary
	var lines []string
	for k, entries := range manifests {
		a := account(t, k.track, entries)
		lines = append(lines, fmt.Sprintf("%s: %d groups, %d gap records covering %d groups", k.track, a.groups, len(a.gaps), a.gapGroups))
		if k.track != videoTrack {
			continue
		}
		for _, o := range lossPerOutage(a, faults) {
			s.outages++
			s.lost += o.lost
			s.bound += o.bound
			s.maxLost = max(s.maxLost, o.lost)
			if o.lost > o.bound {
				s.exceeded++
				t.Logf("outage lost %d groups, bound %d (down %v)", o.lost, o.bound, o.down.Round(time.Millisecond))
			}
		}
	}
	perKill := 0.0
	if len(faults) > 0 {
		perKill = float64(s.lost) / float64(len(faults))
	}
	lines = append(lines, fmt.Sprintf("gap records: %q", gapRecords(manifests)))
	lines = append(lines, fmt.Sprintf("video groups lost: %d over %d kills (%.2f per kill), %d outages, max %d in one outage; bound (in flight + passed while down) %d in total, exceeded in %d outages",
		s.lost, len(faults), perKill, s.outages, s.maxLost, s.bound, s.exceeded))
	return s, strings.Join(lines, "; ")
}

// TestReliabilityCrashLivePipeline SIGKILLs each stage of the live pipeline
// `moq-sub --resume-manifest-dir | cas-put --records | manifest-append` in turn
// (2 times each, 10 in soak mode) and restarts the whole pipeline, as a shell
// loop or a service manager would: the other stages must exit by themselves,
// the stores must stay consistent after every kill, and the final archive must
// account for every sequence.
func TestReliabilityCrashLivePipeline(t *testing.T) {
	perStage := bySoak(2, 10)
	ctx, cancel := context.WithTimeout(context.Background(), bySoak(2*time.Minute, 15*time.Minute))
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 3))
	dir := t.TempDir()
	relay, _ := startLive(t, ctx, dir, "pipe.hang")
	root := filepath.Join(dir, "archive")
	cas, mdir := root+"/cas", root+"/manifests"
	stages := []string{"moq-sub", "cas-put", "manifest-append"}
	for _, s := range stages {
		buildBinary(t, s)
	}
	run := 0
	startPipeline := func() *pipeline {
		run++
		runDir := filepath.Join(dir, fmt.Sprint("run", run))
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := newPipeline(t, runDir,
			exec.Command(buildBinary(t, "moq-sub"), "--url", relay.URL("anon"), "--name", "pipe.hang",
				"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--resume-manifest-dir", mdir),
			exec.Command(buildBinary(t, "cas-put"), "--root", cas, "--records"),
			exec.Command(buildBinary(t, "manifest-append"), "--manifest-dir", mdir))
		p.start()
		t.Cleanup(func() { p.signal(syscall.SIGKILL) })
		return p
	}

	var faults []time.Time
	var cascade []time.Duration // victim killed -> every other stage exited
	torn := 0
	for i := range perStage * len(stages) {
		if ctx.Err() != nil {
			t.Fatalf("out of time after %d kills", i)
		}
		victim := i % len(stages)
		p := startPipeline()
		time.Sleep(time.Duration(1000+rng.IntN(3000)) * time.Millisecond)
		_ = p.cmds[victim].Process.Signal(syscall.SIGKILL)
		killed := time.Now()
		faults = append(faults, killed)
		exited := make(chan struct{})
		go func() {
			for _, c := range p.cmds {
				_ = c.Wait()
			}
			close(exited)
		}()
		select {
		case <-exited:
			cascade = append(cascade, time.Since(killed))
		case <-time.After(15 * time.Second):
			p.signal(syscall.SIGKILL)
			<-exited
			t.Errorf("kill %d of %s: the other stages did not exit within 15s", i+1, stages[victim])
		}
		torn += checkStores(t, cas, mdir)
	}

	p := startPipeline()
	before := len(readManifests(t, mdir)[trackKey{"pipe.hang", videoTrack}])
	waitFor(t, "12 video records after the last restart (past the catch-up hold)", time.Minute, func() (bool, string) {
		return len(readManifests(t, mdir)[trackKey{"pipe.hang", videoTrack}]) >= before+12, ""
	})
	if gaps := gapRecords(readManifests(t, mdir)); len(gaps) > 0 {
		t.Errorf("gap records after %d kills within the relay's cache window: %q", len(faults), gaps)
	}
	p.signal(syscall.SIGTERM)
	p.wait()
	if n := checkStores(t, cas, mdir); n != 0 {
		t.Fatalf("%d torn lines left after the last run", n)
	}
	_, report := crashLosses(t, readManifests(t, mdir), faults)
	figure(t, "crash pipeline", "seed %d; %d SIGKILLs (%d per stage of %s) survived; torn tails seen %d; other stages exited after the kill in p50 %v, max %v",
		seed, len(faults), perStage, strings.Join(stages, " | "), torn, percentile(cascade, 50).Round(time.Millisecond), percentile(cascade, 100).Round(time.Millisecond))
	figure(t, "crash pipeline", "%s", report)
}
