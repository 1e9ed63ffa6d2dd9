//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// archiveWindow is how long each real-peer archive run records.
const archiveWindow = 8 * time.Second

// TestWTArchiveRealPeers archives a live H.264+AAC broadcast published by the
// real moq-cli through the real moq-relay, once per moq-lite version (the
// relay is restricted to it), both in-process (ec-node wt-archive) and through
// the shell pipeline (moq-sub | cas-put --records | manifest-append), and checks
// the archive: objects verify, manifests are consistent, every group the
// publisher sent in the window is there without a hole, and init + frames of
// each media track decode with ffmpeg for the expected duration.
func TestWTArchiveRealPeers(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	moqSub := buildBinary(t, "moq-sub")
	casPut := buildBinary(t, "cas-put")
	manifestAppend := buildBinary(t, "manifest-append")
	for _, version := range []string{"moq-lite-06", "moq-lite-05", "moq-lite-04", "moq-lite-03"} {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			relay, _ := startLive(t, ctx, dir, "e2e.hang", version)

			inproc := filepath.Join(dir, "inproc")
			archiver := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", "e2e.hang",
				"--tls-fingerprint", relay.Fingerprint(),
				"--output-dir", inproc+"/cas", "--manifest-dir", inproc+"/manifests")
			archiver.Stderr = logFile(t, dir, "wt-archive.log")

			pipe := filepath.Join(dir, "pipeline")
			pipeline := newPipeline(t, dir,
				exec.Command(moqSub, "--url", relay.URL("anon"), "--name", "e2e.hang", "--tls-fingerprint", relay.Fingerprint(),
					"--session-log-dir", pipe+"/manifests"),
				exec.Command(casPut, "--root", pipe+"/cas", "--records"),
				exec.Command(manifestAppend, "--manifest-dir", pipe+"/manifests"))

			if err := archiver.Start(); err != nil {
				t.Fatal(err)
			}
			pipeline.start()
			time.Sleep(archiveWindow)
			if err := archiver.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// As Ctrl-C in a shell does: every stage gets the signal. moq-sub
			// stops; the others drain their input and exit cleanly.
			pipeline.signal(syscall.SIGTERM)
			if err := archiver.Wait(); err != nil {
				t.Fatalf("wt-archive: %v\n%s", err, readFile(dir, "wt-archive.log"))
			}
			pipeline.wait()
			for _, root := range []string{inproc, pipe} {
				checkArchive(t, root, "e2e.hang", archiveWindow)
			}
			// --protocol auto (the default) against a relay of one moq-lite version.
			for root, tool := range map[string]string{inproc: "wt-archive", pipe: "moq-sub"} {
				checkSessionLog(t, filepath.Join(root, "manifests"), sessionWant{broadcast: "e2e.hang", tool: tool, protocol: "moq-lite", version: version})
			}
		})
	}
}

// checkArchive verifies an archive of one broadcast made over window.
func checkArchive(t *testing.T, root, broadcast string, window time.Duration) {
	t.Helper()
	ctx := context.Background()
	store, err := cas.OpenLocal(root + "/cas")
	if err != nil {
		t.Fatal(err)
	}
	v, err := store.Verify(ctx, cas.VerifyOptions{})
	if err != nil || !v.Clean() {
		t.Fatalf("%s: cas verify: %+v %v", root, v, err)
	}
	mc, err := manifest.Check(ctx, root+"/manifests", store, manifest.CheckOptions{Rehash: true})
	if err != nil || !mc.Clean() {
		t.Fatalf("%s: manifest check: %+v %v", root, mc, err)
	}

	// The catalog group open when the archiver stopped is recorded as a gap, so
	// the catalog in force is the last group entry, not the last line.
	catalogs := slices.DeleteFunc(readManifest(t, root+"/manifests", broadcast, catalog.TrackName),
		func(e manifest.Entry) bool { return e.Kind == record.KindGap })
	if len(catalogs) == 0 {
		t.Fatalf("%s: no catalog archived", root)
	}
	last := catalogs[len(catalogs)-1]
	data := readObject(t, store, last.BLAKE3)
	c, err := catalog.Parse(data[:last.Frames[0]])
	if err != nil {
		t.Fatalf("%s: archived catalog: %v", root, err)
	}
	media := 0
	for _, track := range c.Tracks {
		init, ok := c.Init[track]
		if !ok {
			continue // not a CMAF media track (e.g. the timeline)
		}
		media++
		entries := readManifest(t, root+"/manifests", broadcast, track)
		var seqs []uint64
		var gaps []manifest.Entry
		for _, e := range entries {
			if e.Kind == record.KindGap {
				gaps = append(gaps, e)
				continue
			}
			seqs = append(seqs, e.Group)
		}
		slices.Sort(seqs)
		// The only gap allowed is the group in flight when the archiver was
		// stopped: it was not archived, and the manifest says so.
		for _, g := range gaps {
			if len(seqs) == 0 || g.First <= seqs[len(seqs)-1] || g.Reason != record.GapDisconnected {
				t.Errorf("%s %s: unexpected gap %+v", root, track, g.Header)
			}
		}
		entries = slices.DeleteFunc(entries, func(e manifest.Entry) bool { return e.Kind == record.KindGap })
		if len(seqs) < 3 {
			t.Fatalf("%s %s: only %d groups in %s", root, track, len(seqs), window)
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Errorf("%s %s: hole between groups %d and %d", root, track, seqs[i-1], seqs[i])
			}
		}
		checkPlayable(t, store, root, track, init, entries)
	}
	if media < 2 {
		t.Fatalf("%s: catalog names %d CMAF media tracks, want video and audio: %q", root, media, c.Tracks)
	}
}

