//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
)

// TestReliabilityDiskFaults runs wt-archive against a live broadcast with the
// CAS root and the manifest root on two small tmpfs filesystems, and in turn:
// fills the CAS filesystem, fills the manifest filesystem, makes the CAS root
// read-only, and removes the whole manifest root. In each fault wt-archive must
// log a clear error, publish no partial object and no manifest line for an
// object that is not stored, keep the manifests consistent, and resume by
// itself once the fault is gone (space freed, read-write again; a removed
// manifest root is recreated).
func TestReliabilityDiskFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	casFS, manFS := filepath.Join(dir, "casfs"), filepath.Join(dir, "manfs")
	mountTmpfs(t, casFS, "8m")
	mountTmpfs(t, manFS, "1m")
	relay, _ := startLive(t, ctx, dir, "disk.hang")
	casRoot, mdir := casFS+"/cas", manFS+"/manifests"
	arch := newArchiver(t, dir, "wt-archive", relay.URL("anon"), "disk.hang", casRoot, mdir,
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "2s", "--announce-wait", "10s")
	arch.start()
	video := func() []manifest.Entry { return readManifests(t, mdir)[trackKey{"disk.hang", videoTrack}] }
	waitFor(t, "the first video groups", time.Minute, func() (bool, string) { return groupCount(video()) >= 2, "" })

	faults := []struct {
		name, logs string // logs: what the error must say
		apply      func() // start the fault
		clear      func() // end it
	}{
		{"CAS filesystem full", "no space left on device",
			func() { fill(t, casFS+"/filler") }, func() { remove(t, casFS+"/filler") }},
		{"manifest filesystem full", "no space left on device",
			func() { fill(t, manFS+"/filler") }, func() { remove(t, manFS+"/filler") }},
		{"CAS root read-only", "read-only file system",
			func() { readOnlyBind(t, casRoot) }, func() { run(t, "umount", casRoot) }},
		{"manifest root removed", "",
			func() { remove(t, mdir) }, func() {}},
	}
	for _, f := range faults {
		before := strings.Count(arch.logText(), f.logs)
		f.apply()
		start := time.Now()
		if f.logs != "" {
			waitFor(t, fmt.Sprintf("%s: %q in the log", f.name, f.logs), 30*time.Second, func() (bool, string) {
				return strings.Count(arch.logText(), f.logs) > before, ""
			})
			figure(t, "disk", "%s: error logged after %v: %s", f.name, time.Since(start).Round(time.Millisecond),
				firstLineWith(arch.logText(), f.logs, before))
			time.Sleep(2 * time.Second) // let it retry against the fault
			checkStores(t, casRoot, mdir)
		}
		if !arch.running() {
			t.Fatalf("%s: wt-archive exited\n%s", f.name, lastLines(arch.logText(), 20))
		}
		f.clear()
		cleared := time.Now()
		var first time.Time
		waitFor(t, f.name+": a video group archived after the fault ended", time.Minute, func() (bool, string) {
			first = firstGroupAfterTime(video(), cleared)
			return !first.IsZero(), ""
		})
		figure(t, "disk", "%s: resumed by itself; first video group archived %v after the fault ended",
			f.name, first.Sub(cleared).Round(time.Millisecond))
	}
	if err := arch.stop(); err != nil {
		t.Fatalf("wt-archive: %v\n%s", err, lastLines(arch.logText(), 20))
	}
	if n := checkStores(t, casRoot, mdir); n != 0 {
		t.Fatalf("%d torn lines after a clean stop", n)
	}
	for k, entries := range readManifests(t, mdir) {
		account(t, k.track, entries)
	}
	vr, err := cas.Verify(ctx, casRoot, cas.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	figure(t, "disk", "after all faults: cas verify clean (%d objects, %d temp files left), manifest check with rehash clean, every sequence since the manifest root was recreated accounted for",
		vr.Objects, vr.Temp)
}

// mountTmpfs mounts a tmpfs of size on dir for the test; it skips the test when
// mounting is not allowed here (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { unmountAll(t, dir) })
}

// unmountAll unmounts everything stacked on dir.
func unmountAll(t *testing.T, dir string) {
	for range 4 {
		if exec.Command("mountpoint", "-q", dir).Run() != nil {
			return
		}
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			return
		}
	}
}

// fill writes a file until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// readOnlyBind stacks a read-only bind mount of dir on itself. A plain
// `mount -o remount,ro` of the tmpfs is refused (EBUSY) while wt-archive holds
// files open for writing there, as it always does; through the read-only bind
// every new open, create, mkdir and rename under dir fails with EROFS, which is
// what a filesystem gone read-only looks like to the next object written.
func readOnlyBind(t *testing.T, dir string) {
	t.Helper()
	run(t, "mount", "--bind", dir, dir)
	run(t, "mount", "-o", "remount,bind,ro", dir)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// firstLineWith returns the first log line containing what after skip earlier ones.
func firstLineWith(log, what string, skip int) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, what) {
			if skip == 0 {
				return line
			}
			skip--
		}
	}
	return ""
}
