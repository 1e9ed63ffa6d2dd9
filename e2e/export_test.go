//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// TestExportRealPeers archives a live H.264+AAC broadcast from the real
// moq-relay while the real moq-cli exports the same broadcast (`moq export
// fmp4`), then exports with ec-node:
//
//  1. a 10 s sub-range: both streams, a duration within one GOP (1 s) of the
//     span, a clean decode, and the same decoded frames as the reference;
//  2. a range across a relay restart (a gap): one clean file, the gap reported;
//  3. a range across a publisher restart at another resolution (a catalog
//     change): two files, each clean, each at its resolution;
//  4. a media-time range;
//  5. a range over a corrupt object: exit 1 naming it, no file left.
func TestExportRealPeers(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	bin, err := peers.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	const name = "export.hang"
	relay, pub := startLive(t, ctx, dir, name)

	out := filepath.Join(dir, "archive")
	archiver := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", name,
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--announce-wait", "10s",
		"--output-dir", out+"/cas", "--manifest-dir", out+"/manifests")
	archiver.Stderr = logFile(t, dir, "wt-archive.log")
	refPath := filepath.Join(dir, "reference.mp4")
	ref := exec.Command(filepath.Join(bin, "moq"), "--connect", relay.URL("anon"),
		"--connect-tls-fingerprint", relay.Fingerprint(), "export", "--broadcast", name, "fmp4")
	ref.Stdout = logFile(t, dir, "reference.mp4")
	ref.Stderr = logFile(t, dir, "reference.log")
	for _, c := range []*exec.Cmd{archiver, ref} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
	}

	const video = "0.m4s"
	groups := func() []manifest.Entry {
		var gs []manifest.Entry
		for _, e := range readManifest(t, out+"/manifests", name, video) {
			if e.Kind == record.KindGroup {
				gs = append(gs, e)
			}
		}
		return gs
	}
	waitFor(t, "20 video groups", time.Minute, func() (bool, string) { n := len(groups()); return n >= 20, strconv.Itoa(n) })
	_ = ref.Process.Signal(syscall.SIGINT)
	ref.Wait()
	export := func(args ...string) (files []string, stderr string) {
		t.Helper()
		o := filepath.Join(t.TempDir(), "out.mp4")
		cmd := exec.Command(ecNode, append([]string{"export", "--root", out + "/cas", "--manifest-dir", out + "/manifests",
			"--broadcast", name, "-o", o}, args...)...)
		var errBuf bytes.Buffer
		cmd.Stderr = &errBuf
		if err := cmd.Run(); err != nil {
			t.Fatalf("ec-node export %q: %v\n%s", args, err, errBuf.String())
		}
		t.Logf("ec-node export %q:\n%s", args, errBuf.String())
		// out.mp4, out-2.mp4, ... (docs/export.md)
		files, _ = filepath.Glob(strings.TrimSuffix(o, ".mp4") + "*.mp4")
		slices.SortStableFunc(files, func(a, b string) int { return len(a) - len(b) })
		return files, errBuf.String()
	}
	ms := func(v int64) string { return strconv.FormatInt(v, 10) }

	// 1. A 10 s sub-range, starting between the 4th and 5th group.
	gs := groups()
	from := (gs[3].ReceivedUnixMs + gs[4].ReceivedUnixMs) / 2
	files, _ := export("--from", ms(from), "--to", ms(from+10_000))
	if len(files) != 1 {
		t.Fatalf("sub-range: files %q, want 1", files)
	}
	// The same range as a pipeline stage: the same bytes on stdout.
	piped, err := exec.Command(ecNode, "export", "--root", out+"/cas", "--manifest-dir", out+"/manifests",
		"--broadcast", name, "-o", "-", "--from", ms(from), "--to", ms(from+10_000)).Output()
	if written, _ := os.ReadFile(files[0]); err != nil || !bytes.Equal(piped, written) {
		t.Errorf("export to stdout: %v, %d bytes; the file has %d", err, len(piped), len(written))
	}
	streams, span := probeExport(t, files[0])
	if !slices.Equal(streams, []string{"video", "audio"}) || span < 9 || span > 11 {
		t.Errorf("sub-range: streams %q, %.3f s; want video and audio, 10 s within one GOP", streams, span)
	}
	got, want := videoFrameHashes(t, files[0]), videoFrameHashes(t, refPath)
	at := slices.Index(want, got[0])
	if at < 0 {
		t.Fatalf("the export's first frame is not in moq export's output (%d frames)", len(want))
	}
	n := min(len(got), len(want)-at)
	if n < len(got)*9/10 || !slices.Equal(got[:n], want[at:at+n]) {
		t.Errorf("frames differ from moq export's over the %d overlapping frames (export %d, reference %d from frame %d)", n, len(got), len(want), at)
	}
	t.Logf("sub-range: %.3f s, %d frames, identical to moq export's frames %d..%d", span, len(got), at, at+n-1)

	// 2. A relay restart: the archive holds a gap, unless the archiver took the
	// groups missed meanwhile from the caches of the new relay and the
	// publisher (docs/manifest.md, "Back-fill from the relay's cache").
	before := groups()
	if err := relay.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := relay.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 video groups after the relay restart", time.Minute, func() (bool, string) { return len(groups()) >= len(before)+3, "" })
	after := groups()
	files, stderr := export("--from", ms(before[len(before)-3].ReceivedUnixMs), "--to", ms(after[len(before)+2].ReceivedUnixMs))
	gap := strings.Contains(stderr, "missing in the range")
	if len(files) != 1 {
		t.Errorf("relay restart: files %q, want 1", files)
	}
	for _, f := range files {
		streams, span = probeExport(t, f)
		// A hole stays in the timeline: the span exceeds the frames by at
		// least the 3 s the relay was down.
		frames := len(videoFrameHashes(t, f))
		if hole := span - float64(frames)/30; gap && hole < 3 {
			t.Errorf("relay restart: %.3f s span for %d frames: the gap is not in the decode times", span, frames)
		}
		t.Logf("relay restart: %q, %.3f s span, %d frames, gap reported: %v", streams, span, frames, gap)
	}

	// 3. A publisher restart at another resolution.
	if err := pub.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now().UnixMilli()
	pub2, err := peers.StartPublisher(ctx, relay, name, t.Logf, peers.PublisherOptions{LogDir: t.TempDir(), Size: "160x120"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub2.Kill() })
	newGroups := func() int {
		n := 0
		for _, e := range groups() {
			if e.ReceivedUnixMs > restarted {
				n++
			}
		}
		return n
	}
	waitFor(t, "3 video groups of the new publisher", time.Minute, func() (bool, string) { return newGroups() >= 3, "" })
	files, _ = export("--from", ms(restarted-4000))
	if len(files) != 2 {
		t.Fatalf("publisher restart: files %q, want 2", files)
	}
	list, err := exec.Command(ecNode, "manifest", "sessions", "--root", out+"/cas", "--manifest-dir", out+"/manifests",
		"--broadcast", name, "--track", video).Output()
	if lines := strings.Split(strings.TrimSpace(string(list)), "\n"); err != nil || len(lines) != 2 {
		t.Errorf("manifest sessions: %v\n%s; want 2 sessions of %s", err, list, video)
	}
	for i, size := range []string{"320x240", "160x120"} {
		probeExport(t, files[i])
		if got := probeSize(t, files[i]); got != size {
			t.Errorf("%s: video %s, want %s", files[i], got, size)
		}
	}

	if err := archiver.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := archiver.Wait(); err != nil {
		t.Fatalf("wt-archive: %v\n%s", err, readFile(dir, "wt-archive.log"))
	}

	// The new session by group numbers (it starts at 0 again), one file per track.
	files, _ = export("--groups", "0-1000", "--session", "2", "--per-track")
	if len(files) != 2 {
		t.Fatalf("session 2 per track: files %q, want 2", files)
	}
	for _, f := range files {
		streams, _ := probeExport(t, f)
		if len(streams) != 1 {
			t.Errorf("%s: streams %q, want one", f, streams)
		}
	}
	if got := probeSize(t, files[0]); got != "160x120" {
		t.Errorf("%s: video %s, want 160x120", files[0], got)
	}

	// 4. A media-time range: groups whose first frame is at 20-24.9 s of the
	// first publisher's timeline (it is past 40 s), about 5 s.
	files, _ = export("--media-from", "20s", "--media-to", "24.9")
	if len(files) != 1 {
		t.Fatalf("media range: files %q, want 1", files)
	}
	if _, span := probeExport(t, files[0]); span < 4 || span > 6 {
		t.Errorf("media range 20-24.9 s: %.3f s, want about 5 s", span)
	}
	t.Logf("media range: timestamps in the manifest: %v", gs[0].Timescale > 0)

	// 5. A corrupt object in the range stops the export, naming it, and
	// leaves no file behind.
	bad := gs[6]
	path := filepath.Join(out, "cas", filepath.FromSlash(bad.Path))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	o := filepath.Join(t.TempDir(), "out.mp4")
	cmd := exec.Command(ecNode, "export", "--root", out+"/cas", "--manifest-dir", out+"/manifests",
		"--broadcast", name, "-o", o, "--from", ms(from), "--to", ms(from+10_000))
	msg, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(msg), bad.BLAKE3) || !strings.Contains(string(msg), path) {
		t.Errorf("export over a corrupt object: exit %d, %v\n%s\nwant exit 1 naming %s at %s", code, err, msg, bad.BLAKE3, path)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(o), "*")); len(left) != 0 {
		t.Errorf("files left by the failed export: %q", left)
	}
	t.Logf("corrupt object: %s", strings.TrimSpace(string(msg)))
}

