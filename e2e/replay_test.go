//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// replayWindow is how long the live broadcast is archived before it is
// replayed. The issue asks for ~30 s; the default 10 s keeps the three
// versions near a minute and still spans nine whole groups of each track
// (moq-cli cuts about one group per second of media). EC_REPLAY_WINDOW=30s
// runs the full length.
var replayWindow = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("EC_REPLAY_WINDOW")); err == nil && d > 0 {
		return d
	}
	return 10 * time.Second
}()

// TestReplayRoundTripRealPeers archives a live moq-cli broadcast from the real
// moq-relay, replays it into the same relay under a new name at --speed 1,
// and archives the replay into the same CAS: every group of every media track
// must come back as the same object (a dedup hit, so the store gains no
// object), group for group. A real third-party subscriber (`moq export fmp4`)
// reads the replay, and ffmpeg must decode it to the same frames as the live
// broadcast it exported in the same run. Once per moq-lite version the relay
// is restricted to.
func TestReplayRoundTripRealPeers(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	for _, version := range []string{"moq-lite-06", "moq-lite-05", "moq-lite-04", "moq-lite-03"} {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := t.TempDir()
			casRoot, mdir := filepath.Join(dir, "cas"), filepath.Join(dir, "manifests")
			relay, pub := startLive(t, ctx, dir, "live.hang", version)

			// 1. The original: archived by wt-archive, exported by moq-cli.
			archiver := startArchiver(t, ecNode, dir, "archive-live", relay, "live.hang", casRoot, mdir)
			liveExport := startExport(t, dir, relay, "live.hang", "live.mp4")
			time.Sleep(replayWindow)
			stopProc(t, archiver, dir, "archive-live")
			stopExport(t, liveExport)
			if err := pub.Stop(); err != nil {
				t.Logf("stopping the live publisher: %v", err)
			}
			objectsBefore := countObjects(t, casRoot)

			// 2. The replay, archived into the same store and exported.
			replayer := exec.Command(ecNode, "replay", "--url", relay.URL("anon"), "--tls-fingerprint", relay.Fingerprint(),
				"--name", "replay.hang", "--from-broadcast", "live.hang", "--output-dir", casRoot, "--manifest-dir", mdir,
				"--speed", "1", "--wait-subscribers", "30s", "--log-level", "debug")
			replayer.Stderr = logFile(t, dir, "replay.log")
			started := time.Now()
			if err := replayer.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = replayer.Process.Kill() })
			archiver = startArchiver(t, ecNode, dir, "archive-replay", relay, "replay.hang", casRoot, mdir)
			replayExport := startExport(t, dir, relay, "replay.hang", "replay.mp4")
			if err := replayer.Wait(); err != nil {
				t.Fatalf("replay: %v\n%s", err, lastLines(readFile(dir, "replay.log"), 30))
			}
			t.Logf("replay ran %s for a %s archive", time.Since(started).Round(time.Millisecond), replayWindow)
			// The relay accepts only version, so this is what the publisher spoke.
			if log := readFile(dir, "replay.log"); !strings.Contains(log, "version="+version) {
				t.Fatalf("replay did not publish on %s:\n%s", version, lastLines(log, 30))
			}
			time.Sleep(time.Second) // the last groups reach the subscribers
			stopProc(t, archiver, dir, "archive-replay")
			stopExport(t, replayExport)

			// 3. The store: clean, and not one object more.
			if out, err := exec.Command(ecNode, "cas", "verify", "--root", casRoot, "--progress", "never").CombinedOutput(); err != nil {
				t.Fatalf("cas verify: %v\n%s", err, out)
			}
			store, err := cas.OpenLocal(casRoot)
			if err != nil {
				t.Fatal(err)
			}
			mc, err := manifest.Check(ctx, mdir, store, manifest.CheckOptions{Rehash: true})
			if err != nil || !mc.Clean() {
				t.Fatalf("manifest check: %+v %v", mc, err)
			}
			if after := countObjects(t, casRoot); after != objectsBefore {
				t.Errorf("the replay's archive added %d objects; every group should be a dedup hit", after-objectsBefore)
			}

			// 4. Group for group, the same objects.
			media := compareArchives(t, store, mdir, "live.hang", "replay.hang")

			// 5. A real subscriber decodes the replay to the live frames.
			compareExports(t, dir, "live.mp4", "replay.mp4", media)
		})
	}
}

