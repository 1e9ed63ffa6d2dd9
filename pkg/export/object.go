package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/zeebo/blake3"
)

// ErrCorrupt means an object's bytes do not match its name or its entry's size.
var ErrCorrupt = errors.New("content does not match its id")

// ObjectError names an object that could not be exported: missing, unreadable
// or corrupt.
type ObjectError struct {
	Track string
	Group uint64
	Hash  string
	Path  string // in the store (joined to its root when known)
	Err   error
}

func (e *ObjectError) Error() string {
	return fmt.Sprintf("object %s (%s), group %d of track %q: %v", e.Hash, e.Path, e.Group, e.Track, e.Err)
}
func (e *ObjectError) Unwrap() error { return e.Err }

// maxPrealloc bounds the buffer allocated for an object before it is read.
const maxPrealloc = 64 << 20

// readObject reads a group's object whole and re-hashes it: a payload is only
// used when its bytes are the ones the manifest names.
func readObject(ctx context.Context, store cas.Store, root string, e *manifest.Entry) ([]byte, error) {
	fail := func(err error) error {
		p := e.Path
		if root != "" {
			p = filepath.Join(root, filepath.FromSlash(e.Path))
		}
		return &ObjectError{Track: e.Track, Group: e.Group, Hash: e.BLAKE3, Path: p, Err: err}
	}
	id, err := e.ID()
	if err != nil {
		return nil, fail(err)
	}
	r, err := store.Open(ctx, id)
	if err != nil {
		return nil, fail(err)
	}
	defer r.Close()
	// One buffer of the size the manifest names, so the object is not copied
	// through growing ones (io.ReadAll's); the size is only a claim until read,
	// so beyond maxPrealloc the buffer grows as the bytes arrive.
	buf := bytes.NewBuffer(make([]byte, 0, min(e.Size, maxPrealloc)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, e.Size+1)); err != nil {
		return nil, fail(err)
	}
	data := buf.Bytes()
	if int64(len(data)) != e.Size {
		return nil, fail(fmt.Errorf("%w: %d bytes, the manifest says %d", ErrCorrupt, len(data), e.Size))
	}
	if sum := blake3.Sum256(data); cas.ID(sum) != id {
		return nil, fail(fmt.Errorf("%w: its bytes hash to %s", ErrCorrupt, cas.ID(sum)))
	}
	return data, nil
}

// read reads and re-hashes a group's object. With SkipCorrupt, a bad object
// yields nil and is counted.
func (x *exporter) read(e *manifest.Entry) ([]byte, error) {
	data, err := readObject(x.ctx, x.opts.Store, x.opts.StoreRoot, e)
	if err != nil {
		var oe *ObjectError
		if x.opts.SkipCorrupt && errors.As(err, &oe) && x.ctx.Err() == nil {
			if x.skipped == nil {
				x.skipped = map[groupKey]bool{}
			}
			x.skipped[groupKey{e.Track, e.Group, e.BLAKE3}] = true
			return nil, nil
		}
		return nil, err
	}
	x.progress.Bytes += int64(len(data))
	return data, nil
}