// probeExport requires ffmpeg to decode path without a message and returns
// its streams and the span of its timeline in seconds.
func probeExport(t *testing.T, path string) (streams []string, span float64) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("%s: ffmpeg decode: %v\n%s", path, err, out)
	}
	pr, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type:format=start_time,duration", "-of", "default=nw=1", path).Output()
	if err != nil {
		t.Fatalf("%s: ffprobe: %v", path, err)
	}
	var start, duration float64
	for _, line := range strings.Split(strings.TrimSpace(string(pr)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "codec_type":
			streams = append(streams, v)
		case "start_time":
			start, _ = strconv.ParseFloat(v, 64)
		case "duration":
			duration, _ = strconv.ParseFloat(v, 64)
		}
	}
	if start != 0 {
		t.Logf("%s: starts at %.3f s", path, start)
	}
	return streams, duration
}

func probeSize(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height", "-of", "csv=s=x:p=0", path).Output()
	if err != nil {
		t.Fatalf("%s: ffprobe: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// videoFrameHashes decodes the video of path and returns each frame's MD5
// (ffmpeg -f framemd5); a reference cut short at its end still yields the
// frames before the cut.
func videoFrameHashes(t *testing.T, path string) []string {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-f", "framemd5", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("%s: framemd5: %v\n%s", path, err, stderr.String())
	}
	var hashes []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		hashes = append(hashes, strings.TrimSpace(fields[len(fields)-1]))
	}
	if len(hashes) == 0 {
		t.Fatalf("%s: no frames decoded\n%s", path, stderr.String())
	}
	return hashes
}
