package cas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The on-disk layout, specified in docs/cas-layout.md.
const (
	// LayoutName and LayoutVersion are recorded in <root>/layout.json so that a
	// tree describes its own shard function.
	LayoutName    = "blake3/2hex"
	LayoutVersion = 1
	// LayoutFile is the name of the layout description under the root.
	LayoutFile = "layout.json"
	// TempDir is where objects are written before their name is known, relative
	// to the root. It sits beside the shard directories so that publishing is a
	// same-filesystem rename.
	TempDir = "objects/blake3/.tmp"
	// TempPrefix starts the name of every temp file the store creates; CleanTemp
	// removes only files carrying it.
	TempPrefix = "put-"
)

const maxLayoutFileSize = 4 << 10

// layoutDoc is the content of layout.json.
type layoutDoc struct {
	Layout     string `json:"layout"`
	Version    int    `json:"version"`
	Hash       string `json:"hash"`
	ObjectPath string `json:"object_path"`
	TempDir    string `json:"temp_dir"`
}

var currentLayout = layoutDoc{
	Layout:     LayoutName,
	Version:    LayoutVersion,
	Hash:       "blake3-256, lowercase hex",
	ObjectPath: "objects/blake3/<first 2 hex>/<64 hex>.bin",
	TempDir:    TempDir,
}

// Local is the content-addressed store on a local filesystem. All of its methods
// are safe for concurrent use, and several processes may share one root.
//
// Durability: when Put or Commit returns nil the object's bytes and its directory
// entry have been fsynced. A published object is always complete: bytes are
// fsynced before the name appears. If the final directory fsync fails the error is
// returned and the (complete) object may remain visible.
type Local struct {
	root    string
	objects string // <root>/objects/blake3
	tmp     string // <root>/objects/blake3/.tmp
	// shards coalesce directory fsyncs per shard directory (group commit).
	shards [256]dirSyncer
}

var _ Store = (*Local)(nil)

// OpenLocal opens the store at root, creating root, objects/blake3/, its temp
// directory and layout.json if they are missing; every directory it creates is
// made durable by fsyncing its parent. An existing layout.json that names another
// layout is an error.
//
// Shard directories are created lazily by the first commit into each (mkdir, then
// fsync objects/blake3): that costs one extra fsync 256 times in a store's life,
// while creating all 256 up front costs ~85 ms on this VM's ext4 for every fresh
// root, which every test and short-lived tool would pay.
func OpenLocal(root string) (*Local, error) {
	if root == "" {
		return nil, errors.New("cas: open: empty root path")
	}
	l := &Local{root: root, objects: filepath.Join(root, "objects", "blake3")}
	l.tmp = filepath.Join(l.objects, ".tmp")
	if err := ensureRoot(root); err != nil {
		return nil, err
	}
	if err := ensureDirs(root, "objects"); err != nil {
		return nil, err
	}
	if err := ensureDirs(filepath.Join(root, "objects"), "blake3"); err != nil {
		return nil, err
	}
	if err := ensureDirs(l.objects, ".tmp"); err != nil {
		return nil, err
	}
	for i := range l.shards {
		l.shards[i].dir = filepath.Join(l.objects, fmt.Sprintf("%02x", i))
	}
	// layout.json comes last: its presence means the layout is complete.
	if err := l.ensureLayoutFile(); err != nil {
		return nil, err
	}
	return l, nil
}

// Root returns the root directory the store was opened with.
func (l *Local) Root() string { return l.root }

// Put stores the bytes of r: Create, copy, Commit.
func (l *Local) Put(ctx context.Context, r io.Reader) (PutResult, error) {
	return Put(ctx, l, r)
}

// Open returns the object's bytes.
func (l *Local) Open(ctx context.Context, id ID) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(l.objectFile(id))
	if err != nil {
		return nil, fmt.Errorf("cas: open object %s: %w", id, err)
	}
	return f, nil
}

// Stat returns the object's size; errors.Is(err, fs.ErrNotExist) when absent.
func (l *Local) Stat(ctx context.Context, id ID) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fi, err := os.Lstat(l.objectFile(id))
	if err != nil {
		return 0, fmt.Errorf("cas: stat object %s: %w", id, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("cas: stat object %s: not a regular file (%s)", id, fi.Mode().Type())
	}
	return fi.Size(), nil
}

// CleanTemp removes temp files (names starting with TempPrefix) in the temp
// directory whose modification time is older than olderThan. A writer's temp file
// is modified by every Write, so a grace longer than any writer's idle time (an
// hour, say) never disturbs a live writer, in this process or another. Other files
// are left alone. It returns how many files it removed.
func (l *Local) CleanTemp(olderThan time.Duration) (removed int, err error) {
	entries, err := os.ReadDir(l.tmp)
	if err != nil {
		return 0, fmt.Errorf("cas: clean temp: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), TempPrefix) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // committed or removed meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cas: clean temp: %w", err))
			continue
		}
		if !fi.ModTime().Before(cutoff) {
			continue
		}
		err = os.Remove(filepath.Join(l.tmp, e.Name()))
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("cas: clean temp: %w", err))
		}
	}
	return removed, errors.Join(errs...)
}

