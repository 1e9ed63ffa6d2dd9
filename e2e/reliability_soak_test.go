//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/peers"
)

// TestReliabilitySoak (soak mode only: EC_SOAK=1) archives several live
// broadcasts with one wt-archive each for EC_SOAK_DURATION (default 1h),
// restarting the relay every 5 minutes, and samples each archiver's RSS and
// open file descriptors every 30s (shorter durations scale these down) (wt-archive does not expose its goroutine
// count). After a 5 minute warm-up neither may keep growing; at the end the
// archive must verify and account for every sequence.
func TestReliabilitySoak(t *testing.T) {
	if !soakMode() {
		t.Skip("soak mode only (EC_SOAK=1 or scripts/reliability.sh --long)")
	}
	duration := time.Hour
	if d, err := time.ParseDuration(os.Getenv("EC_SOAK_DURATION")); err == nil {
		duration = d
	}
	const broadcasts = 3
	faultEvery, sampleEvery, warmUp := min(5*time.Minute, duration/3), min(30*time.Second, duration/20), min(5*time.Minute, duration/4)
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Kill() })
	root := filepath.Join(dir, "archive")
	var archs []*archiverProc
	for i := range broadcasts {
		name := fmt.Sprintf("soak%d.hang", i)
		pubDir := filepath.Join(dir, name)
		if err := os.MkdirAll(pubDir, 0o755); err != nil {
			t.Fatal(err)
		}
		pub, err := peers.StartPublisher(ctx, relay, name, t.Logf, peers.PublisherOptions{LogDir: pubDir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pub.Kill() })
		a := newArchiver(t, dir, "wt-archive-"+name, relay.URL("anon"), name, root+"/cas", root+"/manifests",
			"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "2s")
		a.start()
		archs = append(archs, a)
	}

	type sample struct{ rss, fds int64 }
	samples := make([][]sample, broadcasts)
	atWarmUp := make([]sample, broadcasts)
	start, nextFault, restarts := time.Now(), time.Now().Add(faultEvery), 0
	for time.Since(start) < duration {
		time.Sleep(sampleEvery)
		for i, a := range archs {
			if !a.running() {
				t.Fatalf("wt-archive %d exited\n%s", i, lastLines(a.logText(), 20))
			}
			s := sample{procStatusKB(t, a.cmd.Process.Pid, "VmRSS"), fdCount(a.cmd.Process.Pid)}
			samples[i] = append(samples[i], s)
			if time.Since(start) < warmUp {
				atWarmUp[i] = s
			}
		}
		if time.Now().After(nextFault) {
			if err := relay.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			restarts++
			nextFault = time.Now().Add(faultEvery)
		}
	}
	for i, a := range archs {
		if err := a.stop(); err != nil {
			t.Errorf("wt-archive %d: %v", i, err)
		}
		last := samples[i][len(samples[i])-1]
		var peak sample
		for _, s := range samples[i] {
			peak.rss, peak.fds = max(peak.rss, s.rss), max(peak.fds, s.fds)
		}
		figure(t, "soak", "wt-archive %d over %v with %d relay restarts: RSS %d KiB after warm-up, %d KiB at the end, peak %d KiB; open fds %d after warm-up, %d at the end, peak %d",
			i, duration, restarts, atWarmUp[i].rss, last.rss, peak.rss, atWarmUp[i].fds, last.fds, peak.fds)
		if last.rss > atWarmUp[i].rss*3/2+10<<10 || last.fds > atWarmUp[i].fds+8 {
			t.Errorf("wt-archive %d grows: RSS %d -> %d KiB, fds %d -> %d", i, atWarmUp[i].rss, last.rss, atWarmUp[i].fds, last.fds)
		}
	}
	if n := checkStores(t, root+"/cas", root+"/manifests"); n != 0 {
		t.Errorf("%d torn lines after clean stops", n)
	}
	for k, entries := range readManifests(t, root+"/manifests") {
		a := account(t, k.broadcast+"/"+k.track, entries)
		if k.track == videoTrack {
			figure(t, "soak", "%s video: %d groups, %d gap records covering %d groups", k.broadcast, a.groups, len(a.gaps), a.gapGroups)
		}
	}
}

// procStatusKB reads a "kB" field of /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("/proc/%d/status: no %s", pid, field)
	return 0
}

// fdCount counts the open file descriptors of a process.
func fdCount(pid int) int64 {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return int64(len(entries))
}
