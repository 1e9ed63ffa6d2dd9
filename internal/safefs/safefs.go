// Package safefs holds the filesystem mechanics the stores share: a Root that
// nothing below it may leave (no symbolic link is followed, no special file is
// read, no read is endless), and the durable-write steps (directory fsync,
// durable mkdir, atomic replace) that make a returned nil mean "survives a
// crash".
//
// A store's root is chosen by the operator and may itself be a symbolic link:
// OpenRoot resolves it once. Everything below is then opened relative to a
// descriptor of that resolved directory, with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) where the kernel has it (Linux
// 5.6+), or one O_NOFOLLOW component at a time where it does not. An open that
// could reach a FIFO is O_NONBLOCK, so it never blocks, and the descriptor is
// fstat-checked to be the kind the caller wants before use; directory opens and
// exclusive creations need neither, the kernel guaranteeing their kind.
package safefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

var (
	// ErrSymlink: a path component below a Root is a symbolic link. Links are
	// never followed there; the error's path names the link.
	ErrSymlink = errors.New("symbolic link (not followed)")
	// ErrNotRegular: a regular file was wanted and something else is there
	// (a FIFO, socket, device or directory).
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotDir: a directory was wanted and something else is there.
	ErrNotDir = errors.New("not a directory")
	// ErrGrew: a bounded read found more bytes than the file held when opened.
	ErrGrew = errors.New("file grew while being read")
)

// IsWrongKind reports whether err says that something below a root is not what
// the layout allows there (a symbolic link, or a special file where a regular
// file or directory belongs), as opposed to an I/O or permission error.
func IsWrongKind(err error) bool {
	return errors.Is(err, ErrSymlink) || errors.Is(err, ErrNotRegular) || errors.Is(err, ErrNotDir)
}

// TypeName names the type of a file mode for messages: "symbolic link",
// "named pipe", ...
func TypeName(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "regular file"
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeSymlink != 0:
		return "symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	default:
		return "irregular file"
	}
}

// SyncDir fsyncs the directory at path, making the entries created, renamed or
// removed in it durable.
func SyncDir(path string) error {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return fmt.Errorf("fsync directory: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	return syncFD(fd, path)
}

func syncFD(fd int, path string) error {
	err := unix.Fsync(fd)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", path, err)
	}
	return nil
}

// MkdirAll creates the directory path and any missing parents, fsyncing the
// parent of every level it created so the whole chain survives a crash. An
// existing directory is fine; an existing non-directory is an error. It is for
// paths the operator chose (a store's root); below a Root use Root.MkdirAll.
func MkdirAll(path string, perm fs.FileMode) error {
	path = filepath.Clean(path)
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return &os.PathError{Op: "mkdir", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotDir, TypeName(fi.Mode()))}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	parent := filepath.Dir(path)
	if parent != path {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	// A concurrent creator may win the mkdir; its parent fsync may not have
	// finished, so the parent is fsynced in that case too.
	if err := os.Mkdir(path, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return &os.PathError{Op: "mkdir", Path: path, Err: ErrNotDir}
	}
	return SyncDir(parent)
}

// WriteFileAtomic replaces the file at path with data, mode perm: temp file in
// the same directory, write, fsync, rename over path, fsync the directory. A
// crash at any moment leaves the old or the new content, never a mix. A
// symbolic link at path is replaced, not written through.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	r, err := OpenRoot(filepath.Dir(path))
	if err != nil {
		return err
	}
	return r.WriteFileAtomic(filepath.Base(path), data, perm)
}

// ReadFile reads the regular file at path, at most max bytes; the last
// component is not followed if it is a symbolic link, and a FIFO does not block.
func ReadFile(path string, max int64) ([]byte, error) {
	r, err := OpenRoot(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return r.ReadFile(filepath.Base(path), max)
}

// SizedReader returns a reader of the bytes f holds now (its fstat size) and
// that size. The reader reads at most one byte more than that and fails with
// ErrGrew if the byte is there: a file that keeps growing is an error, not an
// endless read.
func SizedReader(f *os.File) (io.Reader, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	return &boundedReader{r: f, left: fi.Size(), name: f.Name()}, fi.Size(), nil
}

type boundedReader struct {
	r    io.Reader
	left int64
	name string
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		return n, &os.PathError{Op: "read", Path: b.name, Err: ErrGrew}
	}
	b.left -= int64(n)
	return n, err
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		fd, err := fn()
		if err != unix.EINTR {
			return fd, err
		}
	}
}
