package manifest

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/zeebo/blake3"
)

const testBroadcast, testTrack = "live/alice", "video0"

func groupEntry(seq uint64, payload string) Entry {
	id := cas.ID(blake3.Sum256([]byte(payload)))
	yes := true
	return Entry{
		Header: record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: testBroadcast, Track: testTrack,
			Group: seq, Frames: []int64{int64(len(payload))}, Size: int64(len(payload)), ReceivedUnixMs: 1700000000000 + int64(seq)},
		BLAKE3: id.String(), Path: cas.ObjectPath(id), New: &yes,
	}
}

func gapEntry(first, last uint64) Entry {
	return Entry{Header: record.Header{V: record.Version, Kind: record.KindGap, Broadcast: testBroadcast, Track: testTrack,
		First: first, Last: last, Reason: record.GapDisconnected, ReceivedUnixMs: 1700000000000}}
}

// readEntries parses a manifest file, failing on any bad line.
func readEntries(t *testing.T, path string) []Entry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			t.Fatalf("%s: unterminated last line %q", path, line)
		}
		e, err := ParseLine([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e)
	}
	return out
}

func openTest(t *testing.T, dir string) (*Appender, *Repair) {
	t.Helper()
	a, rep, err := OpenAppender(dir, testBroadcast, testTrack, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, rep
}

func TestAppendDedupAndLastGroup(t *testing.T) {
	dir := t.TempDir()
	a, rep := openTest(t, dir)
	if rep != nil {
		t.Fatalf("repair on a new file: %+v", rep)
	}
	if _, ok := a.ResumePoint(); ok {
		t.Fatal("ResumePoint on an empty file")
	}
	res, err := a.Append(groupEntry(1, "a"), gapEntry(2, 3), groupEntry(4, "b"), groupEntry(4, "b"))
	if err != nil || res != (AppendResult{Appended: 3, Duplicates: 1}) {
		t.Fatalf("Append = %+v, %v", res, err)
	}
	a.Close()

	// A restart re-feeding the same entries appends only the new one; the
	// same group sequence with other content is not a duplicate.
	a, _ = openTest(t, dir)
	if p, ok := a.ResumePoint(); !ok || p.High != 4 {
		t.Fatalf("ResumePoint after reopen = %+v, %v; want 4", p, ok)
	}
	res, err = a.Append(groupEntry(1, "a"), gapEntry(2, 3), groupEntry(4, "b"), groupEntry(4, "B"), groupEntry(5, "c"))
	if err != nil || res != (AppendResult{Appended: 2, Duplicates: 3}) {
		t.Fatalf("Append after reopen = %+v, %v", res, err)
	}
	got := readEntries(t, a.Path())
	var seqs []string
	for _, e := range got {
		if e.New != nil {
			t.Fatal("new was written to the manifest")
		}
		seqs = append(seqs, fmt.Sprintf("%s%d", e.Kind, e.Group))
	}
	if strings.Join(seqs, " ") != "group1 gap0 group4 group4 group5" {
		t.Fatalf("file holds %v", seqs)
	}
	if p, ok, err := ReadResumePoint(dir, testBroadcast, testTrack); err != nil || !ok || p.High != 5 {
		t.Fatalf("ReadResumePoint = %+v, %v, %v; want 5", p, ok, err)
	}
	if _, ok, err := ReadResumePoint(dir, testBroadcast, "absent"); ok || err != nil {
		t.Fatalf("ReadResumePoint of a missing file = %v, %v", ok, err)
	}
}

func TestAppendRejects(t *testing.T) {
	a, _ := openTest(t, t.TempDir())
	other := groupEntry(1, "a")
	other.Track = "audio"
	badPath := groupEntry(1, "a")
	badPath.Path = "objects/blake3/00/x.bin"
	gapWithHash := gapEntry(1, 1)
	gapWithHash.BLAKE3 = groupEntry(1, "a").BLAKE3
	for name, e := range map[string]Entry{"other track": other, "bad path": badPath, "gap with hash": gapWithHash} {
		if _, err := a.Append(e); err == nil {
			t.Errorf("%s: Append accepted %+v", name, e)
		}
	}
	if st, _ := os.Stat(a.Path()); st.Size() != 0 {
		t.Fatal("rejected entries reached the file")
	}
}

func TestRepairTornTail(t *testing.T) {
	tests := []struct {
		name, tail, reason string
	}{
		{"partial line", `{"v":1,"kind":"gro`, "no final newline"},
		{"zero fill", "\x00\x00\x00\x00", "no final newline"},
		{"garbage line", "\x00\x00garbage\n", "last line is not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a, _ := openTest(t, dir)
			if _, err := a.Append(groupEntry(1, "a"), groupEntry(2, "b")); err != nil {
				t.Fatal(err)
			}
			a.Close()
			good, _ := os.ReadFile(a.Path())
			os.WriteFile(a.Path(), append(append([]byte{}, good...), tt.tail...), 0o644)

			a, rep := openTest(t, dir)
			if rep == nil || rep.Offset != int64(len(good)) || rep.Bytes != int64(len(tt.tail)) || rep.Reason != tt.reason {
				t.Fatalf("repair = %+v; want %d bytes cut at %d (%s)", rep, len(tt.tail), len(good), tt.reason)
			}
			if data, _ := os.ReadFile(a.Path()); !bytes.Equal(data, good) {
				t.Fatalf("file after repair = %q", data)
			}
			if _, err := a.Append(groupEntry(3, "c")); err != nil {
				t.Fatal(err)
			}
			if n := len(readEntries(t, a.Path())); n != 3 {
				t.Fatalf("%d entries after repair and append, want 3", n)
			}
		})
	}
}

