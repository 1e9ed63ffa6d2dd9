package replay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/every-channel/ec-node/pkg/replay"
)

// fakeSink records what a replay publishes.
type fakeSink struct {
	mu        sync.Mutex
	infos     map[string]moq.TrackInfo
	published []published
	closed    map[string]bool
	announced bool
	waitedFor []string
	waitedAt  int // groups published when WaitSubscribed was called
	stopAfter int // cancel after this many groups (0: never)
	cancel    context.CancelFunc
}

type published struct {
	track string
	group moq.OutGroup
}

func newFakeSink() *fakeSink {
	return &fakeSink{infos: map[string]moq.TrackInfo{}, closed: map[string]bool{}}
}

func (s *fakeSink) Track(name string, info moq.TrackInfo) (replay.TrackSink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.infos[name] = info
	return fakeTrack{s, name}, nil
}

func (s *fakeSink) Announce() error { s.announced = true; return nil }

func (s *fakeSink) WaitSubscribed(_ context.Context, tracks []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitedFor, s.waitedAt = tracks, len(s.published)
	return nil
}

type fakeTrack struct {
	s    *fakeSink
	name string
}

func (t fakeTrack) WriteGroup(_ context.Context, g moq.OutGroup) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.published = append(t.s.published, published{t.name, g})
	if t.s.stopAfter > 0 && len(t.s.published) == t.s.stopAfter {
		t.s.cancel()
	}
	return nil
}

func (t fakeTrack) Close() { t.s.closed[t.name] = true }

// archiveFixture stores groups in a CAS and writes their manifests.
type archiveFixture struct {
	t        *testing.T
	casRoot  string
	manifest string
	store    *cas.Local
	dir      *manifest.Dir
}

