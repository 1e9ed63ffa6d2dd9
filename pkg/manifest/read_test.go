package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/internal/safefs"
)

func TestTreeRead(t *testing.T) {
	line := func(e Entry) string {
		b, err := AppendLine(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	elsewhere := groupEntry(3, "c")
	elsewhere.Track = "audio"
	tests := []struct {
		name    string
		content string
		want    int    // entries read
		wantErr string // in the error; "" for none
	}{
		{"complete lines", line(groupEntry(1, "a")) + line(gapEntry(2, 2)), 2, ""},
		{"empty", "", 0, ""},
		{"last line being appended", line(groupEntry(1, "a")) + `{"v":1,"kind":"gr`, 1, ""},
		{"invalid line", line(groupEntry(1, "a")) + "not json\n" + line(groupEntry(2, "b")), 0, "line 2"},
		{"entry of another file", line(groupEntry(1, "a")) + line(elsewhere), 0, `line 2: entry for broadcast "live/alice" track "audio" belongs in`},
	}
	rel, _ := FilePath("", testBroadcast, testTrack)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, rel)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(dir, testBroadcast, testTrack)
			if tt.wantErr == "" && (err != nil || len(got) != tt.want) {
				t.Errorf("read %d entries, %v; want %d", len(got), err, tt.want)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p)) {
				t.Errorf("error %v, want one naming %s and %q", err, p, tt.wantErr)
			}
		})
	}
	if _, err := ReadFile(t.TempDir(), testBroadcast, testTrack); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestTreeFilesPassesOverNonManifests: regular files that are not manifests
// are no hazard and are not reported (manifest check does); a directory named
// *.jsonl is.
func TestTreeFilesPassesOverNonManifests(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{SessionLogName, "notes.txt", "b/t.jsonl", "b/notes.txt", "b/sub/x.jsonl", "b/dir.jsonl/x.jsonl"} {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := OpenTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	var strays []error
	files, err := tree.Files("", func(err error) error { strays = append(strays, err); return nil })
	if err != nil || !slices.Equal(files, []string{"b/t.jsonl"}) {
		t.Errorf("Files: %q, %v; want only b/t.jsonl", files, err)
	}
	if len(strays) != 1 || !errors.Is(strays[0], safefs.ErrNotRegular) || !strings.Contains(strays[0].Error(), filepath.Join(dir, "b/dir.jsonl")) {
		t.Errorf("strays %v, want b/dir.jsonl as not a regular file", strays)
	}
}
