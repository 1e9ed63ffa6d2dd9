package safefs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bothResolvers runs fn with openat2 and with the O_NOFOLLOW walk.
func bothResolvers(t *testing.T, fn func(t *testing.T)) {
	for _, walk := range []bool{false, true} {
		name := "openat2"
		if walk {
			name = "walk"
		}
		t.Run(name, func(t *testing.T) {
			saved := noOpenat2.Load()
			noOpenat2.Store(walk)
			t.Cleanup(func() { noOpenat2.Store(saved) })
			fn(t)
			if !walk && noOpenat2.Load() {
				t.Log("openat2 is not available here: both runs used the walk")
			}
		})
	}
}

// tree makes a root holding a/file, a/fifo, link-file -> ../outside,
// link-dir -> ../elsewhere and a/inner -> /dev/zero, and a file and directory
// outside it. It returns the root and the outside file.
func tree(t *testing.T) (*Root, string) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	must(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	must(t, os.MkdirAll(filepath.Join(base, "elsewhere"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "a", "file"), []byte("inside"), 0o644))
	must(t, os.WriteFile(filepath.Join(base, "elsewhere", "file"), []byte("elsewhere"), 0o644))
	must(t, os.WriteFile(outside, []byte("outside"), 0o644))
	must(t, unix.Mkfifo(filepath.Join(root, "a", "fifo"), 0o644))
	must(t, os.Symlink("../outside", filepath.Join(root, "link-file")))
	must(t, os.Symlink("../elsewhere", filepath.Join(root, "link-dir")))
	must(t, os.Symlink("/dev/zero", filepath.Join(root, "a", "zero")))
	r, err := OpenRoot(root)
	must(t, err)
	return r, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// notBlocking fails the test if fn does not return in a long while: a FIFO
// opened for reading without O_NONBLOCK would block forever.
func notBlocking(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("blocked")
	}
}

func TestOpenRefusesWhatLeavesTheRoot(t *testing.T) {
	tests := []struct {
		name    string
		open    func(r *Root, rel string) (*os.File, error)
		rel     string
		want    error  // nil: opens
		badPath string // the path the error must name
	}{
		{"regular file", (*Root).Open, "a/file", nil, ""},
		{"directory", (*Root).OpenDir, "a", nil, ""},
		{"root itself", (*Root).OpenDir, ".", nil, ""},
		{"symlinked file", (*Root).Open, "link-file", ErrSymlink, "link-file"},
		{"symlink to /dev/zero", (*Root).Open, "a/zero", ErrSymlink, "a/zero"},
		{"through a symlinked directory", (*Root).Open, "link-dir/file", ErrSymlink, "link-dir"},
		{"symlinked directory", (*Root).OpenDir, "link-dir", ErrSymlink, "link-dir"},
		{"FIFO", (*Root).Open, "a/fifo", ErrNotRegular, "a/fifo"},
		{"FIFO as a directory", (*Root).OpenDir, "a/fifo", ErrNotDir, "a/fifo"},
		{"file as a directory", (*Root).OpenDir, "a/file", ErrNotDir, "a/file"},
		{"directory as a file", (*Root).Open, "a", ErrNotRegular, "a"},
		{"file as a parent", (*Root).Open, "a/file/x", ErrNotDir, "a/file"},
		{"dot-dot", (*Root).Open, "a/../a/file", nil, ""},
		{"absolute", (*Root).Open, "/etc/passwd", nil, ""},
	}
	bothResolvers(t, func(t *testing.T) {
		r, _ := tree(t)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var f *os.File
				var err error
				notBlocking(t, func() { f, err = tt.open(r, tt.rel) })
				if f != nil {
					defer f.Close()
				}
				invalid := strings.Contains(tt.rel, "..") || filepath.IsAbs(tt.rel)
				switch {
				case invalid:
					if err == nil || !strings.Contains(err.Error(), "not a clean relative path") {
						t.Fatalf("open %q: %v, want refused as not below the root", tt.rel, err)
					}
				case tt.want == nil:
					if err != nil {
						t.Fatalf("open %q: %v", tt.rel, err)
					}
				default:
					var pe *os.PathError
					if !errors.Is(err, tt.want) || !errors.As(err, &pe) || pe.Path != r.Join(tt.badPath) || !IsWrongKind(err) {
						t.Fatalf("open %q: %v, want %v naming %s", tt.rel, err, tt.want, r.Join(tt.badPath))
					}
				}
			})
		}
	})
}

