package wire

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

// Each fuzz target feeds one decoder family arbitrary bytes under each version.
// Whatever decodes must re-encode and decode to the same value; nothing may
// panic or allocate past the limits.

// fuzzVersion maps a corpus byte to a version: 0 is lite-03, 3 is lite-06.
func fuzzVersion(b byte) Version { return Lite03 + Version(int(b)%len(Versions)) }

func seedFamily(f *testing.F, family string) {
	for _, v := range Versions {
		for _, tc := range sampleCodecs(v) {
			if !strings.HasPrefix(tc.c.name, family) {
				continue
			}
			b, err := tc.c.enc(nil, v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(byte(v-Lite03), b)
		}
	}
}

// fuzzRoundTrip decodes data with dec, and if that succeeds, checks that
// encoding the value and decoding it again gives it back.
func fuzzRoundTrip[M any](t *testing.T, v Version, data []byte, dec func(Reader, Version) (M, error), enc func(M, []byte, Version) ([]byte, error)) {
	m, err := dec(bytes.NewReader(data), v)
	if err != nil {
		return
	}
	b, err := enc(m, nil, v)
	if err != nil {
		t.Fatalf("re-encode %+v: %v", m, err)
	}
	again, err := dec(bytes.NewReader(b), v)
	if err != nil || !reflect.DeepEqual(again, m) {
		t.Fatalf("round trip: %+v became %+v (%v)", m, again, err)
	}
}

func FuzzSetup(f *testing.F) {
	seedFamily(f, "setup")
	f.Fuzz(func(t *testing.T, vb byte, data []byte) {
		if v := fuzzVersion(vb); v.HasSetup() {
			fuzzRoundTrip(t, v, data, ReadSetup, Setup.Append)
		}
	})
}

func FuzzAnnounce(f *testing.F) {
	seedFamily(f, "announce")
	f.Fuzz(func(t *testing.T, vb byte, data []byte) {
		v := fuzzVersion(vb)
		fuzzRoundTrip(t, v, data, ReadAnnouncePlease, AnnouncePlease.Append)
		fuzzRoundTrip(t, v, data, ReadAnnounce, Announce.Append)
		if v.HasAnnounceOK() {
			fuzzRoundTrip(t, v, data, ReadAnnounceOK, AnnounceOK.Append)
		}
	})
}

func FuzzSubscribe(f *testing.F) {
	seedFamily(f, "subscribe")
	f.Fuzz(func(t *testing.T, vb byte, data []byte) {
		v := fuzzVersion(vb)
		fuzzRoundTrip(t, v, data, ReadSubscribe, Subscribe.Append)
		fuzzRoundTrip(t, v, data, ReadSubscribeUpdate, SubscribeUpdate.Append)
		fuzzRoundTrip(t, v, data, ReadSubscribeResponse, SubscribeResponse.Append)
	})
}

func FuzzTrackAndGoaway(f *testing.F) {
	seedFamily(f, "track")
	seedFamily(f, "goaway")
	f.Fuzz(func(t *testing.T, vb byte, data []byte) {
		v := fuzzVersion(vb)
		if v.HasTrackStream() {
			fuzzRoundTrip(t, v, data, ReadTrack, Track.Append)
			fuzzRoundTrip(t, v, data, ReadTrackInfo, TrackInfo.Append)
		}
		if v.HasGoaway() {
			fuzzRoundTrip(t, v, data, ReadGoaway, Goaway.Append)
		}
	})
}

// FuzzGroupStream decodes a whole GROUP stream body: header, then frames until
// EOF, re-encoding each frame header.
func FuzzGroupStream(f *testing.F) {
	for _, v := range Versions {
		g := Group{SubscribeID: 1, Sequence: 9}
		if v.HasFrameBounds() {
			g.FrameStart = 2
		}
		b, _ := g.Append(nil, v)
		b, _ = FrameHeader{Size: 2, Timestamp: 90000}.Append(b, v, 0)
		b = append(b, "hi"...)
		b, _ = FrameHeader{Size: 0, Timestamp: 3000}.Append(b, v, 90000)
		f.Add(byte(v-Lite03), b)
	}
	f.Fuzz(func(t *testing.T, vb byte, data []byte) {
		v := fuzzVersion(vb)
		r := bytes.NewReader(data)
		g, err := ReadGroup(r, v)
		if err != nil {
			return
		}
		if b, err := g.Append(nil, v); err != nil {
			t.Fatalf("re-encode %+v: %v", g, err)
		} else if again, err := ReadGroup(bytes.NewReader(b), v); err != nil || again != g {
			t.Fatalf("group header %+v became %+v (%v)", g, again, err)
		}
		var prev uint64
		for i := 0; i < MaxGroupFrames; i++ {
			h, err := ReadFrameHeader(r, v, prev)
			if err != nil {
				return
			}
			b, err := h.Append(nil, v, prev)
			if err != nil {
				t.Fatalf("re-encode %+v after %d: %v", h, prev, err)
			}
			again, err := ReadFrameHeader(bytes.NewReader(b), v, prev)
			if err != nil || again != h {
				t.Fatalf("frame header %+v became %+v (%v)", h, again, err)
			}
			prev = h.Timestamp
			if _, err := io.CopyN(io.Discard, r, int64(h.Size)); err != nil {
				return
			}
		}
	})
}

func FuzzFetch(f *testing.F) {
	seedFamily(f, "fetch")
	f.Fuzz(func(t *testing.T, vb byte, data []byte) {
		if v := fuzzVersion(vb); v.HasTrackStream() {
			fuzzRoundTrip(t, v, data, ReadFetch, Fetch.Append)
		}
	})
}