// checkPlayable concatenates the init segment and every group's bytes in group
// order and requires ffmpeg to decode the result without an error, for as long
// as the groups hold: the publisher cuts a group per second of media (video:
// one 1 s GOP, -g = fps in internal/peers; audio: about 1 s of AAC frames).
func checkPlayable(t *testing.T, store *cas.Local, root, track string, init []byte, entries []manifest.Entry) {
	t.Helper()
	slices.SortFunc(entries, func(a, b manifest.Entry) int { return int(a.Group) - int(b.Group) })
	var mp4 bytes.Buffer
	mp4.Write(init)
	for _, e := range entries {
		mp4.Write(readObject(t, store, e.BLAKE3))
	}
	path := filepath.Join(root, track+".mp4")
	if err := os.WriteFile(path, mp4.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("%s: ffmpeg decode: %v\n%s", path, err, out)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=start_time,duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("%s: ffprobe: %v", path, err)
	}
	var start, end float64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(probe)), "%g,%g", &start, &end); err != nil {
		t.Fatalf("%s: ffprobe start_time,duration %q: %v", path, probe, err)
	}
	// A late joiner's first fragment starts where the publisher's clock is,
	// not at zero; what was archived is the span from there.
	duration := end - start
	if want := float64(len(entries)); duration < want-0.1 || duration > want*1.02+0.1 {
		t.Errorf("%s: %.2fs of media (from %.2fs) in %d groups of about 1 s", path, duration, start, len(entries))
	}
	t.Logf("%s: %d groups, %.2fs, decodes cleanly", filepath.Base(path), len(entries), duration)
}

// pipeline runs commands connected stdout to stdin, as a shell pipe does.
type pipeline struct {
	t    *testing.T
	dir  string
	cmds []*exec.Cmd
}

func newPipeline(t *testing.T, dir string, cmds ...*exec.Cmd) *pipeline {
	t.Helper()
	for i, c := range cmds {
		c.Stderr = logFile(t, dir, filepath.Base(c.Path)+".log")
		if i > 0 {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmds[i-1].Stdout, c.Stdin = w, r
			t.Cleanup(func() { r.Close(); w.Close() })
		}
	}
	return &pipeline{t: t, dir: dir, cmds: cmds}
}

func (p *pipeline) start() {
	p.t.Helper()
	for _, c := range p.cmds {
		if err := c.Start(); err != nil {
			p.t.Fatal(err)
		}
		// The child has its copies; ours would keep the pipes open.
		if f, ok := c.Stdin.(*os.File); ok {
			f.Close()
		}
		if f, ok := c.Stdout.(*os.File); ok {
			f.Close()
		}
	}
}

func (p *pipeline) signal(sig syscall.Signal) {
	for _, c := range p.cmds {
		_ = c.Process.Signal(sig)
	}
}

// wait requires every stage to exit 0.
func (p *pipeline) wait() {
	p.t.Helper()
	for _, c := range p.cmds {
		err := c.Wait()
		if err != nil {
			name := filepath.Base(c.Path)
			p.t.Errorf("%s: %v\n%s", name, err, readFile(p.dir, name+".log"))
		}
	}
}

func readManifest(t *testing.T, dir, broadcast, track string) []manifest.Entry {
	t.Helper()
	path, err := manifest.FilePath(dir, broadcast, track)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []manifest.Entry
	d := manifest.NewDecoder(f)
	for {
		e, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e)
	}
}

func readObject(t *testing.T, store *cas.Local, hash string) []byte {
	t.Helper()
	id, err := cas.ParseID(hash)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func logFile(t *testing.T, dir, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(dir, name string) string {
	data, _ := os.ReadFile(filepath.Join(dir, name))
	return string(data)
}
