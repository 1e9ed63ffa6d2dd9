package segment

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// memBucket is a create-only key store in memory: the contract of Bucket,
// which s3cas.Store keeps against a real server (its tests).
type memBucket struct {
	mu   sync.Mutex
	keys map[string][]byte
}

func newMemBucket() *memBucket { return &memBucket{keys: map[string][]byte{}} }

func (b *memBucket) PutKey(_ context.Context, key string, body []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.keys[key]; ok {
		return false, nil
	}
	b.keys[key] = bytes.Clone(body)
	return true, nil
}

func (b *memBucket) GetKey(_ context.Context, key string, limit int64) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.keys[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	if int64(len(v)) > limit {
		return nil, fmt.Errorf("%s: too large", key)
	}
	return bytes.Clone(v), nil
}

func (b *memBucket) ListKeys(_ context.Context, prefix string, fn func(string) error) error {
	b.mu.Lock()
	var keys []string
	for k := range b.keys {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	b.mu.Unlock()
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

type fixture struct {
	t    *testing.T
	dir  string
	mdir *manifest.Dir
	next map[string]uint64
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	d, err := manifest.OpenDir(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &fixture{t: t, dir: dir, mdir: d, next: map[string]uint64{}}
}

// appendGaps appends n entries to broadcast's track (gap lines: no objects needed).
func (f *fixture) appendGaps(broadcast, track string, n int) {
	f.t.Helper()
	for range n {
		seq := f.next[broadcast+track]
		f.next[broadcast+track] += 2
		h := record.Header{V: 1, Kind: record.KindGap, Broadcast: broadcast, Track: track,
			First: seq, Last: seq, Reason: record.GapStoreFailed, ReceivedUnixMs: 1}
		if _, err := f.mdir.Append(broadcast, track, manifest.Entry{Header: h}); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) file(broadcast, track string) []byte {
	f.t.Helper()
	p, err := manifest.FilePath(f.dir, broadcast, track)
	if err != nil {
		f.t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

func fetch(t *testing.T, b Bucket, broadcast, track string) ([]byte, int, error) {
	t.Helper()
	var out bytes.Buffer
	n, err := Fetch(context.Background(), b, "host-a", broadcast, track, &out)
	return out.Bytes(), n, err
}

func ship(t *testing.T, s *Shipper, want int) {
	t.Helper()
	n, err := s.Ship(context.Background())
	if err != nil || n != want {
		t.Fatalf("Ship = %d, %v; want %d segments", n, err, want)
	}
}

func TestShipAndFetch(t *testing.T) {
	f := newFixture(t)
	b := newMemBucket()
	s := &Shipper{Bucket: b, ManifestDir: f.dir, Origin: "host-a"}
	ship(t, s, 0) // nothing yet

	f.appendGaps("live/alice", "video0.m4s", 3)
	f.appendGaps("bob", "audio0.m4s", 2)
	ship(t, s, 2)
	ship(t, s, 0) // nothing new: nothing sealed

	f.appendGaps("live/alice", "video0.m4s", 4)
	// A torn last line (a crash mid-append) is not sealed.
	p, _ := manifest.FilePath(f.dir, "live/alice", "video0.m4s")
	whole := f.file("live/alice", "video0.m4s")
	torn, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	torn.WriteString(`{"v":1,"kind":"ga`)
	torn.Close()
	ship(t, s, 1)

	for _, tc := range []struct {
		broadcast, track string
		want             []byte
		segments         int
	}{
		{"live/alice", "video0.m4s", whole, 2},
		{"bob", "audio0.m4s", f.file("bob", "audio0.m4s"), 1},
	} {
		got, n, err := fetch(t, b, tc.broadcast, tc.track)
		if err != nil || n != tc.segments || !bytes.Equal(got, tc.want) {
			t.Errorf("%s/%s: Fetch = %d segments, %v, %q; want %d segments of the file's %d complete bytes",
				tc.broadcast, tc.track, n, err, got, tc.segments, len(tc.want))
		}
	}
	tracks, err := Tracks(context.Background(), b, "host-a")
	if err != nil || len(tracks) != 2 {
		t.Errorf("Tracks = %q, %v", tracks, err)
	}

	// A restarted shipper (no memory) finds the chain's end by listing.
	os.Truncate(p, int64(len(whole)))
	fresh := &Shipper{Bucket: b, ManifestDir: f.dir, Origin: "host-a"}
	ship(t, fresh, 0)
	f.appendGaps("live/alice", "video0.m4s", 1)
	ship(t, fresh, 1)
	if got, n, err := fetch(t, b, "live/alice", "video0.m4s"); err != nil || n != 3 || !bytes.Equal(got, f.file("live/alice", "video0.m4s")) {
		t.Errorf("after a restart: Fetch = %d segments, %v", n, err)
	}
}

// TestTwoShippersOfOneFile: a second shipper whose view is stale finds its
// next segment taken (create-only), adopts it and ships only what follows.
func TestTwoShippersOfOneFile(t *testing.T) {
	f := newFixture(t)
	b := newMemBucket()
	one, two := &Shipper{Bucket: b, ManifestDir: f.dir, Origin: "host-a"}, &Shipper{Bucket: b, ManifestDir: f.dir, Origin: "host-a"}
	f.appendGaps("b", "t", 2)
	ship(t, one, 1)
	ship(t, two, 0)
	f.appendGaps("b", "t", 2)
	ship(t, one, 1)
	f.appendGaps("b", "t", 2)
	ship(t, two, 1)
	if got, n, err := fetch(t, b, "b", "t"); err != nil || n != 3 || !bytes.Equal(got, f.file("b", "t")) {
		t.Fatalf("Fetch = %d segments, %v; want 3 covering the file", n, err)
	}
}

func TestFetchDetectsBrokenChains(t *testing.T) {
	dir, _ := Dir("host-a", "b", "t")
	for name, breakIt := range map[string]func(b *memBucket){
		"segment missing": func(b *memBucket) { delete(b.keys, key(dir, 1)) },
		"sealed bytes edited": func(b *memBucket) {
			b.keys[key(dir, 1)] = bytes.Replace(b.keys[key(dir, 1)], []byte(`"first":`), []byte(`"first": `), 1)
		},
		"predecessor edited": func(b *memBucket) {
			b.keys[key(dir, 0)] = bytes.Replace(b.keys[key(dir, 0)], []byte(`store-failed`), []byte(`store-FAILED`), 1)
		},
		"segment swapped in from another track": func(b *memBucket) {
			other, _ := Dir("host-a", "b", "other")
			b.keys[key(dir, 2)] = b.keys[key(other, 0)]
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			b := newMemBucket()
			s := &Shipper{Bucket: b, ManifestDir: f.dir, Origin: "host-a"}
			for range 3 {
				f.appendGaps("b", "t", 2)
				f.appendGaps("b", "other", 1)
				ship(t, s, 2)
			}
			if _, _, err := fetch(t, b, "b", "t"); err != nil {
				t.Fatalf("intact chain: %v", err)
			}
			breakIt(b)
			if _, n, err := fetch(t, b, "b", "t"); err == nil {
				t.Fatalf("Fetch of a broken chain succeeded (%d segments)", n)
			}
		})
	}
}

// TestOriginsKeepTheirOwnChains: two hosts archiving the same broadcast (R = 2)
// into one bucket ship different manifest files of the same track; each
// reads back its own.
func TestOriginsKeepTheirOwnChains(t *testing.T) {
	b := newMemBucket()
	fa, fb := newFixture(t), newFixture(t)
	fa.appendGaps("b", "t", 3)
	fb.appendGaps("b", "t", 1)
	fb.appendGaps("b", "t", 5) // different lines, different lengths
	ship(t, &Shipper{Bucket: b, ManifestDir: fa.dir, Origin: "host-a"}, 1)
	ship(t, &Shipper{Bucket: b, ManifestDir: fb.dir, Origin: "host-b"}, 1)
	for origin, f := range map[string]*fixture{"host-a": fa, "host-b": fb} {
		var out bytes.Buffer
		if n, err := Fetch(context.Background(), b, origin, "b", "t", &out); err != nil || n != 1 || !bytes.Equal(out.Bytes(), f.file("b", "t")) {
			t.Errorf("%s: Fetch = %d segments, %v; want its own file", origin, n, err)
		}
	}
}

// TestShipRefusesLinksAndSpecialFiles: a link or FIFO where a manifest file
// or broadcast directory may be is not shipped, followed or opened; Ship
// reports it, naming it, and ships the other files (one file's failure does
// not stop the others).
func TestShipRefusesLinksAndSpecialFiles(t *testing.T) {
	manifesttest.CheckRefused(t, func(t *testing.T) (string, string, func(*manifesttest.Planted)) {
		f := newFixture(t)
		f.appendGaps("live/alice", "video0.m4s", 2)
		f.appendGaps("bob", "audio0.m4s", 2)
		rel, _ := manifest.FilePath("", "live/alice", "video0.m4s")
		return f.dir, rel, func(p *manifesttest.Planted) {
			b := newMemBucket()
			n, err := (&Shipper{Bucket: b, ManifestDir: f.dir, Origin: "host-a"}).Ship(context.Background())
			p.Refused("Ship", err)
			if n != 1 {
				t.Errorf("Ship wrote %d segments, want 1", n)
			}
			if tracks, err := Tracks(context.Background(), b, "host-a"); err != nil || !slices.Equal(tracks, [][2]string{{"bob", "audio0.m4s"}}) {
				t.Errorf("shipped %q, %v; want only bob/audio0.m4s", tracks, err)
			}
		}
	})
}
