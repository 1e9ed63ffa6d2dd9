package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// codec pairs one message's encoder and decoder so every table below can run
// round trips, truncations and fuzz re-encodes the same way.
type codec struct {
	name string
	enc  func(b []byte, v Version) ([]byte, error)
	dec  func(r Reader, v Version) (any, error)
}

func msgCodec[M any](name string, enc func(M, []byte, Version) ([]byte, error), dec func(Reader, Version) (M, error), m M) codec {
	return codec{
		name: name,
		enc:  func(b []byte, v Version) ([]byte, error) { return enc(m, b, v) },
		dec:  func(r Reader, v Version) (any, error) { return dec(r, v) },
	}
}

func sampleCodecs(v Version) []struct {
	c    codec
	want any
} {
	type entry = struct {
		c    codec
		want any
	}
	var out []entry
	add := func(c codec, want any) { out = append(out, entry{c, want}) }

	hops := []uint64{0, 0}
	if v.HasHopList() {
		hops = []uint64{7, MaxVarint, 0}
	}
	please := AnnouncePlease{Prefix: "anon/room"}
	if v.HasExcludeHop() {
		please.ExcludeHop = 1 << 40
	}
	add(msgCodec("announce please", AnnouncePlease.Append, ReadAnnouncePlease, please), please)
	for _, a := range []Announce{
		{Status: AnnounceActive, Suffix: "bbb.hang", Hops: hops},
		{Status: AnnounceEnded, Suffix: "", Hops: []uint64{}},
	} {
		add(msgCodec("announce", Announce.Append, ReadAnnounce, a), a)
	}
	sub := Subscribe{ID: 1 << 20, Broadcast: "bbb.hang", Track: "vidéo0.m4s", Priority: 200, Ordered: 1,
		MaxLatencyMs: 5000, Start: OptionalGroup{Seq: 0, Set: true}, End: OptionalGroup{Seq: MaxVarint - 1, Set: true}}
	add(msgCodec("subscribe", Subscribe.Append, ReadSubscribe, sub), sub)
	upd := SubscribeUpdate{Priority: 1, MaxLatencyMs: 1, Start: OptionalGroup{Seq: 9, Set: true}}
	add(msgCodec("subscribe update", SubscribeUpdate.Append, ReadSubscribeUpdate, upd), upd)
	drop := SubscribeResponse{Kind: ResponseDrop, Drop: SubscribeDrop{Start: 3, End: 5, Error: CodeOld}}
	add(msgCodec("subscribe drop", SubscribeResponse.Append, ReadSubscribeResponse, drop), drop)
	grp := Group{SubscribeID: 3, Sequence: 1 << 33}
	add(msgCodec("group", Group.Append, ReadGroup, grp), grp)
	if v.HasTrackStream() {
		for _, r := range []SubscribeResponse{{Kind: ResponseStart, Group: 42}, {Kind: ResponseEnd, Group: 0}} {
			add(msgCodec("subscribe response", SubscribeResponse.Append, ReadSubscribeResponse, r), r)
		}
		ok := AnnounceOK{Origin: 1 << 50, Active: 2}
		add(msgCodec("announce ok", AnnounceOK.Append, ReadAnnounceOK, ok), ok)
		tr := Track{Broadcast: "a/b", Track: "catalog.json"}
		add(msgCodec("track", Track.Append, ReadTrack, tr), tr)
		fe := Fetch{Broadcast: "a/b", Track: "0.m4s", Priority: 3, Group: 1 << 40}
		add(msgCodec("fetch", Fetch.Append, ReadFetch, fe), fe)
		ti := TrackInfo{Priority: 127, MaxLatencyMs: 5000, Timescale: 90000}
		add(msgCodec("track info", TrackInfo.Append, ReadTrackInfo, ti), ti)
		for _, s := range []Setup{{}, {Role: RoleSubscriber}, {Probe: 2, Role: 9, Cost: 0, HasCost: true, Hop: 5, Path: "/x?y", HasPath: true}} {
			add(msgCodec("setup", Setup.Append, ReadSetup, s), s)
		}
	} else {
		ok := SubscribeResponse{Kind: ResponseOK, OK: SubscribeOK{Priority: 3, MaxLatencyMs: 10, End: OptionalGroup{Seq: 4, Set: true}}}
		add(msgCodec("subscribe ok", SubscribeResponse.Append, ReadSubscribeResponse, ok), ok)
	}
	if v.HasGoaway() {
		g := Goaway{URI: "https://relay.example/new"}
		add(msgCodec("goaway", Goaway.Append, ReadGoaway, g), g)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, v := range Versions {
		for _, tc := range sampleCodecs(v) {
			t.Run(v.String()+"/"+tc.c.name, func(t *testing.T) {
				b, err := tc.c.enc([]byte{0xAA}, v)
				if err != nil {
					t.Fatal(err)
				}
				if b[0] != 0xAA {
					t.Fatal("encoder did not append to the caller's slice")
				}
				r := bytes.NewReader(b[1:])
				got, err := tc.c.dec(r, v)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				if r.Len() != 0 {
					t.Fatalf("%d bytes left unread", r.Len())
				}
			})
		}
	}
}

// Every strict prefix of a message must fail to decode: io.EOF for the empty
// one, an error (never a panic or a partial value) for the others.
func TestTruncatedPrefixes(t *testing.T) {
	for _, v := range Versions {
		for _, tc := range sampleCodecs(v) {
			b, err := tc.c.enc(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < len(b); n++ {
				_, err := tc.c.dec(bytes.NewReader(b[:n]), v)
				if n == 0 && tc.c.name != "subscribe response" && tc.c.name != "group" && !errors.Is(err, io.EOF) {
					t.Errorf("%s %s: empty input: got %v, want io.EOF", v, tc.c.name, err)
				}
				if n > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%s %s: %d of %d bytes: got %v, want io.ErrUnexpectedEOF", v, tc.c.name, n, len(b), err)
				}
			}
		}
	}
}

// A length prefix that claims one more byte than the fields use is refused, as
// moq-net refuses it (DecodeError::Long).
func TestTrailingBytesRejected(t *testing.T) {
	for _, tc := range sampleCodecs(Lite05) {
		b, err := tc.c.enc(nil, Lite05)
		if err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(b)
		var typ []byte
		if tc.c.name == "subscribe drop" || tc.c.name == "subscribe response" {
			typ = b[:1]
			r.Seek(1, io.SeekStart)
		}
		n, _ := ReadVarint(r)
		rest := b[len(b)-int(n):]
		padded := append(append(append([]byte(nil), typ...), mustVarint(t, n+1)...), rest...)
		padded = append(padded, 0)
		if _, err := tc.c.dec(bytes.NewReader(padded), Lite05); !errors.Is(err, ErrTrailingBytes) {
			t.Errorf("%s: got %v, want ErrTrailingBytes", tc.c.name, err)
		}
	}
}

func mustVarint(t *testing.T, v uint64) []byte {
	t.Helper()
	b, err := AppendVarint(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVarintBoundaries(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		size int
	}{{0, 1}, {63, 1}, {64, 2}, {16383, 2}, {16384, 4}, {1<<30 - 1, 4}, {1 << 30, 8}, {MaxVarint, 8}} {
		b := mustVarint(t, tc.v)
		if len(b) != tc.size {
			t.Errorf("%d: %d bytes, want %d", tc.v, len(b), tc.size)
		}
		got, err := ReadVarint(bytes.NewReader(b))
		if err != nil || got != tc.v {
			t.Errorf("%d: decoded %d, %v", tc.v, got, err)
		}
	}
	if _, err := AppendVarint(nil, MaxVarint+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxVarint+1: got %v, want ErrTooLarge", err)
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		dec  func(Reader) error
		want error
	}{
		{"message length over limit", []byte{0x80, 0x01, 0x00, 0x01}, func(r Reader) error { _, err := ReadSubscribe(r, Lite04); return err }, ErrTooLarge},
		{"huge varint length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(r Reader) error { _, err := ReadGroup(r, Lite04); return err }, ErrTooLarge},
		{"string longer than message", []byte{0x03, 0x42, 0x00, 0x61}, func(r Reader) error { _, err := ReadAnnouncePlease(r, Lite03); return err }, io.ErrUnexpectedEOF},
		{"too many hops", []byte{0x03, 0x01, 0x00, 33}, func(r Reader) error { _, err := ReadAnnounce(r, Lite03); return err }, ErrTooLarge},
		{"repeated hop", []byte{0x05, 0x01, 0x00, 0x02, 0x07, 0x07}, func(r Reader) error { _, err := ReadAnnounce(r, Lite04); return err }, ErrInvalid},
		{"restart before lite-05", []byte{0x03, 0x02, 0x00, 0x00}, func(r Reader) error { _, err := ReadAnnounce(r, Lite04); return err }, ErrInvalid},
		{"non-UTF-8 name", []byte{0x03, 0x02, 0xff, 0xfe}, func(r Reader) error { _, err := ReadAnnouncePlease(r, Lite03); return err }, ErrInvalid},
		{"too many params", []byte{0x02, 0x40, 0x41}, func(r Reader) error { _, err := ReadSetup(r, Lite05); return err }, ErrTooLarge},
		{"duplicate param", []byte{0x07, 0x02, 0x03, 0x01, 0x02, 0x03, 0x01, 0x02}, func(r Reader) error { _, err := ReadSetup(r, Lite05); return err }, ErrInvalid},
		{"param varint with trailing byte", []byte{0x05, 0x01, 0x03, 0x02, 0x02, 0x00}, func(r Reader) error { _, err := ReadSetup(r, Lite05); return err }, ErrTrailingBytes},
		{"timescale zero", []byte{0x04, 0x00, 0x00, 0x00, 0x00}, func(r Reader) error { _, err := ReadTrackInfo(r, Lite05); return err }, ErrInvalid},
		{"unknown response type", []byte{0x03, 0x01, 0x00}, func(r Reader) error { _, err := ReadSubscribeResponse(r, Lite05); return err }, ErrInvalid},
		{"lite-05 response type on lite-04", []byte{0x02, 0x01, 0x00}, func(r Reader) error { _, err := ReadSubscribeResponse(r, Lite04); return err }, ErrInvalid},
		{"frame too large", []byte{0x82, 0x00, 0x00, 0x01}, func(r Reader) error { _, err := ReadFrameHeader(r, Lite04, 0); return err }, ErrTooLarge},
		{"negative timestamp", []byte{0x01, 0x00}, func(r Reader) error { _, err := ReadFrameHeader(r, Lite05, 0); return err }, ErrInvalid},
		{"goaway on lite-03", []byte{0x01, 0x00}, func(r Reader) error { _, err := ReadGoaway(r, Lite03); return err }, ErrVersion},
		{"fetch on lite-04", []byte{0x01, 0x00}, func(r Reader) error { _, err := ReadFetch(r, Lite04); return err }, ErrVersion},
		{"too many path segments", append([]byte{0x40, 0x42, 0x40, 0x40}, bytes.Repeat([]byte("a/"), 32)...), func(r Reader) error { _, err := ReadAnnouncePlease(r, Lite03); return err }, ErrTooLarge},
	}
	for _, tc := range cases {
		if err := tc.dec(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestFrameHeaders(t *testing.T) {
	for _, v := range Versions {
		stamps := []uint64{0, 1000, 500, MaxVarint, 0}
		var b []byte
		var prev uint64
		for i, ts := range stamps {
			h := FrameHeader{Size: uint64(i * 1000), Timestamp: ts}
			if !v.HasTrackStream() {
				h.Timestamp = 0
			}
			var err error
			b, err = h.Append(b, v, prev)
			if err != nil {
				if v.HasTrackStream() && ts == MaxVarint {
					// A jump of ~2^62 does not fit the zigzag varint: refused, not wrapped.
					if !errors.Is(err, ErrTooLarge) {
						t.Fatalf("%s: got %v", v, err)
					}
					break
				}
				t.Fatal(err)
			}
			prev = h.Timestamp
		}
		r := bytes.NewReader(b)
		prev = 0
		for i := 0; ; i++ {
			h, err := ReadFrameHeader(r, v, prev)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s frame %d: %v", v, i, err)
			}
			if h.Size != uint64(i*1000) || (v.HasTrackStream() && h.Timestamp != stamps[i]) {
				t.Fatalf("%s frame %d: got %+v", v, i, h)
			}
			prev = h.Timestamp
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, v := range Versions {
		got, err := ParseVersion(v.String())
		if err != nil || got != v {
			t.Errorf("%s: got %v, %v", v, got, err)
		}
	}
	for _, name := range []string{"moq-lite-06", "moql", "moq-lite-5", ""} {
		if _, err := ParseVersion(name); !errors.Is(err, ErrVersion) {
			t.Errorf("%q: got %v, want ErrVersion", name, err)
		}
	}
}
