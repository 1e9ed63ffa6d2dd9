package export

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

func (f *fixture) options() Options {
	return Options{ManifestDir: f.manifests, Store: f.store, StoreRoot: f.root, Broadcast: broadcast}
}

func run(t *testing.T, opts Options) (*files, Report, error) {
	t.Helper()
	out := &files{dir: t.TempDir()}
	rep, err := Export(context.Background(), opts, out.open)
	return out, rep, err
}

// TestExportRanges exports one 6 s session by the ways of choosing a range and
// checks each output: both streams, decodes cleanly, the asked duration.
func TestExportRanges(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 6), encode(t, "audio", "", 6)
	f := newFixture(t)
	f.session(t0, 0, video, audio, nil)
	ms := func(d int64) time.Time { return time.UnixMilli(t0 + d) }
	tests := []struct {
		name      string
		rng       Range
		perTrack  bool
		wantFiles int
		wantSecs  float64 // lead track media per file
	}{
		{"everything", Range{}, false, 1, 6},
		{"wall clock", Range{From: ms(1000), To: ms(4000)}, false, 1, 3}, // video groups 1, 2, 3 received after 1 s
		{"open end", Range{From: ms(4500)}, false, 1, 2},
		{"from before the archive", Range{From: ms(-60_000), To: ms(2000)}, false, 1, 2},
		{"group range", Range{Groups: true, First: 2, Last: 3}, false, 1, 2},
		{"media time", Range{Media: true, MediaFrom: 2 * time.Second, MediaTo: 3500 * time.Millisecond}, false, 1, 2},
		{"per track", Range{Groups: true, First: 0, Last: 1}, true, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := f.options()
			opts.Range, opts.PerTrack = tt.rng, tt.perTrack
			out, rep, err := run(t, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.names) != tt.wantFiles || len(rep.Files) != tt.wantFiles {
				t.Fatalf("files %q, report %+v; want %d", out.names, rep.Files, tt.wantFiles)
			}
			if tt.perTrack && (rep.Files[0].Fragments != int(tt.wantSecs)*gop || rep.Files[1].Fragments == 0) {
				t.Errorf("per-track fragments: %+v, want %d video", rep.Files, int(tt.wantSecs)*gop)
			}
			if math.Abs(rep.Files[0].Duration-tt.wantSecs) > 0.05 {
				t.Errorf("report: %.3fs of video, want %.0fs", rep.Files[0].Duration, tt.wantSecs)
			}
			for i := range out.names {
				streams, dur := probe(t, out.path(i))
				want := []string{"video", "audio"}
				if tt.perTrack {
					want = want[i : i+1]
				}
				if !slices.Equal(streams, want) {
					t.Errorf("%s: streams %q, want %q", out.names[i], streams, want)
				}
				if math.Abs(dur-tt.wantSecs) > 0.1 {
					t.Errorf("%s: ffprobe duration %.3fs, want %.0fs", out.names[i], dur, tt.wantSecs)
				}
			}
			if len(rep.Missing) != 0 {
				t.Errorf("missing %+v, want none", rep.Missing)
			}
		})
	}
}

// TestExportFramesExact: the exported video decodes to the same frames as the
// init segment followed by the archived groups, the way a player reads the track.
func TestExportFramesExact(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 4), encode(t, "audio", "", 4)
	f := newFixture(t)
	f.session(t0, 0, video, audio, nil)
	opts := f.options()
	opts.Range = Range{Groups: true, First: 1, Last: 2}
	out, _, err := run(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref.mp4")
	plain := append(slices.Clone(video.init), bytes.Join(video.frags[gop:3*gop], nil)...)
	if err := os.WriteFile(ref, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	got, want := frameHashes(t, out.path(0)), frameHashes(t, ref)
	if len(want) != 2*gop || !slices.Equal(got, want) {
		t.Errorf("exported frames differ from the archived ones:\n got %d %q\nwant %d %q", len(got), got, len(want), want)
	}
}

// TestExportGap: a missing group inside the range is passed over, the decode
// times jump over it, and the report says why it is missing.
func TestExportGap(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 5), encode(t, "audio", "", 5)
	f := newFixture(t)
	f.session(t0, 0, video, audio, map[int]string{2: record.GapDisconnected})
	out, rep, err := run(t, f.options())
	if err != nil {
		t.Fatal(err)
	}
	want := []Missing{{Track: videoTrack, Session: 1, Reason: record.GapDisconnected, Groups: 1}}
	if !slices.Equal(rep.Missing, want) {
		t.Errorf("missing %+v, want %+v", rep.Missing, want)
	}
	// The timeline keeps the hole: 5 s from the first to the last frame, 4 s of it video.
	if d := rep.Files[0].Duration; math.Abs(d-5) > 0.05 {
		t.Errorf("lead span %.3fs, want 5s (the gap kept in the decode times)", d)
	}
	if got := len(frameHashes(t, out.path(0))); got < 4*gop {
		t.Errorf("%d frames decoded, want at least %d", got, 4*gop)
	}
	probe(t, out.path(0))
}