func TestLstatDescribesLinks(t *testing.T) {
	bothResolvers(t, func(t *testing.T) {
		r, _ := tree(t)
		fi, err := r.Lstat("link-file")
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("Lstat(link-file) = %v, %v; want the link itself", fi, err)
		}
		if _, err := r.Lstat("link-dir/file"); !errors.Is(err, ErrSymlink) {
			t.Errorf("Lstat through a link: %v, want ErrSymlink", err)
		}
		if _, err := r.Lstat("a/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat(a/missing): %v, want not exist", err)
		}
	})
}

func TestWritesNeverLeaveTheRoot(t *testing.T) {
	bothResolvers(t, func(t *testing.T) {
		r, outside := tree(t)
		elsewhere := filepath.Join(filepath.Dir(outside), "elsewhere")
		if err := r.MkdirAll("link-dir/sub", 0o755); !errors.Is(err, ErrSymlink) {
			t.Errorf("MkdirAll through a link: %v", err)
		}
		if _, err := r.OpenFile("link-file", os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644); !errors.Is(err, ErrSymlink) {
			t.Errorf("OpenFile(link-file) for append: %v", err)
		}
		if _, _, err := r.CreateTemp("link-dir", "t-", 0o644); !errors.Is(err, ErrSymlink) {
			t.Errorf("CreateTemp in a linked dir: %v", err)
		}
		if err := r.Rename("a/file", "link-dir/moved", unix.RENAME_NOREPLACE); !errors.Is(err, ErrSymlink) {
			t.Errorf("Rename into a linked dir: %v", err)
		}
		if err := r.Link("a/file", "link-dir/linked"); !errors.Is(err, ErrSymlink) {
			t.Errorf("Link into a linked dir: %v", err)
		}
		if err := r.Remove("link-dir/file"); !errors.Is(err, ErrSymlink) {
			t.Errorf("Remove through a linked dir: %v", err)
		}
		if err := r.SyncDir("link-dir"); !errors.Is(err, ErrSymlink) {
			t.Errorf("SyncDir of a linked dir: %v", err)
		}
		if err := r.SyncDir("missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("SyncDir of a missing dir: %v", err)
		}
		must(t, r.SyncDir("."))
		must(t, r.SyncDir("a"))
		// Replacing a link replaces the link, not its target.
		must(t, r.WriteFileAtomic("link-file", []byte("new"), 0o600))
		if got, _ := os.ReadFile(outside); string(got) != "outside" {
			t.Errorf("outside file now %q", got)
		}
		if got, err := r.ReadFile("link-file", 10); err != nil || string(got) != "new" {
			t.Errorf("replaced file: %q, %v", got, err)
		}
		if fi, _ := r.Lstat("link-file"); fi.Mode() != 0o600 {
			t.Errorf("mode %v, want 0600 exactly", fi.Mode())
		}
		entries, _ := os.ReadDir(elsewhere)
		if len(entries) != 1 {
			t.Errorf("elsewhere holds %v, want only its file", entries)
		}
		must(t, r.MkdirAll("b/c/d", 0o755))
		if fi, err := os.Stat(filepath.Join(r.Path(), "b/c/d")); err != nil || !fi.IsDir() {
			t.Errorf("MkdirAll b/c/d: %v", err)
		}
	})
}