func newFixture(t *testing.T) *archiveFixture {
	root := t.TempDir()
	store, err := cas.OpenLocal(filepath.Join(root, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := manifest.OpenDir(filepath.Join(root, "manifests"), 16, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	return &archiveFixture{t: t, casRoot: filepath.Join(root, "cas"), manifest: filepath.Join(root, "manifests"), store: store, dir: dir}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// group archives one group of frames received at ms.
func (f *archiveFixture) group(track string, seq uint64, ms int64, frames ...string) manifest.Entry {
	f.t.Helper()
	payload := strings.Join(frames, "")
	res, err := f.store.Put(context.Background(), strings.NewReader(payload))
	if err != nil {
		f.t.Fatal(err)
	}
	e := manifest.Entry{Header: record.Header{V: 1, Kind: record.KindGroup, Broadcast: "live/show", Track: track,
		Group: seq, Size: int64(len(payload)), ReceivedUnixMs: ms}, BLAKE3: res.ID.String(), Path: res.Path}
	for _, fr := range frames {
		e.Frames = append(e.Frames, int64(len(fr)))
	}
	if _, err := f.dir.Append("live/show", track, e); err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *archiveFixture) gap(track string, first, last uint64, ms int64) {
	f.t.Helper()
	e := manifest.Entry{Header: record.Header{V: 1, Kind: record.KindGap, Broadcast: "live/show", Track: track,
		First: first, Last: last, Reason: record.GapDisconnected, ReceivedUnixMs: ms}}
	if _, err := f.dir.Append("live/show", track, e); err != nil {
		f.t.Fatal(err)
	}
}

const catalogJSON = `{"video":{"renditions":{"v":{"codec":"avc1","container":{"kind":"cmaf","init":""}}}}}`

func (f *archiveFixture) standard() {
	f.group("catalog.json", 0, 1000, catalogJSON)
	// A publisher updates its catalog right after the first one (moq-cli does):
	// the update must come after the wait for subscribers, or it reaches nobody.
	f.group("catalog.json", 1, 1003, catalogJSON+" ")
	f.group("v", 10, 1100, "key", "p1", "p2")
	f.group("a", 3, 1120, "aac")
	f.group("a", 4, 1140, "aac2")
	f.gap("v", 11, 12, 1500)
	f.group("v", 13, 2100, "key2")
}

func (f *archiveFixture) plan(r replay.Range) *replay.Plan {
	f.t.Helper()
	a, err := replay.Load(f.manifest, "live/show")
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := a.PlanRange(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *archiveFixture) run(ctx context.Context, p *replay.Plan, sink *fakeSink, opts replay.Options) (replay.Stats, error) {
	opts.StoreRoot, opts.Logger = f.casRoot, quiet()
	return replay.Run(ctx, f.store, p, sink, opts)
}

func summary(ps []published) []string {
	var out []string
	for _, p := range ps {
		var frames []string
		for _, fr := range p.group.Frames {
			frames = append(frames, string(fr.Payload))
		}
		out = append(out, p.track+"#"+strconv.FormatUint(p.group.Sequence, 10)+":"+strings.Join(frames, "|"))
	}
	return out
}

func TestReplayPublishesArchiveInOrder(t *testing.T) {
	f := newFixture(t)
	f.standard()
	p := f.plan(replay.Range{})
	if p.Gaps != 1 || p.Groups != 6 {
		t.Fatalf("plan: %d groups, %d gaps; want 6, 1", p.Groups, p.Gaps)
	}
	sink := newFakeSink()
	stats, err := f.run(context.Background(), p, sink, replay.Options{Speed: 0, WaitSubscribers: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Original sequences (the gap 11-12 stays a gap), original frame boundaries.
	want := []string{"catalog.json#0:" + catalogJSON, "catalog.json#1:" + catalogJSON + " ", "v#10:key|p1|p2", "a#3:aac", "a#4:aac2", "v#13:key2"}
	if got := summary(sink.published); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("published\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if stats.Groups != 6 || stats.Passes != 1 || !sink.announced {
		t.Fatalf("stats %+v, announced %v", stats, sink.announced)
	}
	if strings.Join(sink.waitedFor, ",") != "v" || sink.waitedAt != 1 {
		t.Fatalf("waited for %v after %d groups, want the catalog's archived media track v after the catalog",
			sink.waitedFor, sink.waitedAt)
	}
	for _, tr := range []string{"catalog.json", "v", "a"} {
		if !sink.closed[tr] {
			t.Errorf("track %s not ended", tr)
		}
	}
	// Without lite-05 timestamps in the archive, frames carry the received
	// time since the start, in the default timescale (ms).
	if ts := sink.published[5].group.Frames[0].Timestamp; ts != 1100 || sink.infos["v"].Timescale != 1000 {
		t.Fatalf("derived timestamp %d (timescale %d), want 1100 (1000)", ts, sink.infos["v"].Timescale)
	}
}

func TestReplayRangeStartsWithCatalogInForce(t *testing.T) {
	f := newFixture(t)
	f.standard()
	for _, tc := range []struct {
		name string
		r    replay.Range
		want []string
	}{
		{"by time", replay.Range{From: time.UnixMilli(1130), To: time.UnixMilli(2100)},
			[]string{"catalog.json#1", "a#4", "v#13"}},
		{"by groups", replay.Range{ByGroups: true, Track: "a", First: 3, Last: 3},
			[]string{"catalog.json#1", "a#3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newFakeSink()
			if _, err := f.run(context.Background(), f.plan(tc.r), sink, replay.Options{}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range summary(sink.published) {
				got = append(got, s[:strings.IndexByte(s, ':')])
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReplayLoopContinuesSequencesAndTimestamps(t *testing.T) {
	f := newFixture(t)
	f.group("v", 10, 1000, "a")
	f.group("v", 11, 2000, "b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := newFakeSink()
	sink.stopAfter, sink.cancel = 5, cancel
	stats, err := f.run(ctx, f.plan(replay.Range{}), sink, replay.Options{Loop: true})
	if !errors.Is(err, context.Canceled) && err != nil {
		t.Fatal(err)
	}
	var seqs, stamps []uint64
	for _, p := range sink.published[:5] {
		seqs = append(seqs, p.group.Sequence)
		stamps = append(stamps, p.group.Frames[0].Timestamp)
	}
	// Span 2 groups per pass; a pass lasts 1 s plus one average spacing (1 s).
	if want := []uint64{10, 11, 12, 13, 14}; !equal(seqs, want) {
		t.Fatalf("sequences %v, want %v", seqs, want)
	}
	if want := []uint64{0, 1000, 2000, 3000, 4000}; !equal(stamps, want) {
		t.Fatalf("timestamps %v, want %v", stamps, want)
	}
	if stats.Passes < 3 {
		t.Fatalf("passes %d", stats.Passes)
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReplayCorruptObject(t *testing.T) {
	for _, damage := range []string{"flipped", "missing"} {
		t.Run(damage, func(t *testing.T) {
			f := newFixture(t)
			f.group("v", 1, 1000, "good")
			bad := f.group("v", 2, 1100, "will be damaged")
			f.group("v", 3, 1200, "after")
			path := filepath.Join(f.casRoot, filepath.FromSlash(bad.Path))
			if damage == "missing" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, bytes.Repeat([]byte("x"), int(bad.Size)), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			sink := newFakeSink()
			_, err := f.run(context.Background(), f.plan(replay.Range{}), sink, replay.Options{})
			var corrupt *replay.CorruptError
			if !errors.As(err, &corrupt) || corrupt.ID != bad.BLAKE3 || corrupt.Path != path ||
				!strings.Contains(err.Error(), bad.BLAKE3) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want a CorruptError naming %s and %s", err, bad.BLAKE3, path)
			}
			if len(sink.published) != 1 {
				t.Fatalf("published %d groups before stopping, want 1", len(sink.published))
			}

			sink = newFakeSink()
			stats, err := f.run(context.Background(), f.plan(replay.Range{}), sink, replay.Options{SkipCorrupt: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(sink.published); strings.Join(got, ",") != "v#1:good,v#3:after" || stats.Skipped != 1 {
				t.Fatalf("with SkipCorrupt: %v, skipped %d", got, stats.Skipped)
			}
		})
	}
}

// TestLoadRefusesLinksAndSpecialFiles: a link or FIFO among the broadcast's
// manifests fails the load, naming it (a replay without one of its tracks
// would publish holes nobody recorded); the link is not followed, the FIFO
// does not block.
func TestLoadRefusesLinksAndSpecialFiles(t *testing.T) {
	manifesttest.CheckRefused(t, func(t *testing.T) (string, string, func(*manifesttest.Planted)) {
		f := newFixture(t)
		f.standard()
		rel, _ := manifest.FilePath("", "live/show", "v")
		return f.manifest, rel, func(p *manifesttest.Planted) {
			_, err := replay.Load(f.manifest, "live/show")
			p.Refused("Load", err)
		}
	})
}
