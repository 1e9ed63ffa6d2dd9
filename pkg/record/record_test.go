package record

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func group(seq uint64, frames ...int64) Header {
	var size int64
	for _, f := range frames {
		size += f
	}
	return Header{V: Version, Kind: KindGroup, Broadcast: "live/alice", Track: "video0",
		Group: seq, Frames: frames, Size: size, ReceivedUnixMs: 1700000000000 + int64(seq)}
}

func gap(first, last uint64) Header {
	return Header{V: Version, Kind: KindGap, Broadcast: "live/alice", Track: "video0",
		First: first, Last: last, Reason: GapDisconnected, ReceivedUnixMs: 1700000000500}
}

// payloadFor is deterministic content for a header.
func payloadFor(h Header) []byte {
	b := make([]byte, h.Size)
	for i := range b {
		b[i] = byte(int(h.Group)*7 + i)
	}
	return b
}

type rec struct {
	h       Header
	payload []byte
}

func encode(t testing.TB, recs []rec) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, r := range recs {
		var err error
		if r.h.Kind == KindGap {
			err = w.WriteGap(r.h)
		} else {
			err = w.WriteGroup(r.h, bytes.NewReader(r.payload))
		}
		if err != nil {
			t.Fatalf("write %+v: %v", r.h, err)
		}
	}
	return buf.Bytes()
}

// readAll reads every record, returning those read and the error that ended the
// stream (io.EOF on a clean end).
func readAll(t testing.TB, data []byte, limits Limits) ([]rec, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), limits)
	if err != nil {
		t.Fatal(err)
	}
	var out []rec
	for {
		h, p, err := r.Next()
		if err != nil {
			return out, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return out, err
		}
		out = append(out, rec{h, b})
	}
}

func sampleRecords() []rec {
	hs := []Header{group(1, 3, 4), group(2), gap(3, 9), group(10, 1<<20, 5)}
	odd := group(11, 2)
	odd.Broadcast, odd.Track = "a\nb\\c\"d/../<&>\u2028", "trąck\x01"
	odd.Timescale, odd.Timestamps = 1000, []int64{0}
	hs = append(hs, odd)
	recs := make([]rec, len(hs))
	for i, h := range hs {
		recs[i] = rec{h, payloadFor(h)}
	}
	return recs
}

func TestRoundTrip(t *testing.T) {
	want := sampleRecords()
	data := encode(t, want)
	if n := bytes.Count(data[:bytes.IndexByte(data, '\n')], []byte("\n")); n != 0 {
		t.Fatalf("header line has %d newlines", n)
	}
	got, err := readAll(t, data, DefaultLimits())
	if err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].h, want[i].h) {
			t.Errorf("record %d header: got %+v want %+v", i, got[i].h, want[i].h)
		}
		if !bytes.Equal(got[i].payload, want[i].payload) {
			t.Errorf("record %d payload differs", i)
		}
	}
}

