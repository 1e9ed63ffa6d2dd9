package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/every-channel/ec-node/pkg/record"
)

// TestSplitSessions: each case is a file's lines as (sequence, object,
// receive time) and the sessions they should fall into, by line number.
func TestSplitSessions(t *testing.T) {
	type line struct {
		seq  uint64
		obj  string // "" for a gap line
		recv int64
	}
	tests := []struct {
		name     string
		lines    []line
		catalogs []int64
		want     [][]int // 1-based line numbers per session
	}{
		{"one session", []line{{1, "a", 1}, {2, "b", 2}, {3, "c", 3}}, nil, [][]int{{1, 2, 3}}},
		{"late group stays", []line{{5, "a", 1}, {7, "b", 2}, {6, "c", 3}}, nil, [][]int{{1, 2, 3}}},
		{"duplicate line stays", []line{{5, "a", 1}, {6, "b", 2}, {5, "a", 3}}, nil, [][]int{{1, 2, 3}}},
		{"restart far below", []line{{1, "a", 1}, {12, "b", 2}, {13, "c", 3}, {0, "d", 9}, {1, "e", 10}},
			nil, [][]int{{1, 2, 3}, {4, 5}}},
		{"sequence reused by another object", []line{{0, "a", 1}, {1, "b", 2}, {0, "c", 9}, {1, "d", 10}},
			nil, [][]int{{1, 2}, {3, 4}}},
		{"short session restarted after a catalog", []line{{1, "a", 1}, {2, "b", 2}, {3, "c", 3}, {0, "d", 9}, {1, "e", 10}},
			[]int64{0, 8}, [][]int{{1, 2, 3}, {4, 5}}},
		{"catalog without a step back", []line{{1, "a", 1}, {2, "b", 2}, {3, "c", 9}},
			[]int64{0, 8}, [][]int{{1, 2, 3}}},
		{"gap lines never start one", []line{{10, "a", 1}, {0, "", 2}, {11, "b", 3}}, nil, [][]int{{1, 2, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var entries []Entry
			for _, l := range tt.lines {
				e := Entry{Header: record.Header{Kind: record.KindGroup, Group: l.seq, ReceivedUnixMs: l.recv}, BLAKE3: l.obj}
				if l.obj == "" {
					e.Header = record.Header{Kind: record.KindGap, First: 3, Last: 4, ReceivedUnixMs: l.recv}
				}
				entries = append(entries, e)
			}
			var got [][]int
			for i, s := range SplitSessions(entries, tt.catalogs) {
				if s.Number != i+1 {
					t.Errorf("session %d numbered %d", i+1, s.Number)
				}
				var lines []int
				for j := range s.Entries {
					lines = append(lines, s.Line+j)
				}
				got = append(got, lines)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("sessions %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReadFile reads back what AppendLine wrote and refuses an invalid line.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path, err := FilePath(dir, "b", "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	gap := Entry{Header: record.Header{V: 1, Kind: record.KindGap, Broadcast: "b", Track: "t", First: 1, Last: 2, Reason: "reset", ReceivedUnixMs: 5}}
	line, err := AppendLine(nil, gap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, line, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(dir, "b", "t")
	if err != nil || !slices.EqualFunc(got, []Entry{gap}, func(a, b Entry) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Fatalf("ReadFile: %v %+v", err, got)
	}
	if err := os.WriteFile(path, append(line, "{}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(dir, "b", "t"); err == nil {
		t.Error("ReadFile accepted an invalid line")
	}
	if _, err := ReadFile(dir, "b", "none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
}
