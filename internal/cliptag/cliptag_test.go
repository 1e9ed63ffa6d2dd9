package cliptag

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// box is an ISO-BMFF box of type typ around parts.
func box(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

// The source broadcast: one CMAF group of two frames, one catalog group.
var (
	frame0 = append(box("moof", []byte("m0")), box("mdat", []byte("frame zero"))...)
	frame1 = append(box("moof", []byte("m1")), box("mdat", []byte("one"))...)
	groups = map[string][][]byte{
		"0.m4s":        {frame0, frame1},
		"catalog.json": {[]byte(`{"video":{}}`)},
	}
)

// archiveSource archives groups, each followed by a gap line, as broadcast
// "src"; it returns the store and the manifest directory.
func archiveSource(t *testing.T) (*cas.Local, string) {
	t.Helper()
	dir := t.TempDir()
	storeDir, mdir := filepath.Join(dir, "cas"), filepath.Join(dir, "manifests")
	s, err := cas.OpenLocal(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := manifest.OpenDir(mdir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for track, frames := range groups {
		res, err := cas.Put(context.Background(), s, bytes.NewReader(bytes.Join(frames, nil)))
		if err != nil {
			t.Fatal(err)
		}
		e := manifest.Entry{Header: record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: "src", Track: track, Size: res.Size}, BLAKE3: res.ID.String(), Path: res.Path}
		for _, f := range frames {
			e.Frames = append(e.Frames, int64(len(f)))
		}
		gap := manifest.Entry{Header: record.Header{V: record.Version, Kind: record.KindGap, Broadcast: "src", Track: track, First: 1, Last: 1, Reason: record.GapReset}}
		if _, err := d.Append("src", track, e, gap); err != nil {
			t.Fatal(err)
		}
	}
	return s, mdir
}

// TestDerive: each copy's CMAF groups are unique to it and differ from the
// source only by a free box after the first frame; other groups are shared;
// the copies' manifests match their objects.
func TestDerive(t *testing.T) {
	ctx := context.Background()
	s, mdir := archiveSource(t)
	if err := Derive(ctx, s, mdir, "src", "c%d", 1, 2); err != nil {
		t.Fatal(err)
	}
	src, err := manifest.ReadFile(mdir, "src", "0.m4s")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{src[0].BLAKE3: "src"} // broadcast of each video group's object
	for _, name := range []string{"c1", "c2"} {
		for track, frames := range groups {
			es, err := manifest.ReadFile(mdir, name, track)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 2 || es[0].Broadcast != name || es[1].Kind != record.KindGap || es[1].Broadcast != name {
				t.Fatalf("%s/%s: entries %+v", name, track, es)
			}
			e := es[0]
			got := readObject(t, s, e.BLAKE3)
			var sum int64
			for _, n := range e.Frames {
				sum += n
			}
			if sum != e.Size || int64(len(got)) != e.Size {
				t.Errorf("%s/%s: frames sum %d, size %d, object %d bytes", name, track, sum, e.Size, len(got))
			}
			want := bytes.Join(frames, nil)
			if track == "catalog.json" {
				if !bytes.Equal(got, want) {
					t.Errorf("%s/%s: a group that is not CMAF was changed", name, track)
				}
				continue
			}
			if e.Frames[0] != int64(len(frame0))+FreeBoxSize {
				t.Errorf("%s/%s: first frame %d bytes", name, track, e.Frames[0])
			}
			free := got[len(frame0) : len(frame0)+FreeBoxSize]
			if string(free[4:8]) != "free" || binary.BigEndian.Uint32(free) != FreeBoxSize {
				t.Errorf("%s/%s: no free box after the first frame: % x", name, track, free)
			}
			untagged := append(append([]byte{}, got[:len(frame0)]...), got[len(frame0)+FreeBoxSize:]...)
			if !bytes.Equal(untagged, want) {
				t.Errorf("%s/%s: differs from the source by more than the free box", name, track)
			}
			if other, ok := seen[e.BLAKE3]; ok {
				t.Errorf("%s and %s share the object %s", name, other, e.BLAKE3)
			}
			seen[e.BLAKE3] = name
		}
	}
}

func readObject(t *testing.T, s *cas.Local, hexID string) []byte {
	t.Helper()
	id, err := cas.ParseID(hexID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDeriveRefusesLinksAndSpecialFiles: a link or FIFO among the source's
// manifests fails Derive, naming it, without following or blocking on it.
func TestDeriveRefusesLinksAndSpecialFiles(t *testing.T) {
	manifesttest.CheckRefused(t, func(t *testing.T) (string, string, func(*manifesttest.Planted)) {
		s, mdir := archiveSource(t)
		rel, _ := manifest.FilePath("", "src", "0.m4s")
		return mdir, rel, func(p *manifesttest.Planted) {
			p.Refused("Derive", Derive(context.Background(), s, mdir, "src", "c%d", 1, 1))
		}
	})
}