func TestExampleLine(t *testing.T) {
	h := group(7, 3, 2)
	var buf bytes.Buffer
	if err := NewWriter(&buf).WriteGroup(h, strings.NewReader("abcde")); err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"kind":"group","broadcast":"live/alice","track":"video0","group":7,"frames":[3,2],"size":5,"received_unix_ms":1700000000007}` + "\nabcde\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
}

func TestNextDrainsUnreadPayload(t *testing.T) {
	data := encode(t, sampleRecords())
	r, _ := NewReader(bytes.NewReader(data), DefaultLimits())
	var seqs []uint64
	for {
		h, p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, h.Group)
		if h.Size > 1 {
			if _, err := p.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []uint64{1, 2, 0, 10, 11}; !reflect.DeepEqual(seqs, want) {
		t.Fatalf("groups %v, want %v", seqs, want)
	}
}

func TestEveryTruncatedPrefix(t *testing.T) {
	recs := sampleRecords()[:3]
	data := encode(t, recs)
	boundaries := map[int]bool{0: true}
	for i := range recs {
		boundaries[len(encode(t, recs[:i+1]))] = true
	}
	for n := 0; n < len(data); n++ {
		_, err := readAll(t, data[:n], DefaultLimits())
		if boundaries[n] {
			if err != io.EOF {
				t.Fatalf("prefix %d (record boundary): %v, want io.EOF", n, err)
			}
			continue
		}
		var re *Error
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrMalformed) || !errors.As(err, &re) {
			t.Fatalf("prefix %d: %v, want *Error wrapping ErrMalformed and io.ErrUnexpectedEOF", n, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	ok := `{"v":1,"kind":"group","broadcast":"b","track":"t","group":1,"frames":[2],"size":2,"received_unix_ms":1}`
	long := `{"v":1,"kind":"group","broadcast":"` + strings.Repeat("x", 100) + `","track":"t","group":1,"size":0,"received_unix_ms":1}`
	small := DefaultLimits()
	small.MaxName, small.MaxPayload, small.MaxFrames = 50, 10, 2
	tests := []struct {
		name   string
		input  string
		limits Limits
		record int
		want   string
	}{
		{"empty header line", "\n", DefaultLimits(), 1, "empty line"},
		{"not json", "hello\n", DefaultLimits(), 1, "not a JSON object"},
		{"bad terminator", ok + "\nabX", DefaultLimits(), 1, "terminator is byte 0x58"},
		{"second record bad", ok + "\nab\n" + strings.Replace(ok, `"v":1`, `"v":0`, 1) + "\n\n", DefaultLimits(), 2, "unsupported version 0"},
		{"version 2", strings.Replace(ok, `"v":1`, `"v":2`, 1) + "\nab\n", DefaultLimits(), 1, "unsupported version 2"},
		{"unknown kind", strings.Replace(ok, `"group","b`, `"frob","b`, 1) + "\nab\n", DefaultLimits(), 1, `unknown kind "frob"`},
		{"unknown field", strings.Replace(ok, `{"v":1`, `{"v":1,"x":1`, 1) + "\nab\n", DefaultLimits(), 1, `unknown field "x"`},
		{"trailing data", ok + ` {}` + "\nab\n", DefaultLimits(), 1, "trailing data"},
		{"invalid utf-8", strings.Replace(ok, `"b"`, "\"\xff\"", 1) + "\nab\n", DefaultLimits(), 1, "not valid UTF-8"},
		{"empty broadcast", strings.Replace(ok, `"b"`, `""`, 1) + "\nab\n", DefaultLimits(), 1, "empty broadcast"},
		{"empty track", strings.Replace(ok, `"t"`, `""`, 1) + "\nab\n", DefaultLimits(), 1, "empty track"},
		{"frames sum", strings.Replace(ok, `[2]`, `[1]`, 1) + "\nab\n", DefaultLimits(), 1, "sum to 1, size is 2"},
		{"negative frame", strings.Replace(ok, `[2]`, `[-1,3]`, 1) + "\nab\n", DefaultLimits(), 1, "negative size"},
		{"negative size", strings.Replace(strings.Replace(ok, `[2]`, `[]`, 1), `"size":2`, `"size":-2`, 1) + "\n", DefaultLimits(), 1, "negative size -2"},
		{"size overflow", strings.Replace(ok, `"size":2`, `"size":99999999999999999999`, 1) + "\n", DefaultLimits(), 1, `field "size": want int64, got number 99999999999999999999`},
		{"oversized payload", strings.Replace(strings.Replace(ok, `[2]`, `[11]`, 1), `"size":2`, `"size":11`, 1) + "\n", small, 1, "exceeds limit 10"},
		{"too many frames", strings.Replace(ok, `[2]`, `[1,1,0]`, 1) + "\nab\n", small, 1, "3 frames exceed limit 2"},
		{"long name", long + "\n\n", small, 1, "broadcast name is 100 bytes, limit 50"},
		{"group with gap fields", strings.Replace(ok, `"size":2`, `"size":2,"reason":"reset"`, 1) + "\nab\n", DefaultLimits(), 1, "gap fields"},
		{"timestamps without timescale", strings.Replace(ok, `"size":2`, `"size":2,"timestamps":[5]`, 1) + "\nab\n", DefaultLimits(), 1, "without timescale"},
		{"gap first after last", `{"v":1,"kind":"gap","broadcast":"b","track":"t","group":0,"size":0,"first":5,"last":4,"reason":"reset","received_unix_ms":1}` + "\n\n", DefaultLimits(), 1, "first 5 is after last 4"},
		{"gap without reason", `{"v":1,"kind":"gap","broadcast":"b","track":"t","group":0,"size":0,"first":1,"last":4,"received_unix_ms":1}` + "\n\n", DefaultLimits(), 1, "gap reason"},
		{"gap bad reason", `{"v":1,"kind":"gap","broadcast":"b","track":"t","group":0,"size":0,"reason":"Oops!","received_unix_ms":1}` + "\n\n", DefaultLimits(), 1, "gap reason"},
		{"gap with size", `{"v":1,"kind":"gap","broadcast":"b","track":"t","group":0,"size":3,"reason":"reset","received_unix_ms":1}` + "\nabc\n", DefaultLimits(), 1, "group fields"},
		{"header too long", `{"v":1,"kind":"group","broadcast":"` + strings.Repeat("x", 200<<10) + "\"", Limits{MaxPayload: 1, MaxHeaderLine: 100 << 10, MaxName: 1, MaxFrames: 1}, 1, "line too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, []byte(tt.input), tt.limits)
			var re *Error
			if !errors.As(err, &re) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want *Error wrapping ErrMalformed", err)
			}
			if re.Record != tt.record || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %q (record %d), want record %d and %q", err, re.Record, tt.record, tt.want)
			}
		})
	}
}