func TestInvalidJSONLineIsKept(t *testing.T) {
	dir := t.TempDir()
	a, _ := openTest(t, dir)
	a.Append(groupEntry(1, "a"))
	a.Close()
	f, _ := os.OpenFile(a.Path(), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"v":9}` + "\n")
	f.Close()
	_, rep := openTest(t, dir)
	if rep != nil {
		t.Fatalf("a complete JSON line was cut: %+v", rep)
	}
}

// TestConcurrentAppenders has two appenders on one file (as two processes
// would have) and checks that every line arrives whole, once.
func TestConcurrentAppenders(t *testing.T) {
	dir := t.TempDir()
	a1, _ := openTest(t, dir)
	a2, _ := openTest(t, dir)
	var wg sync.WaitGroup
	for w, a := range []*Appender{a1, a2, a1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				seq := uint64(w*1000 + i)
				big := strings.Repeat("x", 5000+i) // lines longer than a pipe buffer's atomic size
				e := groupEntry(seq, big)
				if _, err := a.Append(e, gapEntry(seq, seq)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(readEntries(t, a1.Path())); n != 300 {
		t.Fatalf("%d entries, want 300", n)
	}
	// Each appender sees the other's lines as duplicates.
	if res, err := a2.Append(groupEntry(0, strings.Repeat("x", 5000))); err != nil || res.Duplicates != 1 {
		t.Fatalf("re-append through the other appender = %+v, %v", res, err)
	}
}

func TestDirBoundsOpenFiles(t *testing.T) {
	root := t.TempDir()
	d, err := OpenDir(root, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for round := range 2 {
		for i := range 5 {
			e := groupEntry(uint64(i), "p")
			e.Track = fmt.Sprintf("track%d", i)
			res, err := d.Append(e.Broadcast, e.Track, e)
			if err != nil {
				t.Fatal(err)
			}
			if want := (AppendResult{Appended: 1 - round, Duplicates: round}); res != want {
				t.Fatalf("round %d track %d: %+v, want %+v", round, i, res, want)
			}
			if len(d.open) > 2 {
				t.Fatalf("%d files open, bound 2", len(d.open))
			}
		}
	}
	if p, ok, err := d.ResumePoint(testBroadcast, "track3"); err != nil || !ok || p.High != 3 {
		t.Fatalf("ResumePoint = %+v, %v, %v", p, ok, err)
	}
}

func TestDecoder(t *testing.T) {
	var buf bytes.Buffer
	for _, e := range []Entry{groupEntry(1, "a"), gapEntry(2, 2)} {
		b, _ := AppendLine(nil, e)
		buf.Write(b)
	}
	buf.WriteString("{}\n")
	buf.WriteString(`{"v":1`)
	d := NewDecoder(&buf)
	for i, want := range []string{"", "", "line 3: malformed record: missing field", "line 4: malformed record: line without terminating newline"} {
		_, err := d.Next()
		if want == "" && err != nil || want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)) {
			t.Fatalf("entry %d: %v, want %q", i+1, err, want)
		}
	}
}

func TestResumePoint(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		high    uint64
		missing []uint64
	}{
		{"a trailing gap accounts for its last group", []Entry{groupEntry(7, "a"), gapEntry(8, 12)}, 12, nil},
		{"groups appended out of order", []Entry{groupEntry(9, "a"), groupEntry(11, "b"), groupEntry(10, "c")}, 11, nil},
		{"groups in flight at a crash", []Entry{groupEntry(3, "a"), groupEntry(5, "b"), groupEntry(8, "c")}, 8, []uint64{4, 6, 7}},
		{"a gap accounts for its range", []Entry{groupEntry(3, "a"), gapEntry(4, 6), groupEntry(8, "c")}, 8, []uint64{7}},
		{"holes of an older publisher session are not told", []Entry{groupEntry(20, "a"), groupEntry(18, "b"), groupEntry(22, "c"), groupEntry(0, "d"), groupEntry(2, "e"), groupEntry(5, "f")}, 22, nil},
		{"the last publisher session's holes", []Entry{groupEntry(5, "a"), groupEntry(0, "b"), groupEntry(1, "c"), groupEntry(3, "d"), groupEntry(6, "e"), groupEntry(8, "f")}, 8, []uint64{2, 4, 5, 7}},
		{"a restarted publisher below the old high", []Entry{groupEntry(40, "a"), groupEntry(0, "b"), groupEntry(2, "c")}, 40, nil},
		{"a huge jump keeps the holes just below the high", []Entry{groupEntry(0, "a"), groupEntry(1<<40, "b")}, 1 << 40, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a, _ := openTest(t, dir)
			if _, err := a.Append(tt.entries...); err != nil {
				t.Fatal(err)
			}
			check := func(what string, p ResumePoint, ok bool) {
				t.Helper()
				if !ok || p.High != tt.high {
					t.Errorf("%s: high %d, %v; want %d", what, p.High, ok, tt.high)
				}
				if tt.name == "a huge jump keeps the holes just below the high" {
					if n := len(p.Missing); n != resumeWindow || p.Missing[0] != 1<<40-resumeWindow || p.Missing[n-1] != 1<<40-1 {
						t.Errorf("%s: %d missing, %v..%v; want the %d below %d", what, n, p.Missing[:1], p.Missing[n-1:], resumeWindow, uint64(1<<40))
					}
				} else if !slices.Equal(p.Missing, tt.missing) {
					t.Errorf("%s: missing %v, want %v", what, p.Missing, tt.missing)
				}
			}
			p, ok := a.ResumePoint()
			check("Appender.ResumePoint", p, ok)
			p, ok, err := ReadResumePoint(dir, testBroadcast, testTrack)
			if err != nil {
				t.Fatal(err)
			}
			check("ReadResumePoint", p, ok)
		})
	}
}

func TestResumePointFollowsARestartedPublisher(t *testing.T) {
	dir := t.TempDir()
	a, _ := openTest(t, dir)
	entries := []Entry{groupEntry(5000, "old epoch")}
	for seq := uint64(0); seq < resumeWindow; seq++ {
		entries = append(entries, groupEntry(seq, fmt.Sprint("new epoch ", seq)))
	}
	if _, err := a.Append(entries...); err != nil {
		t.Fatal(err)
	}
	if p, ok := a.ResumePoint(); !ok || p.High != resumeWindow-1 || len(p.Missing) > 0 {
		t.Errorf("ResumePoint = %+v, %v; want %d (the old epoch out of the window)", p, ok, resumeWindow-1)
	}
}