func TestSizedReaderStopsAtOpenSize(t *testing.T) {
	bothResolvers(t, func(t *testing.T) {
		r, _ := tree(t)
		f, err := r.Open("a/file")
		must(t, err)
		defer f.Close()
		rd, size, err := SizedReader(f)
		must(t, err)
		// The file grows after the open: the read must stop with an error.
		w, err := os.OpenFile(r.Join("a/file"), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		w.Write(bytes.Repeat([]byte("x"), 1<<20))
		w.Close()
		got, err := io.ReadAll(rd)
		if !errors.Is(err, ErrGrew) || int64(len(got)) != size || string(got) != "inside" {
			t.Errorf("read %d bytes (%v), want %d and ErrGrew", len(got), err, size)
		}
		if _, err := r.ReadFile("a/file", 100); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("ReadFile over its bound: %v", err)
		}
	})
}

func TestRootResolvedOnce(t *testing.T) {
	base := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(base, "real"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "real", "f"), []byte("x"), 0o644))
	must(t, os.Symlink("real", filepath.Join(base, "link")))
	r, err := OpenRoot(filepath.Join(base, "link"))
	must(t, err)
	if r.Path() != filepath.Join(base, "real") {
		t.Errorf("Path() = %s", r.Path())
	}
	// Pointing the link elsewhere later does not move the root.
	must(t, os.Remove(filepath.Join(base, "link")))
	must(t, os.Symlink("/", filepath.Join(base, "link")))
	if got, err := r.ReadFile("f", 10); err != nil || string(got) != "x" {
		t.Errorf("ReadFile after the link moved: %q, %v", got, err)
	}
}

// TestRootPathReplaced: the root's resolved path is opened anew by every
// operation, so a directory recreated (or mounted) there is used, and a link
// put in its place is refused.
func TestRootPathReplaced(t *testing.T) {
	bothResolvers(t, func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "m")
		must(t, MkdirAll(dir, 0o755))
		r, err := OpenRoot(dir)
		must(t, err)
		must(t, os.RemoveAll(dir))
		if err := r.MkdirAll("x", 0o755); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("MkdirAll in a removed root: %v", err)
		}
		must(t, MkdirAll(dir, 0o755))
		must(t, r.MkdirAll("x", 0o755))
		if _, err := os.Stat(filepath.Join(dir, "x")); err != nil {
			t.Errorf("after the root was recreated: %v", err)
		}
		must(t, os.Rename(dir, filepath.Join(base, "moved")))
		must(t, os.Symlink("moved", dir))
		if _, err := r.ReadDir("."); !errors.Is(err, ErrSymlink) {
			t.Errorf("root replaced by a link: %v, want ErrSymlink", err)
		}
	})
}

func TestMkdirAllPathRefusesFiles(t *testing.T) {
	dir := t.TempDir()
	must(t, MkdirAll(filepath.Join(dir, "a/b/c"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	if err := MkdirAll(filepath.Join(dir, "f"), 0o755); !errors.Is(err, ErrNotDir) {
		t.Errorf("MkdirAll over a file: %v", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "a/status"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(filepath.Join(dir, "a/status"), 10); err != nil || string(got) != "{}" {
		t.Errorf("ReadFile: %q, %v", got, err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("SyncDir(missing): %v", err)
	}
}

func TestMkdir(t *testing.T) {
	bothResolvers(t, func(t *testing.T) {
		r, _ := tree(t)
		tests := []struct {
			rel  string
			want error // nil: created
		}{
			{"a/new", nil},
			{"a", fs.ErrExist},
			{"a/file", ErrNotDir},
			{"link-dir", ErrSymlink},
			{"link-dir/sub", ErrSymlink},
			{"missing/sub", fs.ErrNotExist},
		}
		for _, tt := range tests {
			err := r.Mkdir(tt.rel, 0o755)
			switch {
			case tt.want == nil:
				if fi, serr := os.Lstat(r.Join(tt.rel)); err != nil || serr != nil || !fi.IsDir() {
					t.Errorf("Mkdir(%q): %v; then lstat %v", tt.rel, err, serr)
				}
			case !errors.Is(err, tt.want):
				t.Errorf("Mkdir(%q) = %v, want %v", tt.rel, err, tt.want)
			}
		}
		if err := r.Mkdir("../escape", 0o755); err == nil {
			t.Error("Mkdir(../escape) succeeded")
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(r.Path()), "escape")); err == nil {
			t.Error("Mkdir made a directory outside the root")
		}
	})
}
