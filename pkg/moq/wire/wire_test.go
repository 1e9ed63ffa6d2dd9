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
	announces := []Announce{
		{Status: AnnounceActive, Suffix: "bbb.hang", Hops: hops},
		{Status: AnnounceEnded, Suffix: "", Hops: []uint64{}},
	}
	if v.HasAnnounceIDs() {
		announces = []Announce{
			{Status: AnnounceActive, Suffix: "bbb.hang", Hops: hops, Cost: RouteCost{Warm: 1, Cold: MaxVarint}},
			{Status: AnnounceActive, Suffix: "", Hops: []uint64{}},
			{Status: AnnounceEnded, ID: 7},
			{Status: AnnounceRestart, ID: 1 << 40, Hops: []uint64{9}, Cost: RouteCost{Warm: 300}},
		}
	}
	for _, a := range announces {
		add(msgCodec("announce", Announce.Append, ReadAnnounce, a), a)
	}
	sub := Subscribe{ID: 1 << 20, Broadcast: "bbb.hang", Track: "vidéo0.m4s", Priority: 200, Ordered: 1,
		MaxLatencyMs: 5000, Start: OptionalGroup{Seq: 0, Set: true}, End: OptionalGroup{Seq: MaxVarint - 1, Set: true}}
	grp := Group{SubscribeID: 3, Sequence: 1 << 33}
	if v.HasFrameBounds() {
		// No Ordered byte; group 0 stays a named floor only with a frame start.
		sub.Ordered, sub.StartFrame, sub.EndFrame = 0, 3, OptionalFrame{Index: 2, Set: true}
		grp.FrameStart = 4
	}
	add(msgCodec("subscribe", Subscribe.Append, ReadSubscribe, sub), sub)
	upd := SubscribeUpdate{Priority: 1, MaxLatencyMs: 1, Start: OptionalGroup{Seq: 9, Set: true}}
	add(msgCodec("subscribe update", SubscribeUpdate.Append, ReadSubscribeUpdate, upd), upd)
	drop := SubscribeResponse{Kind: ResponseDrop, Drop: SubscribeDrop{Start: 3, End: 5, Error: CodeOld}}
	add(msgCodec("subscribe drop", SubscribeResponse.Append, ReadSubscribeResponse, drop), drop)
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
		if v.HasFrameBounds() {
			fe.StartFrame, fe.EndFrame = 2, OptionalFrame{Index: 2, Set: true}
		}
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
	for _, v := range []Version{Lite05, Lite06} {
		for _, tc := range sampleCodecs(v) {
			b, err := tc.c.enc(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			r := bytes.NewReader(b)
			var typ []byte
			if tc.c.name == "subscribe drop" || tc.c.name == "subscribe response" ||
				(tc.c.name == "announce" && v.HasAnnounceIDs()) {
				typ = b[:1]
				r.Seek(1, io.SeekStart)
			}
			n, _ := ReadVarint(r)
			rest := b[len(b)-int(n):]
			padded := append(append(append([]byte(nil), typ...), mustVarint(t, n+1)...), rest...)
			padded = append(padded, 0)
			if _, err := tc.c.dec(bytes.NewReader(padded), v); !errors.Is(err, ErrTrailingBytes) {
				t.Errorf("%s %s: got %v, want ErrTrailingBytes", v, tc.c.name, err)
			}
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
		// A stream that ends inside the varint is truncated, not cleanly ended.
		for cut := range len(b) {
			want := io.ErrUnexpectedEOF
			if cut == 0 {
				want = io.EOF
			}
			if _, err := ReadVarint(bytes.NewReader(b[:cut])); err != want {
				t.Errorf("%d cut to %d bytes: %v, want %v", tc.v, cut, err, want)
			}
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
		{"lite-06 frame end without an end group", []byte{0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}, func(r Reader) error { _, err := ReadSubscribeUpdate(r, Lite06); return err }, ErrInvalid},
		{"lite-06 too many hops", []byte{0x00, 0x04, 0x00, 33, 0x00, 0x00}, func(r Reader) error { _, err := ReadAnnounce(r, Lite06); return err }, ErrTooLarge},
		{"lite-06 repeated hop", []byte{0x02, 0x06, 0x00, 0x02, 0x07, 0x07, 0x00, 0x00}, func(r Reader) error { _, err := ReadAnnounce(r, Lite06); return err }, ErrInvalid},
		{"lite-06 announce end with trailing byte", []byte{0x01, 0x02, 0x03, 0x00}, func(r Reader) error { _, err := ReadAnnounce(r, Lite06); return err }, ErrTrailingBytes},
		{"lite-06 announce length over limit", []byte{0x00, 0x80, 0x01, 0x00, 0x01}, func(r Reader) error { _, err := ReadAnnounce(r, Lite06); return err }, ErrTooLarge},
		{"lite-06 skipped announce length over limit", []byte{0x09, 0x80, 0x01, 0x00, 0x01}, func(r Reader) error { _, err := ReadAnnounce(r, Lite06); return err }, ErrTooLarge},
		{"lite-06 timescale zero", []byte{0x03, 0x00, 0x00, 0x00}, func(r Reader) error { _, err := ReadTrackInfo(r, Lite06); return err }, ErrInvalid},
		{"fetch on lite-04", []byte{0x01, 0x00}, func(r Reader) error { _, err := ReadFetch(r, Lite04); return err }, ErrVersion},
		{"lite-06 fetch frame end before its start", []byte{0x07, 0x00, 0x01, 0x74, 0x00, 0x00, 0x03, 0x02}, func(r Reader) error { _, err := ReadFetch(r, Lite06); return err }, ErrInvalid},
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
	for _, name := range []string{"moq-lite-07-wip", "moq-lite-02", "moql", "moq-lite-5", ""} {
		if _, err := ParseVersion(name); !errors.Is(err, ErrVersion) {
			t.Errorf("%q: got %v, want ErrVersion", name, err)
		}
	}
}

// Lite-06 SUBSCRIBE carries the raw group floor: absent and group 0 are the same
// bytes and decode as absent, unless a frame start names group 0; earlier
// versions keep sequence+1 with 0 meaning the latest group.
func TestSubscribeStartFloor(t *testing.T) {
	enc := func(m Subscribe, v Version) []byte {
		t.Helper()
		b, err := m.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	absent := Subscribe{Track: "t"}
	zero := Subscribe{Track: "t", Start: OptionalGroup{Set: true}}
	if !bytes.Equal(enc(absent, Lite06), enc(zero, Lite06)) {
		t.Error("lite-06: a floor of group 0 differs from no floor")
	}
	if got, err := ReadSubscribe(bytes.NewReader(enc(zero, Lite06)), Lite06); err != nil || got.Start.Set {
		t.Errorf("lite-06: floor 0 decoded as %+v, %v; want absent", got.Start, err)
	}
	if bytes.Equal(enc(absent, Lite05), enc(zero, Lite05)) {
		t.Error("lite-05: group 0 encodes like the latest group")
	}
	mid := Subscribe{Track: "t", Start: OptionalGroup{Set: true}, StartFrame: 5}
	if got, err := ReadSubscribe(bytes.NewReader(enc(mid, Lite06)), Lite06); err != nil || got != mid {
		t.Errorf("lite-06: group 0 from frame 5 decoded as %+v, %v", got, err)
	}
}

// Encoders refuse what the version cannot carry instead of dropping it.
func TestEncodeRefusals(t *testing.T) {
	cases := []struct {
		name string
		enc  func() ([]byte, error)
		want error
	}{
		{"frame start on lite-05", func() ([]byte, error) {
			return Subscribe{Start: OptionalGroup{Seq: 1, Set: true}, StartFrame: 2}.Append(nil, Lite05)
		}, ErrVersion},
		{"frame end on lite-05", func() ([]byte, error) {
			return SubscribeUpdate{End: OptionalGroup{Seq: 1, Set: true}, EndFrame: OptionalFrame{Set: true}}.Append(nil, Lite05)
		}, ErrVersion},
		{"frame start without its group", func() ([]byte, error) { return Subscribe{StartFrame: 2}.Append(nil, Lite06) }, ErrInvalid},
		{"frame end without its group", func() ([]byte, error) {
			return SubscribeUpdate{EndFrame: OptionalFrame{Index: 1, Set: true}}.Append(nil, Lite06)
		}, ErrInvalid},
		{"group frame start on lite-05", func() ([]byte, error) { return Group{FrameStart: 1}.Append(nil, Lite05) }, ErrVersion},
		{"announce id on lite-05", func() ([]byte, error) { return Announce{Status: AnnounceEnded, ID: 1}.Append(nil, Lite05) }, ErrVersion},
		{"route cost on lite-05", func() ([]byte, error) {
			return Announce{Status: AnnounceActive, Cost: RouteCost{Warm: 1}}.Append(nil, Lite05)
		}, ErrVersion},
		{"lite-06 end with a path", func() ([]byte, error) { return Announce{Status: AnnounceEnded, Suffix: "a"}.Append(nil, Lite06) }, ErrInvalid},
		{"lite-06 end with hops", func() ([]byte, error) { return Announce{Status: AnnounceEnded, Hops: []uint64{1}}.Append(nil, Lite06) }, ErrInvalid},
		{"lite-06 start with an id", func() ([]byte, error) { return Announce{Status: AnnounceActive, ID: 1}.Append(nil, Lite06) }, ErrInvalid},
		{"fetch frame start on lite-05", func() ([]byte, error) { return Fetch{StartFrame: 1}.Append(nil, Lite05) }, ErrVersion},
		{"fetch frame end on lite-05", func() ([]byte, error) { return Fetch{EndFrame: OptionalFrame{Set: true}}.Append(nil, Lite05) }, ErrVersion},
		{"lite-06 fetch frame end before its start", func() ([]byte, error) {
			return Fetch{StartFrame: 3, EndFrame: OptionalFrame{Index: 2, Set: true}}.Append(nil, Lite06)
		}, ErrInvalid},
		{"restart on lite-04", func() ([]byte, error) { return Announce{Status: AnnounceRestart}.Append(nil, Lite04) }, ErrInvalid},
		{"lite-07", func() ([]byte, error) { return Group{}.Append(nil, Lite06+1) }, ErrVersion},
	}
	for _, tc := range cases {
		if _, err := tc.enc(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// A lite-06 announce of a type this draft does not define is skipped by its
// length, as moq-net does, and the next message is returned.
func TestUnknownAnnounceTypeSkipped(t *testing.T) {
	in := []byte{0x05, 0x02, 0xaa, 0xbb, 0x40, 0x40, 0x00}
	in, _ = Announce{Status: AnnounceEnded, ID: 3}.Append(in, Lite06)
	r := bytes.NewReader(in)
	got, err := ReadAnnounce(r, Lite06)
	if err != nil || got.Status != AnnounceEnded || got.ID != 3 || r.Len() != 0 {
		t.Fatalf("got %+v, %v with %d bytes left", got, err, r.Len())
	}
	if _, err := ReadAnnounce(bytes.NewReader([]byte{0x05, 0x02, 0xaa}), Lite06); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated skipped message: got %v, want io.ErrUnexpectedEOF", err)
	}
}