func startArchiver(t *testing.T, ecNode, dir, name string, relay *peers.Relay, broadcast, casRoot, mdir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", broadcast,
		"--tls-fingerprint", relay.Fingerprint(), "--output-dir", casRoot, "--manifest-dir", mdir,
		"--announce-wait", "2s", "--max-backoff", "500ms")
	cmd.Stderr = logFile(t, dir, name+".log")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

func stopProc(t *testing.T, cmd *exec.Cmd, dir, name string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, lastLines(readFile(dir, name+".log"), 30))
	}
}

// moqExport is `moq ... export fmp4` writing one broadcast to a file.
type moqExport struct {
	cmd  *exec.Cmd
	path string
}

func startExport(t *testing.T, dir string, relay *peers.Relay, broadcast, file string) *moqExport {
	t.Helper()
	bin, err := peers.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, file)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd := exec.Command(filepath.Join(bin, "moq"), "--connect", relay.URL("anon"),
		"--connect-tls-fingerprint", relay.Fingerprint(), "export", "--broadcast", broadcast, "fmp4")
	cmd.Stdout = out
	cmd.Stderr = logFile(t, dir, file+".export.log")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return &moqExport{cmd: cmd, path: path}
}

// stopExport ends moq export; it may already have exited when the broadcast
// ended.
func stopExport(t *testing.T, e *moqExport) {
	t.Helper()
	_ = e.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
}

