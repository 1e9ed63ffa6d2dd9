package safefs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noOpenat2 is set once openat2(2) turned out to be missing (ENOSYS); tests set
// it to exercise the component-by-component walk.
var noOpenat2 atomic.Bool

// Root is a directory that acts as a trust boundary. Paths given to its methods
// are relative, slash-separated and clean ("objects/blake3/ab"); none may
// contain "..", and no symbolic link is followed anywhere below the root. Safe
// for concurrent use.
//
// The root's path is resolved once, by OpenRoot. Each operation then opens that
// resolved path (O_NOFOLLOW: a root later replaced by a link is refused) and
// works relative to the descriptor. It is not held between operations: a held
// descriptor would pin a directory the operator has since mounted over (a data
// disk mounted late, a read-only bind mount), so writes would land hidden under
// the mount point and the mount could not be unmounted.
type Root struct {
	path string // absolute, symbolic links resolved
}

// OpenRoot returns the existing directory at path as a Root. Symbolic links in
// path itself are resolved now, once: the operator chose them.
func OpenRoot(path string) (*Root, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	r := &Root{path: resolved}
	if err := r.withDir(func(int) error { return nil }); err != nil {
		return nil, err
	}
	return r, nil
}

// Path is the root's absolute, resolved path.
func (r *Root) Path() string { return r.path }

// Join returns the full path of rel, for messages and for callers outside the
// boundary.
func (r *Root) Join(rel string) string { return filepath.Join(r.path, filepath.FromSlash(rel)) }

// withDir runs fn with a descriptor of the root directory.
func (r *Root) withDir(fn func(dirfd int) error) error {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(r.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		if err == unix.ENOTDIR {
			if fi, lerr := os.Lstat(r.path); lerr == nil {
				err = kindOf(fi.Mode())
			}
		}
		return &os.PathError{Op: "open", Path: r.path, Err: err}
	}
	defer unix.Close(fd)
	return fn(fd)
}

// open opens rel below the root with flags (O_NOFOLLOW and O_CLOEXEC are
// added) and checks that it is of kind want (unix.S_IFREG, unix.S_IFDIR, or 0
// for anything: the caller looks).
//
// An O_DIRECTORY open returns a directory and an O_CREAT|O_EXCL open a new
// regular file, or they fail; neither can open a FIFO. The kernel having
// checked those, they go without O_NONBLOCK and fstat: two system calls fewer
// on every directory and temp file the write path opens.
func (r *Root) open(op, rel string, flags int, perm fs.FileMode, want uint32) (*os.File, error) {
	if err := checkRel(rel); err != nil {
		return nil, &os.PathError{Op: op, Path: rel, Err: err}
	}
	kernelChecked := flags&unix.O_DIRECTORY != 0 && want == unix.S_IFDIR ||
		flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL && want == unix.S_IFREG
	if !kernelChecked && flags&unix.O_PATH == 0 {
		flags |= unix.O_NONBLOCK // a FIFO must not block the open
	}
	var fd int
	err := r.withDir(func(dirfd int) error {
		var err error
		fd, err = openBeneath(dirfd, rel, flags, uint32(perm.Perm()))
		return err
	})
	if err != nil {
		return nil, r.pathError(op, rel, err)
	}
	if kernelChecked || want == 0 && flags&unix.O_PATH != 0 {
		return os.NewFile(uintptr(fd), r.Join(rel)), nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: r.Join(rel), Err: err}
	}
	if want != 0 && st.Mode&unix.S_IFMT != want {
		unix.Close(fd)
		kind := ErrNotRegular
		if want == unix.S_IFDIR {
			kind = ErrNotDir
		}
		return nil, &os.PathError{Op: op, Path: r.Join(rel), Err: fmt.Errorf("%w (%s)", kind, TypeName(modeOf(st.Mode)))}
	}
	if flags&unix.O_NONBLOCK == 0 {
		return os.NewFile(uintptr(fd), r.Join(rel)), nil
	}
	return newFile(fd, r.Join(rel))
}