func (l *Local) objectFile(id ID) string {
	return filepath.Join(l.root, filepath.FromSlash(ObjectPath(id)))
}

// ensureLayoutFile writes layout.json if absent (temp, fsync, no-overwrite publish,
// fsync root) and otherwise checks that it names this layout.
func (l *Local) ensureLayoutFile() error {
	final := filepath.Join(l.root, LayoutFile)
	for {
		err := checkLayoutFile(final)
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		data, _ := json.Marshal(currentLayout)
		f, tmp, err := createTemp(l.tmp)
		if err != nil {
			return err
		}
		_, err = writeFile(f, append(data, '\n'))
		if err == nil {
			err = syncFile(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = publishNoReplace(tmp, final)
		}
		os.Remove(tmp) // gone after a rename; after link or on error, drop it
		switch {
		case err == nil:
			return syncDir(l.root)
		case errors.Is(err, fs.ErrExist):
			continue // another process wrote it first: check theirs
		default:
			return fmt.Errorf("cas: write %s: %w", final, err)
		}
	}
}

// checkLayoutFile returns an fs.ErrNotExist error when path is absent, nil when
// it describes this layout.
func checkLayoutFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cas: layout: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLayoutFileSize+1))
	if err != nil {
		return fmt.Errorf("cas: layout: read %s: %w", path, err)
	}
	if len(data) > maxLayoutFileSize {
		return fmt.Errorf("cas: layout: %s is larger than %d bytes", path, maxLayoutFileSize)
	}
	var doc layoutDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("cas: layout: parse %s: %w", path, err)
	}
	if doc.Layout != LayoutName || doc.Version != LayoutVersion {
		return fmt.Errorf("cas: layout: %s describes layout %q version %d; this program knows %q version %d",
			path, doc.Layout, doc.Version, LayoutName, LayoutVersion)
	}
	return nil
}

// ensureRoot creates root if missing and makes its entry durable in its parent.
func ensureRoot(root string) error {
	if fi, err := os.Stat(root); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("cas: open: %s is not a directory", root)
		}
		return nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("cas: open: %w", err)
	}
	return syncDir(filepath.Dir(filepath.Clean(root)))
}

// ensureDirs creates the named subdirectories of parent that are missing and, if
// it created any, fsyncs parent so that they survive a crash.
func ensureDirs(parent string, names ...string) error {
	created := false
	for _, name := range names {
		p := filepath.Join(parent, name)
		err := os.Mkdir(p, 0o755)
		if err == nil {
			created = true
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cas: open: %w", err)
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return fmt.Errorf("cas: open: %s exists and is not a directory", p)
		}
	}
	if !created {
		return nil
	}
	return syncDir(parent)
}

// createTemp creates a new, empty, read-only temp file in dir with a random name
// that no other writer, in any process, can choose too (O_EXCL).
func createTemp(dir string) (*os.File, string, error) {
	var b [12]byte
	for range 5 {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, "", fmt.Errorf("cas: temp name: %w", err)
		}
		name := filepath.Join(dir, TempPrefix+hex.EncodeToString(b[:]))
		// Objects are never modified after creation, so the file is read-only
		// from the start; the open descriptor is still writable.
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", fmt.Errorf("cas: create temp: %w", err)
		}
	}
	return nil, "", fmt.Errorf("cas: create temp in %s: name collisions", dir)
}

// publishNoReplace gives tmp the name final unless final exists, in which case
// the error satisfies errors.Is(err, fs.ErrExist). It never overwrites. tmp may
// still exist afterwards (link fallback); the caller removes it.
func publishNoReplace(tmp, final string) error {
	if !linkOnly.Load() {
		err := renameNoReplace(tmp, final)
		if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) && !errors.Is(err, syscall.EOPNOTSUPP) {
			return err
		}
		// The filesystem has no renameat2 flags (older ZFS, some network file
		// systems): fall back to link(2), which fails with EEXIST the same way.
		linkOnly.Store(true)
	}
	return os.Link(tmp, final)
}

// Failure-injection seams: the system calls on the write path, replaced by tests.
var (
	writeFile       = (*os.File).Write
	syncFile        = (*os.File).Sync
	renameNoReplace = func(oldpath, newpath string) error {
		err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
		if err != nil {
			return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
		}
		return nil
	}
	syncDir = func(dir string) error {
		d, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("cas: fsync directory: %w", err)
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("cas: fsync directory %s: %w", dir, err)
		}
		return nil
	}
)