// TestExportPublisherRestart: a publisher that restarts with another
// resolution numbers its groups from 0 again and sends a new catalog. A range
// across it gives two files, each clean; --single-file refuses; a group range
// held by both sessions must name one.
func TestExportPublisherRestart(t *testing.T) {
	v1, a1 := encode(t, "video", "320x240", 3), encode(t, "audio", "", 3)
	v2, a2 := encode(t, "video", "160x120", 3), encode(t, "audio", "", 3)
	f := newFixture(t)
	f.session(t0, 1, v1, a1, nil)      // groups 1..3
	f.session(t0+5000, 0, v2, a2, nil) // groups 0..2, a new catalog

	out, rep, err := run(t, f.options())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.names) != 2 {
		t.Fatalf("files %q, want 2", out.names)
	}
	for i, size := range []string{"320x240", "160x120"} {
		if streams, _ := probe(t, out.path(i)); len(streams) != 2 {
			t.Errorf("%s: streams %q", out.names[i], streams)
		}
		if rep.Files[i].Session != i+1 || math.Abs(rep.Files[i].Duration-3) > 0.05 {
			t.Errorf("file %d: %+v, want session %d, 3 s", i, rep.Files[i], i+1)
		}
		if got := videoSize(t, out.path(i)); got != size {
			t.Errorf("%s: video %s, want %s", out.names[i], got, size)
		}
	}

	list, err := Sessions(context.Background(), f.options())
	var got []string
	for _, si := range list {
		got = append(got, fmt.Sprintf("%s#%d:%d-%d/%d@%d", si.Track, si.Number, si.First, si.Last, si.Groups, si.Received[0].UnixMilli()-t0))
	}
	if want := []string{"0.m4s#1:1-3/3@1000", "0.m4s#2:0-2/3@6000", "1.m4s#1:1-4/4@1007", "1.m4s#2:0-3/4@6007"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("sessions %q, %v; want %q", got, err, want)
	}

	opts := f.options()
	opts.SingleFile = true
	if _, _, err := run(t, opts); err == nil || !strings.Contains(err.Error(), "session 2") {
		t.Errorf("--single-file across a restart: %v, want an error naming the new session", err)
	}

	opts = f.options()
	opts.Range = Range{Groups: true, First: 1, Last: 2}
	if _, _, err := run(t, opts); err == nil || !strings.Contains(err.Error(), "session 1") || !strings.Contains(err.Error(), "session 2") {
		t.Errorf("ambiguous group range: %v, want an error listing both sessions", err)
	}
	opts.Range = Range{Media: true, MediaFrom: time.Second, MediaTo: 2 * time.Second}
	if _, _, err := run(t, opts); err == nil || !strings.Contains(err.Error(), "media time 1s-2s") {
		t.Errorf("ambiguous media range: %v, want an error naming it", err)
	}
	opts.Range = Range{Groups: true, First: 1, Last: 2, Session: 2}
	out, rep, err = run(t, opts)
	if err != nil || len(out.names) != 1 || rep.Files[0].Session != 2 || videoSize(t, out.path(0)) != "160x120" {
		t.Errorf("groups 1-2 of session 2: %v %+v", err, rep.Files)
	}
}