// openBeneath opens rel below dirfd without following a symbolic link in any
// component.
func openBeneath(dirfd int, rel string, flags int, perm uint32) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if !noOpenat2.Load() {
		how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
		if flags&unix.O_CREAT != 0 {
			how.Mode = uint64(perm)
		}
		fd, err := ignoringEINTR(func() (int, error) { return unix.Openat2(dirfd, rel, &how) })
		switch err {
		case unix.ENOSYS:
			noOpenat2.Store(true)
		case unix.EPERM:
			// Some container seccomp profiles deny openat2 with EPERM; the
			// walk then gives the real answer (the same EPERM if it is one).
		default:
			return fd, err
		}
	}
	return openWalk(dirfd, rel, flags, perm)
}

// openWalk is openBeneath without openat2: one component at a time, each
// opened O_NOFOLLOW relative to the last. checkRel has ruled out "..".
func openWalk(dirfd int, rel string, flags int, perm uint32) (int, error) {
	parts := strings.Split(rel, "/")
	cur := dirfd
	release := func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}
	for _, p := range parts[:len(parts)-1] {
		fd, err := ignoringEINTR(func() (int, error) {
			return unix.Openat(cur, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		})
		release()
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	defer release()
	return ignoringEINTR(func() (int, error) { return unix.Openat(cur, parts[len(parts)-1], flags, perm) })
}

// pathError turns the errno of a failed open into an error naming the path
// that is wrong: the symbolic link, or the component that is not a directory.
func (r *Root) pathError(op, rel string, err error) error {
	if err == unix.ELOOP || err == unix.ENOTDIR {
		if p, mode, ok := r.firstNotDir(rel); ok {
			return &os.PathError{Op: op, Path: r.Join(p), Err: kindOf(mode)}
		}
	}
	return &os.PathError{Op: op, Path: r.Join(rel), Err: err}
}

// firstNotDir finds the first component of rel that is a symbolic link or not
// a directory.
func (r *Root) firstNotDir(rel string) (prefix string, mode fs.FileMode, ok bool) {
	parts := strings.Split(rel, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		var st unix.Stat_t
		err := r.withDir(func(dirfd int) error { return unix.Fstatat(dirfd, p, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil {
			return "", 0, false
		}
		m := modeOf(st.Mode)
		if !m.IsDir() {
			return p, m, true
		}
	}
	return "", 0, false
}

// checkRel accepts "." and clean relative paths that stay below the root.
func checkRel(rel string) error {
	if rel == "." || filepath.IsLocal(rel) && path.Clean(rel) == rel {
		return nil
	}
	return fmt.Errorf("path %q is not a clean relative path below the root", rel)
}

// newFile wraps a checked descriptor. O_NONBLOCK, there to keep a FIFO from
// blocking the open, is cleared: it means nothing for files and directories.
func newFile(fd int, name string) (*os.File, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func modeOf(m uint32) fs.FileMode {
	perm := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return perm
	case unix.S_IFDIR:
		return perm | fs.ModeDir
	case unix.S_IFLNK:
		return perm | fs.ModeSymlink
	case unix.S_IFIFO:
		return perm | fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return perm | fs.ModeSocket
	case unix.S_IFCHR:
		return perm | fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return perm | fs.ModeDevice
	default:
		return perm | fs.ModeIrregular
	}
}

// Open opens the regular file rel for reading.
func (r *Root) Open(rel string) (*os.File, error) {
	return r.open("open", rel, unix.O_RDONLY, 0, unix.S_IFREG)
}

// OpenFile opens the regular file rel with flag (os.O_RDWR|os.O_CREATE, ...)
// and, when it creates it, mode perm (less the umask).
func (r *Root) OpenFile(rel string, flag int, perm fs.FileMode) (*os.File, error) {
	return r.open("open", rel, flag, perm, unix.S_IFREG)
}

// OpenDir opens the directory rel ("." for the root).
func (r *Root) OpenDir(rel string) (*os.File, error) {
	return r.open("open", rel, unix.O_RDONLY|unix.O_DIRECTORY, 0, unix.S_IFDIR)
}

// ReadDir lists the directory rel, sorted by name. The entries' types come
// from the directory; use Lstat for sizes and times.
func (r *Root) ReadDir(rel string) ([]fs.DirEntry, error) {
	d, err := r.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// Lstat describes rel itself: a symbolic link as the last component is
// described, not followed (one before it is an ErrSymlink error).
func (r *Root) Lstat(rel string) (fs.FileInfo, error) {
	f, err := r.open("lstat", rel, unix.O_PATH, 0, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// ReadFile reads the regular file rel, which must hold at most max bytes.
func (r *Root) ReadFile(rel string, max int64) ([]byte, error) {
	f, err := r.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd, size, err := SizedReader(f)
	if err != nil {
		return nil, err
	}
	if size > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", f.Name(), max)
	}
	return io.ReadAll(rd)
}

// MkdirAll creates the directory rel and any missing parents below the root,
// fsyncing the parent of every level it created, so the chain is durable when
// it returns. A symbolic link or other non-directory on the way is an error
// naming it.
func (r *Root) MkdirAll(rel string, perm fs.FileMode) error {
	if err := checkRel(rel); err != nil {
		return &os.PathError{Op: "mkdir", Path: rel, Err: err}
	}
	if rel == "." {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if fi, err := r.Lstat(p); err == nil {
			if !fi.IsDir() {
				return &os.PathError{Op: "mkdir", Path: r.Join(p), Err: kindOf(fi.Mode())}
			}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		parent := path.Dir(p)
		d, err := r.OpenDir(parent)
		if err != nil {
			return err
		}
		// A concurrent creator may win the mkdir before its parent fsync is
		// done, so the parent is fsynced in that case too.
		err = unix.Mkdirat(int(d.Fd()), parts[i], uint32(perm.Perm()))
		if err != nil && err != unix.EEXIST {
			d.Close()
			return &os.PathError{Op: "mkdir", Path: r.Join(p), Err: err}
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("fsync directory %s: %w", r.Join(parent), err)
		}
		if fi, err := r.Lstat(p); err != nil {
			return err
		} else if !fi.IsDir() {
			return &os.PathError{Op: "mkdir", Path: r.Join(p), Err: kindOf(fi.Mode())}
		}
	}
	return nil
}

// Mkdir creates the directory rel, whose parent must exist, without making it
// durable: the caller fsyncs the parent, so that directories made together can
// share one fsync. An existing directory is an error satisfying
// errors.Is(err, fs.ErrExist); a symbolic link or other file in its place is an
// error naming what it is.
func (r *Root) Mkdir(rel string, perm fs.FileMode) error {
	return r.inParent(rel, func(dirfd int, name string) error {
		err := unix.Mkdirat(dirfd, name, uint32(perm.Perm()))
		if err == unix.EEXIST {
			var st unix.Stat_t
			if serr := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return &os.PathError{Op: "mkdir", Path: r.Join(rel), Err: kindOf(modeOf(st.Mode))}
			}
		}
		if err != nil {
			return &os.PathError{Op: "mkdir", Path: r.Join(rel), Err: err}
		}
		return nil
	})
}

// kindOf is the error for finding m where a directory belongs.
func kindOf(m fs.FileMode) error {
	if m&fs.ModeSymlink != 0 {
		return ErrSymlink
	}
	return fmt.Errorf("%w (%s)", ErrNotDir, TypeName(m))
}

// SyncDir fsyncs the directory rel. It works on the bare descriptor: no
// *os.File (whose creation costs an fcntl and a finalizer) for a directory
// opened only to be fsynced, once per committed object.
func (r *Root) SyncDir(rel string) error {
	if err := checkRel(rel); err != nil {
		return fmt.Errorf("fsync directory: %w", &os.PathError{Op: "open", Path: rel, Err: err})
	}
	return r.withDir(func(rootfd int) error {
		fd, err := openBeneath(rootfd, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("fsync directory: %w", r.pathError("open", rel, err))
		}
		return syncFD(fd, r.Join(rel))
	})
}

// inParent runs fn with a descriptor of rel's parent directory (opened as
// every path below the root is) and rel's last component.
func (r *Root) inParent(rel string, fn func(dirfd int, name string) error) error {
	if err := checkRel(rel); err != nil || rel == "." {
		return fmt.Errorf("path %q: not a file below the root", rel)
	}
	d, err := r.OpenDir(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(int(d.Fd()), path.Base(rel))
}

// Remove removes the file (not directory) rel.
func (r *Root) Remove(rel string) error {
	return r.inParent(rel, func(dirfd int, name string) error {
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return &os.PathError{Op: "remove", Path: r.Join(rel), Err: err}
		}
		return nil
	})
}

// Rename renames oldrel to newrel with renameat2 flags (0, or
// unix.RENAME_NOREPLACE). Both parents are opened without following links, so
// a symbolic link on either side is refused, never written through. The error
// keeps the kernel's errno (EINVAL, ENOSYS when flags are unsupported; EEXIST).
func (r *Root) Rename(oldrel, newrel string, flags uint) error {
	return r.inParents(oldrel, newrel, func(oldfd int, oldname string, newfd int, newname string) error {
		if err := unix.Renameat2(oldfd, oldname, newfd, newname, flags); err != nil {
			return &os.LinkError{Op: "rename", Old: r.Join(oldrel), New: r.Join(newrel), Err: err}
		}
		return nil
	})
}

// Link gives the file oldrel the second name newrel; it never replaces.
func (r *Root) Link(oldrel, newrel string) error {
	return r.inParents(oldrel, newrel, func(oldfd int, oldname string, newfd int, newname string) error {
		if err := unix.Linkat(oldfd, oldname, newfd, newname, 0); err != nil {
			return &os.LinkError{Op: "link", Old: r.Join(oldrel), New: r.Join(newrel), Err: err}
		}
		return nil
	})
}

// inParents is inParent for two paths, a rename's or a link's. Both parents
// are opened O_PATH (all the *at calls need) from one descriptor of the root:
// the root's own path is looked up once, not twice.
func (r *Root) inParents(a, b string, fn func(afd int, aname string, bfd int, bname string) error) error {
	for _, rel := range []string{a, b} {
		if err := checkRel(rel); err != nil || rel == "." {
			return fmt.Errorf("path %q: not a file below the root", rel)
		}
	}
	return r.withDir(func(rootfd int) error {
		afd, err := r.openParent(rootfd, a)
		if err != nil {
			return err
		}
		defer unix.Close(afd)
		bfd, err := r.openParent(rootfd, b)
		if err != nil {
			return err
		}
		defer unix.Close(bfd)
		return fn(afd, path.Base(a), bfd, path.Base(b))
	})
}

// openParent opens the directory holding rel, O_PATH, below rootfd.
func (r *Root) openParent(rootfd int, rel string) (int, error) {
	dir := path.Dir(rel)
	fd, err := openBeneath(rootfd, dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, r.pathError("open", dir, err)
	}
	return fd, nil
}

// CreateTemp creates a new empty file, mode perm, in the directory dir with a
// random name starting with prefix that no other writer, in any process, can
// choose too (O_EXCL). It returns the file's path relative to the root.
func (r *Root) CreateTemp(dir, prefix string, perm fs.FileMode) (*os.File, string, error) {
	var b [12]byte
	for range 5 {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, "", fmt.Errorf("temp name: %w", err)
		}
		rel := path.Join(dir, prefix+hex.EncodeToString(b[:]))
		f, err := r.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err == nil {
			return f, rel, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", fmt.Errorf("create temp: %w", err)
		}
	}
	return nil, "", fmt.Errorf("create temp in %s: name collisions", r.Join(dir))
}

// WriteFileAtomic replaces rel with data, mode perm exactly: temp file beside
// it, write, fsync, rename, fsync the directory.
func (r *Root) WriteFileAtomic(rel string, data []byte, perm fs.FileMode) (err error) {
	dir := path.Dir(rel)
	// The temp name does not grow with rel's: a name near NAME_MAX still works.
	f, tmp, err := r.CreateTemp(dir, ".tmp-", perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			r.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil { // exact: not narrowed by the umask
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := r.Rename(tmp, rel, 0); err != nil {
		return err
	}
	return r.SyncDir(dir)
}
