package manifest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/every-channel/ec-node/internal/safefs"
)

// Tree is a manifest directory opened for reading: the one way readers (export,
// archive-serve, replay, manifest ship) list and open its files. Like the
// appender's, its path is resolved once; below it no symbolic link is followed
// and only regular files are opened, so a FIFO never blocks a reader
// (docs/manifest.md, "Trust boundary" and "Reading").
type Tree struct {
	root *safefs.Root
}

// OpenTree opens the existing manifest directory dir. A missing directory is
// an error satisfying errors.Is(err, fs.ErrNotExist).
func OpenTree(dir string) (*Tree, error) {
	root, err := safefs.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &Tree{root: root}, nil
}

// Path is the full path of rel, for messages.
func (t *Tree) Path(rel string) string { return t.root.Join(rel) }

// Files lists the track files of broadcast, or of every broadcast when
// broadcast is "": the regular *.jsonl files of the broadcast directories, as
// slash-separated paths relative to the tree, sorted.
//
// Something where a broadcast directory or a track file may be that is not one
// (a symbolic link, a FIFO or other special file, a *.jsonl directory) is
// never followed or opened: stray is called with an error naming it, and the
// listing goes on if stray returns nil. Regular files that are not manifests
// (the session log, a non-.jsonl file) are passed over; manifest check reports
// them.
func (t *Tree) Files(broadcast string, stray func(error) error) ([]string, error) {
	var dirs []string
	if broadcast != "" {
		d, err := EscapeName(broadcast)
		if err != nil {
			return nil, fmt.Errorf("manifest: broadcast %q: %w", broadcast, err)
		}
		dirs = []string{d}
	} else {
		top, err := t.root.ReadDir(".")
		if err != nil {
			return nil, fmt.Errorf("manifest: list: %w", err)
		}
		for _, d := range top {
			switch {
			case d.IsDir():
				dirs = append(dirs, d.Name())
			case !d.Type().IsRegular():
				if err := stray(strayError(t.Path(d.Name()), d.Type())); err != nil {
					return nil, err
				}
			}
		}
	}
	var out []string
	for _, d := range dirs {
		files, err := t.root.ReadDir(d)
		if safefs.IsWrongKind(err) && broadcast == "" {
			err = stray(err) // swapped in since listed
		}
		if err != nil {
			return nil, fmt.Errorf("manifest: list: %w", err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), FileExt) {
				continue
			}
			rel := d + "/" + f.Name()
			if !f.Type().IsRegular() {
				if err := stray(strayError(t.Path(rel), f.Type())); err != nil {
					return nil, err
				}
				continue
			}
			out = append(out, rel)
		}
	}
	return out, nil
}

// strayError names the thing at path that is not what the tree holds there.
func strayError(path string, m os.FileMode) error {
	err := fmt.Errorf("%w (%s)", safefs.ErrNotRegular, safefs.TypeName(m))
	if m&os.ModeSymlink != 0 {
		err = safefs.ErrSymlink
	}
	return &os.PathError{Op: "list", Path: path, Err: err}
}

// Open opens the regular file rel (a path Files returned) for reading.
func (t *Tree) Open(rel string) (*os.File, error) {
	f, err := t.root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return f, nil
}

// Read reads the entries of the track file rel up to the size it had when
// opened. A last line without "\n" ends the read before it: it is being
// appended right now, or was cut short by a crash (the next append repairs
// it; manifest check reports it). A complete line that is not a valid entry,
// or whose names belong in another file, is an error naming file and line, so
// that nothing in the file is silently passed over.
func (t *Tree) Read(rel string) ([]Entry, error) {
	f, err := t.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var (
		out     []Entry
		checked fileKey // names last found to map to rel
	)
	d := NewDecoder(io.LimitReader(f, fi.Size()))
	for {
		e, err := d.Next()
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("manifest %s: %w", f.Name(), err)
		}
		if k := (fileKey{e.Broadcast, e.Track}); k != checked {
			if want, _ := FilePath("", e.Broadcast, e.Track); want != rel {
				return nil, fmt.Errorf("manifest %s: %w", f.Name(), &LineError{Line: d.Line(),
					Err: fmt.Errorf("entry for broadcast %q track %q belongs in %s", e.Broadcast, e.Track, t.Path(want))})
			}
			checked = k
		}
		out = append(out, e)
	}
}

// ReadFile reads the manifest of (broadcast, track) under dir as Tree.Read
// does. A missing file is an error satisfying errors.Is(err, fs.ErrNotExist).
func ReadFile(dir, broadcast, track string) ([]Entry, error) {
	rel, err := FilePath("", broadcast, track)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	t, err := OpenTree(dir)
	if err != nil {
		return nil, err
	}
	return t.Read(rel)
}