func videoSize(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height", "-of", "csv=s=x:p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestExportCorruptObject: a corrupt object stops the export naming its hash
// and path; with SkipCorrupt it becomes a gap.
func TestExportCorruptObject(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 4), encode(t, "audio", "", 4)
	f := newFixture(t)
	groups := f.session(t0, 0, video, audio, nil)
	bad := groups[1]
	path := filepath.Join(f.root, filepath.FromSlash(bad.Path))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	_, _, err = run(t, f.options())
	var oe *ObjectError
	if !errors.As(err, &oe) || !errors.Is(err, ErrCorrupt) || oe.Hash != bad.BLAKE3 || oe.Path != path ||
		!strings.Contains(err.Error(), bad.BLAKE3) || !strings.Contains(err.Error(), path) {
		t.Fatalf("export of a corrupt object: %v, want an ObjectError naming %s at %s", err, bad.BLAKE3, path)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, _, err = run(t, f.options()); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), bad.BLAKE3) {
		t.Fatalf("export of a missing object: %v", err)
	}

	opts := f.options()
	opts.SkipCorrupt = true
	out, rep, err := run(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []Missing{{Track: videoTrack, Session: 1, Reason: "corrupt", Groups: 1}}
	if !slices.Equal(rep.Missing, want) {
		t.Errorf("missing %+v, want %+v", rep.Missing, want)
	}
	probe(t, out.path(0))
}

// TestExportRefuses: what cannot be exported is refused, saying why.
func TestExportRefuses(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 2), encode(t, "audio", "", 2)
	legacy := newFixture(t)
	legacy.catalog(0, t0, video, audio, "legacy")
	legacy.group(videoTrack, 0, t0+1000, []byte("not fmp4"))

	cmaf := newFixture(t)
	cmaf.session(t0, 0, video, audio, nil)
	tests := []struct {
		name string
		f    *fixture
		edit func(*Options)
		want string
	}{
		{"legacy container", legacy, nil, `container kind "legacy"`},
		{"unknown track", cmaf, func(o *Options) { o.Tracks = []string{"9.m4s"} }, `"9.m4s" is not a rendition`},
		{"empty range", cmaf, func(o *Options) { o.Range.From = time.UnixMilli(t0 + 60_000) }, "holds no group"},
		{"no such broadcast", cmaf, func(o *Options) { o.Broadcast = "other" }, "no archived catalog.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.f.options()
			if tt.edit != nil {
				tt.edit(&opts)
			}
			out, _, err := run(t, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want it to contain %q", err, tt.want)
			}
			if len(out.names) != 0 {
				t.Errorf("files %q written", out.names)
			}
		})
	}
}

// TestExportRefusesLinksAndSpecialFiles: a link or FIFO where a manifest of
// the broadcast belongs fails the export, naming it; the link is not
// followed, the FIFO does not block.
func TestExportRefusesLinksAndSpecialFiles(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 2), encode(t, "audio", "", 2)
	manifesttest.CheckRefused(t, func(t *testing.T) (string, string, func(*manifesttest.Planted)) {
		f := newFixture(t)
		f.session(t0, 0, video, audio, nil)
		rel, _ := manifest.FilePath("", broadcast, videoTrack)
		return f.manifests, rel, func(p *manifesttest.Planted) {
			out, _, err := run(t, f.options())
			p.Refused("Export", err)
			if len(out.names) != 0 {
				t.Errorf("files %q written", out.names)
			}
		}
	})
}

// TestExportCanceled: a canceled export stops between groups with the
// context's error.
func TestExportCanceled(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 3), encode(t, "audio", "", 3)
	f := newFixture(t)
	f.session(t0, 0, video, audio, nil)
	ctx, cancel := context.WithCancel(context.Background())
	opts := f.options()
	opts.Progress = func(p Progress) {
		if p.Groups == 2 {
			cancel()
		}
	}
	out := &files{dir: t.TempDir()}
	if _, err := Export(ctx, opts, out.open); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled export: %v, want context.Canceled", err)
	}
}

// TestExportLeavesOutOtherContainers: with no track named, renditions in
// another container (here a legacy text track) are left out and reported.
func TestExportLeavesOutOtherContainers(t *testing.T) {
	video, audio := encode(t, "video", "320x240", 2), encode(t, "audio", "", 2)
	f := newFixture(t)
	f.session(t0, 0, video, audio, nil)
	doc := fmt.Sprintf(`{"video":{"renditions":{%q:{"codec":"avc1","container":{"kind":"cmaf","init":%q}}}},"text":{"renditions":{"captions":{}}}}`,
		videoTrack, base64.StdEncoding.EncodeToString(video.init))
	f.group(catalog.TrackName, 1, t0+500, []byte(doc))
	out, rep, err := run(t, f.options())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NotExported) != 1 || !strings.Contains(rep.NotExported[0], `"captions" has container kind "legacy"`) {
		t.Errorf("not exported: %q, want the captions track named", rep.NotExported)
	}
	if streams, _ := probe(t, out.path(0)); !slices.Equal(streams, []string{"video"}) {
		t.Errorf("streams %q, want the video only", streams)
	}
}
