package manifest

import (
	"container/list"
	"errors"
	"log/slog"
	"sync"

	"github.com/every-channel/ec-node/internal/safefs"
)

// DefaultMaxOpen bounds the appenders a Dir keeps open: enough for a few hundred
// broadcasts of four tracks each.
const DefaultMaxOpen = 1024

// Dir appends to the manifest files under one directory, keeping at most maxOpen
// of them open and closing the least recently used idle one beyond that. It is
// safe for concurrent use.
type Dir struct {
	dir     string // as given to OpenDir
	root    *safefs.Root
	maxOpen int
	log     *slog.Logger

	mu   sync.Mutex
	open map[fileKey]*list.Element // of *dirSlot
	lru  *list.List                // front: most recently used
}

type fileKey struct{ broadcast, track string }

type dirSlot struct {
	key   fileKey
	a     *Appender
	users int // goroutines inside Append; a busy slot is never evicted
}

// OpenDir returns a Dir for root, creating root (durably) if needed. A root
// given as a symbolic link is resolved once; below it no link is followed.
// maxOpen <= 0 means DefaultMaxOpen.
func OpenDir(root string, maxOpen int, log *slog.Logger) (*Dir, error) {
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpen
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	return &Dir{dir: root, root: r, maxOpen: maxOpen, log: log, open: make(map[fileKey]*list.Element), lru: list.New()}, nil
}

// Append appends entries, all of (broadcast, track), as Appender.Append does.
func (d *Dir) Append(broadcast, track string, entries ...Entry) (AppendResult, error) {
	s, err := d.acquire(broadcast, track)
	if err != nil {
		return AppendResult{}, err
	}
	defer d.release(s)
	return s.a.Append(entries...)
}

// ResumePoint returns the file's resume point as Appender.ResumePoint does,
// opening (and repairing) the file if needed.
func (d *Dir) ResumePoint(broadcast, track string) (p ResumePoint, ok bool, err error) {
	s, err := d.acquire(broadcast, track)
	if err != nil {
		return ResumePoint{}, false, err
	}
	defer d.release(s)
	p, ok = s.a.ResumePoint()
	return p, ok, nil
}

// Close closes every open file.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, el := range d.open {
		errs = append(errs, el.Value.(*dirSlot).a.Close())
	}
	d.open = make(map[fileKey]*list.Element)
	d.lru.Init()
	return errors.Join(errs...)
}

func (d *Dir) acquire(broadcast, track string) (*dirSlot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := fileKey{broadcast, track}
	if el, ok := d.open[k]; ok {
		d.lru.MoveToFront(el)
		s := el.Value.(*dirSlot)
		s.users++
		return s, nil
	}
	a, _, err := openAppender(d.root, d.dir, broadcast, track, d.log)
	if err != nil {
		return nil, err
	}
	s := &dirSlot{key: k, a: a, users: 1}
	d.open[k] = d.lru.PushFront(s)
	d.evictIdle()
	return s, nil
}

func (d *Dir) release(s *dirSlot) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s.users--
	d.evictIdle()
}

// evictIdle closes least recently used idle appenders while over the bound.
// The caller holds d.mu.
func (d *Dir) evictIdle() {
	for el := d.lru.Back(); el != nil && len(d.open) > d.maxOpen; {
		prev := el.Prev()
		if s := el.Value.(*dirSlot); s.users == 0 {
			if err := s.a.Close(); err != nil {
				d.log.Warn("manifest: close", "path", s.a.Path(), "err", err)
			}
			delete(d.open, s.key)
			d.lru.Remove(el)
		}
		el = prev
	}
}
