package cas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/every-channel/ec-node/internal/safefs"
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

// objectsDir holds the shard directories, relative to the root.
const objectsDir = "objects/blake3"

// Local is the content-addressed store on a local filesystem. All of its methods
// are safe for concurrent use, and several processes may share one root.
//
// Durability: when Put or Commit returns nil the object's bytes and its directory
// entry have been fsynced. A published object is always complete: bytes are
// fsynced before the name appears. If the final directory fsync fails the error is
// returned and the (complete) object may remain visible.
//
// Trust boundary: the root is resolved once, at OpenLocal; below it no symbolic
// link is followed and no special file is read (docs/cas-layout.md). A shard or
// objects/ directory that is a link makes Put fail with an error naming it.
type Local struct {
	path string // as given to OpenLocal
	root *safefs.Root
	// shards coalesce directory fsyncs per shard directory (group commit);
	// objects coalesces those of objects/blake3 after shard directories are made.
	shards  [256]dirSyncer
	objects dirSyncer
}

var _ Store = (*Local)(nil)

// OpenLocal opens the store at root, creating root, objects/blake3/, its temp
// directory and layout.json if they are missing; every directory it creates is
// made durable by fsyncing its parent. An existing layout.json that names another
// layout is an error, and so is a symbolic link or special file where the layout
// has a directory.
//
// Shard directories are created lazily by the first commit into each (mkdir, then
// fsync objects/blake3): that costs one extra fsync 256 times in a store's life,
// while creating all 256 up front costs ~85 ms on this VM's ext4 for every fresh
// root, which every test and short-lived tool would pay.
func OpenLocal(root string) (*Local, error) {
	if root == "" {
		return nil, errors.New("cas: open: empty root path")
	}
	if err := safefs.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("cas: open: %w", err)
	}
	r, err := safefs.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("cas: open: %w", err)
	}
	l := &Local{path: root, root: r}
	if err := r.MkdirAll(TempDir, 0o755); err != nil {
		return nil, fmt.Errorf("cas: open: %w", err)
	}
	l.objects = dirSyncer{root: r, dir: objectsDir}
	for i := range l.shards {
		l.shards[i] = dirSyncer{root: r, dir: fmt.Sprintf("%s/%02x", objectsDir, i)}
	}
	// layout.json comes last: its presence means the layout is complete.
	if err := l.ensureLayoutFile(); err != nil {
		return nil, err
	}
	return l, nil
}

// Root returns the root directory the store was opened with.
func (l *Local) Root() string { return l.path }

// Put stores the bytes of r: Create, copy, Commit.
func (l *Local) Put(ctx context.Context, r io.Reader) (PutResult, error) {
	return Put(ctx, l, r)
}

// Open returns the object's bytes: the regular file's content as of the open.
// Reading past that size (a file that grows) fails with safefs.ErrGrew.
func (l *Local) Open(ctx context.Context, id ID) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := l.root.Open(ObjectPath(id))
	if err != nil {
		return nil, fmt.Errorf("cas: open object %s: %w", id, err)
	}
	r, _, err := safefs.SizedReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cas: open object %s: %w", id, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// Stat returns the object's size; errors.Is(err, fs.ErrNotExist) when absent.
func (l *Local) Stat(ctx context.Context, id ID) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fi, err := l.root.Lstat(ObjectPath(id))
	if err != nil {
		return 0, fmt.Errorf("cas: stat object %s: %w", id, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("cas: stat object %s: %w (%s)", id, safefs.ErrNotRegular, safefs.TypeName(fi.Mode()))
	}
	return fi.Size(), nil
}

// CleanTemp removes temp files (names starting with TempPrefix) in the temp
// directory whose modification time is older than olderThan. A writer's temp file
// is modified by every Write, so a grace longer than any writer's idle time (an
// hour, say) never disturbs a live writer, in this process or another. Other files
// are left alone. It returns how many files it removed.
func (l *Local) CleanTemp(olderThan time.Duration) (removed int, err error) {
	entries, err := l.root.ReadDir(TempDir)
	if err != nil {
		return 0, fmt.Errorf("cas: clean temp: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), TempPrefix) || !e.Type().IsRegular() {
			continue
		}
		rel := TempDir + "/" + e.Name()
		fi, err := l.root.Lstat(rel)
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
		err = l.root.Remove(rel)
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("cas: clean temp: %w", err))
		}
	}
	return removed, errors.Join(errs...)
}

// ensureLayoutFile writes layout.json if absent (temp, fsync, no-overwrite publish,
// fsync root) and otherwise checks that it names this layout.
func (l *Local) ensureLayoutFile() error {
	for {
		err := checkLayoutFile(l.root)
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		data, _ := json.Marshal(currentLayout)
		f, tmp, err := l.root.CreateTemp(TempDir, TempPrefix, 0o444)
		if err != nil {
			return fmt.Errorf("cas: %w", err)
		}
		_, err = writeFile(f, append(data, '\n'))
		if err == nil {
			err = syncFile(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = publishNoReplace(l.root, tmp, LayoutFile)
		}
		l.root.Remove(tmp) // gone after a rename; after link or on error, drop it
		switch {
		case err == nil:
			return syncDir(l.root, ".")
		case errors.Is(err, fs.ErrExist):
			continue // another process wrote it first: check theirs
		default:
			return fmt.Errorf("cas: write %s: %w", l.root.Join(LayoutFile), err)
		}
	}
}

// checkLayoutFile returns an fs.ErrNotExist error when layout.json is absent,
// nil when it describes this layout.
func checkLayoutFile(r *safefs.Root) error {
	path := r.Join(LayoutFile)
	data, err := r.ReadFile(LayoutFile, maxLayoutFileSize)
	if err != nil {
		return fmt.Errorf("cas: layout: %w", err)
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

// publishNoReplace gives tmp the name final (both relative to the root) unless
// final exists, in which case the error satisfies errors.Is(err, fs.ErrExist).
// It never overwrites. tmp may still exist afterwards (link fallback); the
// caller removes it.
func publishNoReplace(r *safefs.Root, tmp, final string) error {
	if !linkOnly.Load() {
		err := renameNoReplace(r, tmp, final)
		if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) && !errors.Is(err, syscall.EOPNOTSUPP) {
			return err
		}
		// The filesystem has no renameat2 flags (older ZFS, some network file
		// systems): fall back to link(2), which fails with EEXIST the same way.
		linkOnly.Store(true)
	}
	return r.Link(tmp, final)
}

// Failure-injection seams: the system calls on the write path, replaced by tests.
var (
	writeFile       = (*os.File).Write
	syncFile        = (*os.File).Sync
	renameNoReplace = func(r *safefs.Root, oldrel, newrel string) error {
		return r.Rename(oldrel, newrel, unix.RENAME_NOREPLACE)
	}
	syncDir = (*safefs.Root).SyncDir
)
