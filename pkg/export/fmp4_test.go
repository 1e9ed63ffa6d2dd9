package export

import (
	"bytes"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// testFragment encodes a one-sample fragment of track 7 at decode time dt.
func testFragment(t testing.TB, dt uint64) []byte {
	frag, err := mp4.CreateFragment(3, 7)
	if err != nil {
		t.Fatal(err)
	}
	frag.AddFullSample(mp4.FullSample{Sample: mp4.Sample{Dur: 512, Size: 4}, DecodeTime: dt, Data: []byte{1, 2, 3, 4}})
	var buf bytes.Buffer
	if err := frag.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFragmentRewrite: write changes the sequence, track id and decode time
// and nothing else; the moof keeps its size and the mdat its bytes.
func TestFragmentRewrite(t *testing.T) {
	in := testFragment(t, 90_000)
	frags, err := parseFragments(bytes.Repeat(in, 2), &mp4.TrexBox{})
	if err != nil || len(frags) != 2 || frags[0].decode != 90_000 || frags[0].duration != 512 {
		t.Fatalf("parse: %v %+v", err, frags)
	}
	var out bytes.Buffer
	if err := frags[0].write(&out, 42, 2, 80_000); err != nil {
		t.Fatal(err)
	}
	if out.Len() != len(in) {
		t.Fatalf("rewritten fragment is %d bytes, was %d", out.Len(), len(in))
	}
	f, err := mp4.DecodeFile(bytes.NewReader(out.Bytes()))
	if err != nil || len(f.Segments) != 1 || len(f.Segments[0].Fragments) != 1 {
		t.Fatalf("decode rewritten: %v", err)
	}
	moof := f.Segments[0].Fragments[0].Moof
	if moof.Mfhd.SequenceNumber != 42 || moof.Traf.Tfhd.TrackID != 2 || moof.Traf.Tfdt.BaseMediaDecodeTime() != 10_000 {
		t.Errorf("rewritten: seq %d track %d tfdt %d, want 42 2 10000", moof.Mfhd.SequenceNumber, moof.Traf.Tfhd.TrackID, moof.Traf.Tfdt.BaseMediaDecodeTime())
	}
	if !bytes.HasSuffix(out.Bytes(), frags[0].mdat) {
		t.Error("mdat changed")
	}
}

// FuzzParseFragments: any payload yields fragments or an error, never a panic
// or a fragment reaching outside the payload.
func FuzzParseFragments(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 'm', 'd', 'a', 't'})
	f.Add([]byte{0, 0, 0, 1, 'm', 'o', 'o', 'f', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 4, 'm', 'o', 'o', 'f'})
	f.Add(testFragment(f, 1000))
	trex := &mp4.TrexBox{TrackID: 1, DefaultSampleDuration: 512}
	f.Fuzz(func(t *testing.T, payload []byte) {
		frags, err := parseFragments(payload, trex)
		if err != nil {
			return
		}
		total := 0
		for _, fr := range frags {
			total += int(fr.moofSize) + len(fr.mdat)
		}
		if total > len(payload) {
			t.Fatalf("fragments of %d bytes from a payload of %d", total, len(payload))
		}
	})
}