func TestErrorOffset(t *testing.T) {
	data := encode(t, sampleRecords()[:2])
	_, err := readAll(t, append(data, "{}\n"...), DefaultLimits())
	var re *Error
	if !errors.As(err, &re) || re.Record != 3 || re.Offset != int64(len(data)) {
		t.Fatalf("got %v, want record 3 at byte %d", err, len(data))
	}
}

// endless is an infinite stream of one byte.
type endless struct{ read int64 }

func (e *endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'x'
	}
	e.read += int64(len(b))
	return len(b), nil
}

func TestHeaderLimitBeforeBuffering(t *testing.T) {
	src := &endless{}
	r, _ := NewReader(src, DefaultLimits())
	_, _, err := r.Next()
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("got %v, want ErrLineTooLong", err)
	}
	if src.read > MaxHeaderLine+128<<10 {
		t.Fatalf("read %d bytes for a %d-byte limit", src.read, MaxHeaderLine)
	}
}

func TestErrorIsSticky(t *testing.T) {
	r, _ := NewReader(strings.NewReader("{}\n"+string(encode(t, sampleRecords()[:1]))), DefaultLimits())
	_, _, err1 := r.Next()
	_, _, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v then %v, want the same error twice", err1, err2)
	}
}

func TestWriterRejects(t *testing.T) {
	tests := []struct {
		name    string
		h       Header
		payload string
		want    string
	}{
		{"short payload", group(1, 4), "abc", "3 of 4 bytes"},
		{"long payload", group(1, 2), "abc", "longer than size 2"},
		{"invalid header", Header{V: Version, Kind: KindGroup}, "", "empty broadcast"},
		{"non-utf8 name", func() Header { h := group(1); h.Track = "\xff"; return h }(), "", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := NewWriter(&buf).WriteGroup(tt.h, strings.NewReader(tt.payload))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if err := NewWriter(io.Discard).WriteGap(group(1)); err == nil {
		t.Fatal("WriteGap accepted a group header")
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		in      string
		max     int
		want    string
		wantErr error
	}{
		{"abc\n", 3, "abc", nil},
		{"abcd\n", 3, "", ErrLineTooLong},
		{"abc", 3, "", io.ErrUnexpectedEOF},
		{"", 3, "", io.EOF},
		{strings.Repeat("y", 5000) + "\n", 5000, strings.Repeat("y", 5000), nil},
		{strings.Repeat("y", 5001) + "\n", 5000, "", ErrLineTooLong},
	}
	for _, tt := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
		got, err := ReadLine(br, tt.max)
		if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
			t.Errorf("ReadLine(%.10q, %d) = %.10q, %v; want %.10q, %v", tt.in, tt.max, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(encode(f, sampleRecords()[:3]))
	f.Add(encode(f, []rec{{gap(1, 1), nil}}))
	f.Add([]byte(`{"v":1,"kind":"group","broadcast":"b","track":"t","group":1,"frames":[1,1],"size":2,"received_unix_ms":1}` + "\nab\n"))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		limits := Limits{MaxPayload: 1 << 16, MaxHeaderLine: 4096, MaxName: 256, MaxFrames: 64}
		got, err := readAll(t, data, limits)
		if err != io.EOF {
			var re *Error
			if !errors.As(err, &re) || re.Record != len(got)+1 {
				t.Fatalf("error %v after %d records: want *Error for record %d", err, len(got), len(got)+1)
			}
		}
		for _, r := range got {
			if err := r.h.Check(); err != nil {
				t.Fatalf("accepted header fails Check: %v", err)
			}
			if int64(len(r.payload)) != r.h.Size || r.h.Size > limits.MaxPayload {
				t.Fatalf("payload %d bytes for size %d", len(r.payload), r.h.Size)
			}
		}
		// What was accepted re-encodes to a stream that reads back the same.
		again, err := readAll(t, encode(t, got), limits)
		if err != io.EOF || len(again) != len(got) {
			t.Fatalf("re-read: %d records, %v", len(again), err)
		}
		for i := range got {
			if !reflect.DeepEqual(again[i].h, got[i].h) || !bytes.Equal(again[i].payload, got[i].payload) {
				t.Fatalf("record %d changed in re-encoding", i)
			}
		}
	})
}

// TestWriterAndReaderAgreeOnLimits: at each of the format's limits, the writer
// (moq-sub) writes exactly the headers that the reader (cas-put) accepts.
func TestWriterAndReaderAgreeOnLimits(t *testing.T) {
	withName := func(n int) Header { h := group(1); h.Track = strings.Repeat("t", n); return h }
	withFrames := func(n int) Header { return group(1, make([]int64, n)...) }
	// withLine pads the broadcast name so that the header encodes to n bytes.
	withLine := func(n int) Header {
		h := withFrames(MaxFrames)
		h.Track = strings.Repeat("\u2028", MaxName/3) // 6 bytes encoded for 3
		h.Timescale, h.Timestamps = 1, make([]int64, MaxFrames)
		for i := range h.Timestamps {
			h.Timestamps[i] = 1e9
		}
		h.Broadcast = ""
		h.Broadcast = strings.Repeat("b", n-encodedLen(&h))
		if encodedLen(&h) != n || len(h.Broadcast) > MaxName {
			t.Fatalf("test header: %d bytes encoded, name %d bytes", encodedLen(&h), len(h.Broadcast))
		}
		return h
	}
	tests := []struct {
		name string
		h    Header
		ok   bool
	}{
		{"longest name", withName(MaxName), true},
		{"name too long", withName(MaxName + 1), false},
		{"most frames", withFrames(MaxFrames), true},
		{"too many frames", withFrames(MaxFrames + 1), false},
		{"longest header", withLine(MaxHeaderLine), true},
		{"header too long", withLine(MaxHeaderLine + 1), false},
	}
	limits := DefaultLimits()
	limits.MaxPayload = 1 << 62
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			werr := NewWriter(&buf).WriteGroup(tt.h, bytes.NewReader(nil))
			if (werr == nil) != tt.ok || !tt.ok && buf.Len() > 0 {
				t.Fatalf("writer: %v after %d bytes, want ok=%v and nothing written on error", werr, buf.Len(), tt.ok)
			}
			// The reader, given the line the writer would have written.
			var line bytes.Buffer
			if err := EncodeLine(&line, tt.h); err != nil {
				t.Fatal(err)
			}
			_, rerr := readAll(t, append(line.Bytes(), '\n'), limits)
			if rerr == io.EOF != tt.ok || !tt.ok && !errors.Is(rerr, ErrMalformed) {
				t.Fatalf("reader: %v, want ok=%v (writer said %v)", rerr, tt.ok, werr)
			}
		})
	}
}

func TestLimitsAboveTheFormatAreRefused(t *testing.T) {
	for _, l := range []Limits{
		{MaxPayload: 1, MaxHeaderLine: MaxHeaderLine + 1, MaxName: 1, MaxFrames: 1},
		{MaxPayload: 1, MaxHeaderLine: 1, MaxName: MaxName + 1, MaxFrames: 1},
		{MaxPayload: 1, MaxHeaderLine: 1, MaxName: 1, MaxFrames: MaxFrames + 1},
		{MaxPayload: 0, MaxHeaderLine: 1, MaxName: 1, MaxFrames: 1},
	} {
		if _, err := NewReader(strings.NewReader(""), l); err == nil {
			t.Errorf("NewReader accepted limits %+v", l)
		}
	}
}
