package main

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func box(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// fullBox prefixes version and zero flags.
func fullBox(typ string, version byte, parts ...[]byte) []byte {
	return box(typ, append([]byte{version, 0, 0, 0}, bytes.Join(parts, nil)...))
}

func trak(id, timescale uint32, handler string, version byte) []byte {
	times := make([]byte, 8)
	if version == 1 {
		times = make([]byte, 16)
	}
	return box("trak",
		fullBox("tkhd", version, times, u32(id)),
		box("mdia", fullBox("mdhd", version, times, u32(timescale)), fullBox("hdlr", 0, u32(0), []byte(handler))))
}

func moof(id uint32, decode uint64) []byte {
	return box("moof", box("mfhd", make([]byte, 8)), box("traf", fullBox("tfhd", 0, u32(id)), fullBox("tfdt", 1, u64(decode))))
}

func TestWatch(t *testing.T) {
	stream := bytes.Join([][]byte{
		box("ftyp", []byte("isom")),
		box("moov", trak(1, 15360, "vide", 0), trak(2, 48000, "soun", 1)),
		moof(1, 172301), box("mdat", make([]byte, 1000)),
		moof(2, 539595), box("mdat", make([]byte, 10)),
	}, nil)
	var got []fragment
	clock := time.Unix(100, 0)
	err := watch(bytes.NewReader(stream), "b", func() time.Time { return clock }, func(f fragment) error {
		got = append(got, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	moofLen := int64(len(moof(1, 0)))
	want := []fragment{
		{Label: "b", WrittenUnixUs: 100e6, TrackID: 1, Handler: "vide", Timescale: 15360, DecodeTime: 172301, Bytes: moofLen + 1008},
		{Label: "b", WrittenUnixUs: 100e6, TrackID: 2, Handler: "soun", Timescale: 48000, DecodeTime: 539595, Bytes: moofLen + 18, TotalBytes: int64(len(stream))},
	}
	want[0].TotalBytes = int64(len(stream)) - want[1].Bytes
	if len(got) != len(want) {
		t.Fatalf("got %d fragments %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("fragment %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestWatchRejects(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, maxHeaderBox+9)
	for _, tc := range []struct {
		name, want string
		stream     []byte
	}{
		{"moof over the bound", "exceeds", append(huge, "moof"...)},
		{"size below header", "below its header", append(u32(4), "free"...)},
		{"open-ended moov", "has no size", append(u32(0), "moov"...)},
		{"truncated mdat", "mdat box", append(u32(100), "mdat"...)},
		{"truncated header", "box header", []byte{0, 0, 0}},
		{"child box overflows", "outside its container", box("moof", append(u32(99), "traf"...))},
		{"short tfhd", "too short", box("moof", box("traf", fullBox("tfhd", 0, []byte{1})))},
		{"stray bytes", "stray bytes", box("moov", []byte{1, 2, 3})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := watch(bytes.NewReader(tc.stream), "", time.Now, func(fragment) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
