package cas

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/every-channel/ec-node/internal/safefs"
)

// linkOnly is set once renameat2(RENAME_NOREPLACE) turned out to be unsupported.
var linkOnly atomic.Bool

var errWriterDone = errors.New("cas: object writer already committed or aborted")

// ObjectWriter streams one object into a temp file while hashing it. Memory does
// not grow with the object's size. Finish with Commit, or Abort to discard; Abort
// after Commit does nothing, so `defer w.Abort()` is always safe. An ObjectWriter
// is used by one goroutine at a time.
type ObjectWriter struct {
	ctx   context.Context
	store *Local
	f     *os.File // nil once closed
	tmp   string   // relative to the root
	h     *blake3.Hasher
	size  int64
	err   error // first write error; Commit refuses to publish after one
	done  bool
}

// Create starts a new object. The temp file lives in TempDir, on the same
// filesystem as every shard, because the shard is known only once the last byte
// has been hashed.
func (l *Local) Create(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cas: create: %w", err)
	}
	f, tmp, err := l.root.CreateTemp(TempDir, TempPrefix, 0o444)
	if err != nil {
		return nil, fmt.Errorf("cas: %w", err)
	}
	return &ObjectWriter{ctx: ctx, store: l, f: f, tmp: tmp, h: blake3.New()}, nil
}

// Write appends p to the object. After an error every later Write and Commit
// fails; the error wraps the system's (errors.Is(err, syscall.ENOSPC) holds for a
// full disk).
func (w *ObjectWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("cas: write: %w", err)
		return 0, w.err
	}
	n, err := writeFile(w.f, p)
	if n < 0 || n > len(p) {
		n, err = 0, fmt.Errorf("write returned count %d for %d bytes", n, len(p))
	}
	w.h.Write(p[:n])
	w.size += int64(n)
	if err == nil && n < len(p) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(p))
	}
	if err != nil {
		w.err = fmt.Errorf("cas: write %s: %w", w.tmp, err)
		return n, w.err
	}
	return n, nil
}

// Size is the number of bytes written so far.
func (w *ObjectWriter) Size() int64 { return w.size }

// Abort discards the object and removes its temp file.
func (w *ObjectWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.discard()
}

func (w *ObjectWriter) discard() error {
	var err error
	if w.f != nil {
		err = w.f.Close()
		w.f = nil
	}
	if rerr := w.store.root.Remove(w.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("cas: remove temp: %w", rerr))
	}
	return err
}

// Commit makes the object durable under its name and returns its id. The steps:
// fsync the temp file, check its size, close it, publish it without overwriting
// (renameat2 RENAME_NOREPLACE, or link+unlink), then fsync the shard directory,
// sharing that fsync with every concurrent commit into the same shard. If an
// object with the same id and size already exists (a dedup hit) the temp file is
// dropped unsynced and New is false; the shard directory is still fsynced so the
// existing name is durable when Commit returns. An existing object of the wrong
// size is damaged (objects are never written in place) and is replaced by the
// verified bytes. On any error the temp file is removed.
func (w *ObjectWriter) Commit() (res PutResult, err error) {
	if w.done {
		return res, errWriterDone
	}
	w.done = true
	defer func() {
		if err != nil {
			w.discard()
			res = PutResult{}
		}
	}()
	if w.err != nil {
		return res, w.err
	}
	if err := w.ctx.Err(); err != nil {
		return res, fmt.Errorf("cas: commit: %w", err)
	}
	var id ID
	w.h.Sum(id[:0])
	res = PutResult{ID: id, Size: w.size, Path: ObjectPath(id)}
	final := res.Path
	shard := &w.store.shards[id[0]]

	existing, err := existingObject(w.store.root, final, w.size)
	if err != nil {
		return res, err
	}
	if existing == sameSize {
		return res, w.dedupHit(shard)
	}

	if err := syncFile(w.f); err != nil {
		return res, fmt.Errorf("cas: fsync %s: %w", w.tmp, err)
	}
	dropCached(w.f)
	fi, err := w.f.Stat()
	if err != nil {
		return res, fmt.Errorf("cas: stat %s: %w", w.tmp, err)
	}
	if fi.Size() != w.size {
		return res, fmt.Errorf("cas: %s holds %d bytes, wrote %d", w.tmp, fi.Size(), w.size)
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return res, fmt.Errorf("cas: close %s: %w", w.tmp, err)
	}

	hit, err := w.publish(final, existing)
	if err != nil {
		return res, fmt.Errorf("cas: publish %s: %w", res.Path, err)
	}
	if hit {
		return res, w.dedupHit(shard)
	}
	if linkOnly.Load() {
		// The temp name is left only by the link(2) fallback; a leftover is stale temp.
		w.store.root.Remove(w.tmp)
	}
	if err := shard.sync(); err != nil {
		return res, err
	}
	res.New = true
	return res, nil
}