func countObjects(t *testing.T, casRoot string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(casRoot, "objects"), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(path, ".bin") {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// compareArchives requires every media track of the replay's archive to hold
// exactly the original's groups: the same sequences, each the same object.
// It returns the media track count.
func compareArchives(t *testing.T, store *cas.Local, mdir, original, replayed string) int {
	t.Helper()
	catalogs := readManifest(t, mdir, original, catalog.TrackName)
	if len(catalogs) == 0 {
		t.Fatal("no catalog archived")
	}
	cat, err := catalog.Parse(readObject(t, store, catalogs[len(catalogs)-1].BLAKE3))
	if err != nil {
		t.Fatal(err)
	}
	media := 0
	for _, track := range append([]string{catalog.TrackName}, cat.Tracks...) {
		if _, ok := cat.Init[track]; !ok && track != catalog.TrackName {
			continue
		}
		if track != catalog.TrackName {
			media++
		}
		orig := groupsOf(t, mdir, original, track)
		got := groupsOf(t, mdir, replayed, track)
		var missing, wrong []uint64
		for seq, hash := range orig {
			switch h, ok := got[seq]; {
			case !ok:
				missing = append(missing, seq)
			case h != hash:
				wrong = append(wrong, seq)
			}
		}
		var extra []uint64
		for seq := range got {
			if _, ok := orig[seq]; !ok {
				extra = append(extra, seq)
			}
		}
		slices.Sort(missing)
		// A catalog update superseded within milliseconds may be skipped by a
		// live-edge subscriber (wt-archive asks for max latency 0), in the
		// original as in the replay; the media tracks must be complete.
		var superseded []uint64
		if track == catalog.TrackName {
			superseded, missing = missing, nil
		}
		if len(missing) > 0 || len(wrong) > 0 || len(extra) > 0 {
			t.Errorf("%s: of %d original groups, replay archive misses %v, differs on %v, adds %v",
				track, len(orig), missing, wrong, extra)
		}
		if len(superseded) > 0 {
			t.Logf("%s: superseded updates %v not in the replay's archive", track, superseded)
		}
		t.Logf("%s: %d groups replayed, each the original object", track, len(got))
		for _, e := range readManifest(t, mdir, original, track) {
			if e.Kind == record.KindGap {
				t.Logf("%s: the original archive has a gap %d-%d (%s)", track, e.First, e.Last, e.Reason)
			}
		}
		// The replay's archive may only have gaps where the original has no
		// group (the sequence skips them, so wt-archive records them as skipped),
		// and the group in flight when it was stopped.
		for _, e := range readManifest(t, mdir, replayed, track) {
			if e.Kind != record.KindGap {
				continue
			}
			if e.Reason == record.GapDisconnected && e.First > maxKey(got) {
				continue
			}
			for seq := e.First; seq <= e.Last; seq++ {
				if _, ok := orig[seq]; ok && !slices.Contains(superseded, seq) {
					t.Errorf("%s: the replay's archive has a gap %+v over original group %d", track, e.Header, seq)
					break
				}
			}
			t.Logf("%s: gap %d-%d (%s) in the replay's archive, where the original has no group either", track, e.First, e.Last, e.Reason)
		}
	}
	if media < 2 {
		t.Fatalf("catalog names %d CMAF media tracks, want video and audio", media)
	}
	return media
}

func groupsOf(t *testing.T, mdir, broadcast, track string) map[uint64]string {
	out := map[uint64]string{}
	for _, e := range readManifest(t, mdir, broadcast, track) {
		if e.Kind == record.KindGroup {
			out[e.Group] = e.BLAKE3
		}
	}
	return out
}

func maxKey(m map[uint64]string) uint64 {
	var n uint64
	for k := range m {
		n = max(n, k)
	}
	return n
}

// compareExports decodes both exports with ffmpeg: the replay's must decode
// without an error, last about as long as the archive, and its frames must
// hash (framemd5) like the live export's wherever both hold the frame.
func compareExports(t *testing.T, dir, live, replayed string, streams int) {
	t.Helper()
	for _, f := range []string{live, replayed} {
		out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, f), "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("ffmpeg decode %s: %v\n%s", f, err, out)
		}
	}
	start, end := probeDuration(t, filepath.Join(dir, replayed))
	duration := end - start
	if min, max := replayWindow.Seconds()-3, replayWindow.Seconds()+2; duration < min || duration > max {
		t.Errorf("%s: %.2fs of media, want %.0f-%.0fs (the archived window)", replayed, duration, min, max)
	}
	t.Logf("%s: %.2fs of media from %.2fs, decodes cleanly", replayed, duration, start)
	liveFrames, replayFrames := frameMD5(t, dir, live), frameMD5(t, dir, replayed)
	for stream := range streams {
		key := fmt.Sprint(stream)
		var same, differ, only int
		for pts, hash := range replayFrames[key] {
			switch h, ok := liveFrames[key][pts]; {
			case !ok:
				only++
			case h == hash:
				same++
			default:
				differ++
			}
		}
		t.Logf("stream %d: %d replayed frames, %d identical to the live export, %d differ, %d outside it",
			stream, len(replayFrames[key]), same, differ, only)
		if same < len(replayFrames[key])/2 || differ > 0 {
			t.Errorf("stream %d: %d of %d replayed frames match the live export, %d differ", stream, same, len(replayFrames[key]), differ)
		}
	}
}

// probeDuration returns ffprobe's start_time and duration of the file; the
// duration counts from 0, so the media spans start..duration.
func probeDuration(t *testing.T, path string) (float64, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=start_time,duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var probe struct {
		Format struct {
			Start    float64 `json:"start_time,string"`
			Duration float64 `json:"duration,string"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	return probe.Format.Start, probe.Format.Duration
}

// frameMD5 maps stream index -> pts -> md5 of the decoded frame.
func frameMD5(t *testing.T, dir, file string) map[string]map[string]string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, file), "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg framemd5 %s: %v", file, err)
	}
	frames := map[string]map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		// stream, dts, pts, duration, size, hash
		f := strings.Split(line, ",")
		if len(f) != 6 {
			continue
		}
		stream, pts, hash := strings.TrimSpace(f[0]), strings.TrimSpace(f[2]), strings.TrimSpace(f[5])
		if frames[stream] == nil {
			frames[stream] = map[string]string{}
		}
		frames[stream][pts] = hash
	}
	return frames
}
