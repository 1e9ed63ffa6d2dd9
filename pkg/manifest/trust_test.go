package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/cas"
)

// precious is a file outside the manifest directory whose content looks like a
// torn manifest tail: the repair would cut it if it ever got to it.
const precious = `{"v":1,"kind":"group","broadcast":"someone else's data`

func TestAppendRefusesLinksAndSpecialFiles(t *testing.T) {
	rel, _ := FilePath("", testBroadcast, testTrack)
	tests := []struct {
		name string
		// plant makes the manifest path under dir something else; it returns
		// the file outside dir that must stay byte-identical ("" if none).
		plant   func(t *testing.T, dir string) string
		want    error
		badPath string // relative to dir
	}{
		{"file is a link outside", func(t *testing.T, dir string) string {
			outside := filepath.Join(t.TempDir(), "victim")
			os.WriteFile(outside, []byte(precious), 0o644)
			os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
			if err := os.Symlink(outside, filepath.Join(dir, rel)); err != nil {
				t.Fatal(err)
			}
			return outside
		}, safefs.ErrSymlink, rel},
		{"broadcast directory is a link outside", func(t *testing.T, dir string) string {
			outside := t.TempDir()
			os.WriteFile(filepath.Join(outside, filepath.Base(rel)), []byte(precious), 0o644)
			if err := os.Symlink(outside, filepath.Join(dir, filepath.Dir(rel))); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(outside, filepath.Base(rel))
		}, safefs.ErrSymlink, filepath.Dir(rel)},
		{"file is a FIFO", func(t *testing.T, dir string) string {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
			if err := unix.Mkfifo(filepath.Join(dir, rel), 0o644); err != nil {
				t.Fatal(err)
			}
			return ""
		}, safefs.ErrNotRegular, rel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := tt.plant(t, dir)
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), filepath.Join(dir, tt.badPath)) {
					t.Errorf("%s: %v, want %v naming %s", what, err, tt.want, tt.badPath)
				}
			}
			manifesttest.Finish(t, func() {
				_, _, err := OpenAppender(dir, testBroadcast, testTrack, nil)
				check("OpenAppender", err)
				d, err := OpenDir(dir, 0, nil)
				if err != nil {
					t.Error(err)
					return
				}
				defer d.Close()
				_, err = d.Append(testBroadcast, testTrack, groupEntry(1, "a"))
				check("Dir.Append", err)
				_, _, err = ReadResumePoint(dir, testBroadcast, testTrack)
				check("ReadResumePoint", err)
			})
			if outside != "" {
				if got, _ := os.ReadFile(outside); string(got) != precious {
					t.Errorf("file outside the manifest directory changed to %q", got)
				}
			}
		})
	}
}

// TestAppendRefusesLinkSwappedIn: a manifest file replaced by a link while an
// appender has it open is not written through.
func TestAppendRefusesLinkSwappedIn(t *testing.T) {
	dir := t.TempDir()
	a, _ := openTest(t, dir)
	if _, err := a.Append(groupEntry(1, "a")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte(precious), 0o644)
	os.Remove(a.Path())
	os.Symlink(outside, a.Path())
	if _, err := a.Append(groupEntry(2, "b")); !errors.Is(err, safefs.ErrSymlink) {
		t.Errorf("Append after a link replaced the file: %v", err)
	}
	if got, _ := os.ReadFile(outside); string(got) != precious {
		t.Errorf("file outside the manifest directory changed to %q", got)
	}
}

func TestCheckReportsLinksAndSpecialFiles(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, dir string) (problemFile string)
	}{
		{"linked manifest file", func(t *testing.T, dir string) string {
			outside := filepath.Join(t.TempDir(), "x.jsonl")
			os.WriteFile(outside, nil, 0o644)
			os.Mkdir(filepath.Join(dir, "b"), 0o755)
			os.Symlink(outside, filepath.Join(dir, "b", "t.jsonl"))
			return "b/t.jsonl"
		}},
		{"linked broadcast directory", func(t *testing.T, dir string) string {
			os.Symlink(t.TempDir(), filepath.Join(dir, "b"))
			return "b"
		}},
		{"FIFO manifest file", func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "b"), 0o755)
			if err := unix.Mkfifo(filepath.Join(dir, "b", "t.jsonl"), 0o644); err != nil {
				t.Fatal(err)
			}
			return "b/t.jsonl"
		}},
		{"FIFO at the top", func(t *testing.T, dir string) string {
			if err := unix.Mkfifo(filepath.Join(dir, "p"), 0o644); err != nil {
				t.Fatal(err)
			}
			return "p"
		}},
	}
	store, err := cas.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := tt.plant(t, dir)
			var rep CheckReport
			manifesttest.Finish(t, func() { rep, err = Check(context.Background(), dir, store, CheckOptions{}) })
			if err != nil {
				t.Fatal(err)
			}
			if rep.ProblemCount != 1 || rep.Problems[0].Kind != ProblemStrayFile || rep.Problems[0].File != file || rep.Files != 0 {
				t.Errorf("report %+v, want one stray-file problem for %s", rep, file)
			}
		})
	}
}

// TestCheckLinkedManifestDir: the directory given may itself be a link (an
// operator's choice); it is resolved once and its files are checked.
func TestCheckLinkedManifestDir(t *testing.T) {
	store, err := cas.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := t.TempDir()
	entries := storeGroups(t, store, "one", "two")
	a, _ := openTest(t, real)
	if _, err := a.Append(entries...); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "manifests")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(context.Background(), link, store, CheckOptions{Rehash: true})
	if err != nil || !rep.Clean() || rep.Files != 1 || rep.Groups != 2 {
		t.Errorf("check through a linked manifest dir: %+v, %v; want 1 file, 2 groups, clean", rep, err)
	}
}

// TestReadRefusesLinksAndSpecialFiles: no reading path follows a link below
// the manifest directory or opens a FIFO; a listing of every broadcast goes on
// past it, reporting it.
func TestReadRefusesLinksAndSpecialFiles(t *testing.T) {
	manifesttest.CheckRefused(t, func(t *testing.T) (string, string, func(*manifesttest.Planted)) {
		dir := t.TempDir()
		d, err := OpenDir(dir, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		other := groupEntry(1, "b")
		other.Broadcast = "live/bob"
		for _, e := range []Entry{groupEntry(1, "a"), other} {
			if _, err := d.Append(e.Broadcast, e.Track, e); err != nil {
				t.Fatal(err)
			}
		}
		rel, _ := FilePath("", testBroadcast, testTrack)
		otherRel, _ := FilePath("", other.Broadcast, other.Track)
		return dir, rel, func(p *manifesttest.Planted) {
			entries, err := ReadFile(dir, testBroadcast, testTrack)
			p.Refused("ReadFile", err)
			if len(entries) != 0 {
				t.Errorf("ReadFile returned %d entries", len(entries))
			}
			tree, err := OpenTree(dir)
			if err != nil {
				t.Error(err)
				return
			}
			_, err = tree.Read(rel)
			p.Refused("Tree.Read", err)
			_, err = tree.Files(testBroadcast, func(err error) error { return err })
			p.Refused("Tree.Files of the broadcast", err)
			var strays []error
			files, err := tree.Files("", func(err error) error { strays = append(strays, err); return nil })
			if err != nil || !slices.Equal(files, []string{otherRel}) {
				t.Errorf("Tree.Files of all: %q, %v; want only %s", files, err, otherRel)
			}
			if len(strays) != 1 {
				t.Errorf("Tree.Files of all reported %v, want one stray", strays)
				return
			}
			p.Refused("Tree.Files of all, stray", strays[0])
		}
	})
}