// publish names the closed temp file final, given what exists there. It reports a
// dedup hit when a concurrent writer published the same object first. The shard
// directory is opened without following links: a shard (or objects/) that is a
// symbolic link is refused with an error naming it, never written through.
func (w *ObjectWriter) publish(final string, existing objectState) (hit bool, err error) {
	root := w.store.root
	madeShard := false
	for range 4 {
		switch existing {
		case sameSize:
			return true, nil
		case otherSize:
			// Replacing a damaged object is the one overwrite the store does:
			// the new bytes are complete, fsynced and hash to the name.
			return false, root.Rename(w.tmp, final, 0)
		}
		err = publishNoReplace(root, w.tmp, final)
		if errors.Is(err, fs.ErrNotExist) && !madeShard {
			// The first object of this shard: create its directory durably.
			// objects/blake3 is fsynced even if a concurrent writer won the
			// mkdir, because that writer's fsync may not have finished yet;
			// the fsync is shared with every shard created meanwhile.
			if err := root.Mkdir(path.Dir(final), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return false, fmt.Errorf("create shard directory: %w", err)
			}
			if err := w.store.objects.sync(); err != nil {
				return false, err
			}
			madeShard = true
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return false, err
		}
		if existing, err = existingObject(root, final, w.size); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("%s keeps changing under concurrent writers", final)
}

func (w *ObjectWriter) dedupHit(shard *dirSyncer) error {
	if err := w.discard(); err != nil {
		return err
	}
	return shard.sync()
}

type objectState int

const (
	absent objectState = iota
	sameSize
	otherSize
)

func existingObject(r *safefs.Root, rel string, size int64) (objectState, error) {
	fi, err := r.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return absent, nil
	case err != nil:
		return absent, fmt.Errorf("cas: stat existing object: %w", err)
	case !fi.Mode().IsRegular():
		return absent, fmt.Errorf("cas: %s exists and is not a regular file (%s)", r.Join(rel), safefs.TypeName(fi.Mode()))
	case fi.Size() == size:
		return sameSize, nil
	default:
		return otherSize, nil
	}
}

// dropCached drops f's pages, clean once fsynced, from the page cache. An
// archive writes each object once and reads it rarely, so caching it only
// pushes out what readers use. And it makes writes cheaper: the freed pages
// are what the next objects' writes get, while a page the kernel has not
// touched lately can cost a fault per page to back (in a VM that hands free
// memory back to its host: on the reference VM, copying 64 KiB into such pages
// took ~220 µs of CPU, into reused ones ~20). Only advice: errors are ignored.
func dropCached(f *os.File) {
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// dirSyncer is group commit for one directory: every caller of sync waits for an
// fsync of the directory that started after the call began, and all callers that
// arrive while one fsync runs share the next one. At most one fsync per directory
// runs at a time, so N concurrent commits into a shard cost about two fsyncs,
// not N. The fsync runs on a caller's goroutine: the first caller runs its own,
// and each fsync's caller hands the next batch to one of that batch's callers,
// so no goroutine is started and woken per fsync.
type dirSyncer struct {
	root    *safefs.Root
	dir     string // relative to root
	mu      sync.Mutex
	next    *syncBatch // callers waiting for an fsync not yet started
	running bool       // an fsync is running or handed to a batch
}

type syncBatch struct {
	done chan struct{}
	lead chan struct{} // receives once: that caller runs the batch's fsync
	err  error
}

func (d *dirSyncer) sync() error {
	d.mu.Lock()
	if d.next == nil {
		d.next = &syncBatch{done: make(chan struct{}), lead: make(chan struct{}, 1)}
	}
	b := d.next
	if !d.running {
		d.running = true
		d.next = nil
		d.mu.Unlock()
		d.run(b)
		return b.err
	}
	d.mu.Unlock()
	select {
	case <-b.done:
	case <-b.lead:
		d.run(b)
	}
	return b.err
}

// run fsyncs the directory for batch b, then hands the batch that gathered
// meanwhile, if any, to one of its callers. A batch is taken (closed to
// newcomers) before its fsync starts, so the fsync covers every rename that
// happened before its members called sync.
func (d *dirSyncer) run(b *syncBatch) {
	b.err = syncDir(d.root, d.dir)
	close(b.done)
	d.mu.Lock()
	if n := d.next; n != nil {
		d.next = nil
		n.lead <- struct{}{}
	} else {
		d.running = false
	}
	d.mu.Unlock()
}
