// Package commit turns received groups into durable CAS objects and their
// manifest entries, in order. It is the one path for both the in-process
// archiver (archive.StoreSink) and `cas-put --records`: a group's payload
// streams into a cas.Writer, commits (which wait for fsync) run concurrently,
// a bounded number at once, and each entry is delivered only once its object is
// durable, in the order the groups were added. The first failure stops the
// queue: nothing added after it is delivered.
package commit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// ErrStopped is the error of every entry added after, or still undelivered at,
// the failure that stopped the queue; it wraps that failure.
var ErrStopped = errors.New("commit queue stopped by an earlier failure")

var errClosed = errors.New("commit queue closed")

// Deliver receives entries in the order they were added, one at a time, each
// once its object is durable (gap entries have none). more reports that the next
// entry is ready too, so that a writer can batch and flush when it is false. An
// error stops the queue.
type Deliver func(e manifest.Entry, more bool) error

// Queue commits groups concurrently and delivers their entries in order. Its
// methods are safe for concurrent use; entries are ordered by when Add (or Put)
// was called.
type Queue struct {
	store   cas.Store
	deliver Deliver
	// slots bounds the entries added and not yet delivered, and so the commits
	// in flight.
	slots chan struct{}

	mu     sync.Mutex
	tail   *Pending // the entry added last
	err    error    // the first failure
	closed bool
}

// Pending is an entry on its way through a Queue.
type Pending struct {
	entry     manifest.Entry
	err       error
	prev      *Pending // delivered before this one; nil once it was
	next      *Pending // guarded by Queue.mu
	committed chan struct{}
	delivered chan struct{}
}

// NewQueue returns a queue that commits into store, at most jobs entries
// undelivered at once, and hands each entry to deliver.
func NewQueue(store cas.Store, jobs int, deliver Deliver) *Queue {
	return &Queue{store: store, deliver: deliver, slots: make(chan struct{}, max(jobs, 1))}
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Put streams r, the payload of group h, into a new object and adds it. An error
// creating the object or copying r (wrapped, so that errors.Is finds the
// reader's error) is returned before anything is added.
func (q *Queue) Put(ctx context.Context, h record.Header, r io.Reader) (*Pending, error) {
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStopped, err)
	}
	w, err := q.store.Create(ctx)
	if err != nil {
		return nil, fmt.Errorf("group %d of %s/%s: %w", h.Group, h.Broadcast, h.Track, err)
	}
	buf := copyBuffers.Get().(*[]byte)
	_, err = io.CopyBuffer(w, r, *buf)
	copyBuffers.Put(buf)
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("group %d of %s/%s: %w", h.Group, h.Broadcast, h.Track, err)
	}
	return q.Add(h, w)
}

// Add queues h's entry behind every entry added before it. For a group, w holds
// its complete payload: Add commits it in the background and the entry will name
// the object. For a gap, w is nil. Add blocks while jobs entries are undelivered.
// After the queue has stopped Add aborts w and returns an error wrapping
// ErrStopped; after Close, an error too.
func (q *Queue) Add(h record.Header, w cas.Writer) (*Pending, error) {
	if (w == nil) != (h.Kind == record.KindGap) {
		if w != nil {
			w.Abort()
		}
		return nil, fmt.Errorf("commit: %s record %d of %s/%s with payload writer %v", h.Kind, h.Group, h.Broadcast, h.Track, w != nil)
	}
	q.slots <- struct{}{} // before linking: every linked entry holds a slot, so the head can always finish
	q.mu.Lock()
	err := q.stopped()
	if err != nil {
		q.mu.Unlock()
		<-q.slots
		if w != nil {
			w.Abort()
		}
		return nil, err
	}
	p := &Pending{entry: manifest.Entry{Header: h}, prev: q.tail, committed: make(chan struct{}), delivered: make(chan struct{})}
	if w == nil {
		close(p.committed) // a gap has nothing to commit: its predecessor sees it ready at once
	}
	if q.tail != nil {
		q.tail.next = p
	}
	q.tail = p
	q.mu.Unlock()
	go q.run(p, w)
	return p, nil
}

// run commits p's object, waits for its predecessor's delivery, and delivers p.
func (q *Queue) run(p *Pending, w cas.Writer) {
	defer func() { <-q.slots }()
	if w != nil {
		p.err = q.commit(p, w)
		close(p.committed)
	}
	if p.prev != nil {
		<-p.prev.delivered
		p.prev = nil
	}
	q.mu.Lock()
	switch {
	case q.err != nil:
		// Committed or not, an entry behind a failure is not delivered: the
		// consumer must not see a later entry without the one that failed.
		p.err = fmt.Errorf("%w: %w", ErrStopped, q.err)
	case p.err != nil:
		q.err = p.err
	}
	next := p.next
	q.mu.Unlock()
	if p.err == nil {
		if err := q.deliver(p.entry, next != nil && isClosed(next.committed)); err != nil {
			p.err = err
			q.mu.Lock()
			q.err = err
			q.mu.Unlock()
		}
	}
	close(p.delivered)
}

// commit commits w, unless the queue has stopped, and fills in p's object.
func (q *Queue) commit(p *Pending, w cas.Writer) error {
	h := &p.entry.Header
	if err := q.Err(); err != nil {
		w.Abort() // stop at the first failure: no point making more objects durable
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	res, err := w.Commit()
	if err != nil {
		return fmt.Errorf("group %d of %s/%s: %w", h.Group, h.Broadcast, h.Track, err)
	}
	if res.Size != h.Size {
		return fmt.Errorf("group %d of %s/%s: stored %d bytes for a group of %d", h.Group, h.Broadcast, h.Track, res.Size, h.Size)
	}
	p.entry.BLAKE3, p.entry.Path, p.entry.New = res.ID.String(), res.Path, &res.New
	return nil
}

// Err returns the failure that stopped the queue, nil while there is none.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Close waits until every entry added is delivered or failed and returns the
// failure that stopped the queue, if any. Add fails after Close.
func (q *Queue) Close() error {
	q.mu.Lock()
	q.closed = true
	tail := q.tail
	q.mu.Unlock()
	if tail != nil {
		<-tail.delivered
	}
	return q.Err()
}

// stopped returns why Add must refuse, with q.mu held.
func (q *Queue) stopped() error {
	switch {
	case q.err != nil:
		return fmt.Errorf("%w: %w", ErrStopped, q.err)
	case q.closed:
		return errClosed
	}
	return nil
}

// Wait returns the entry once it is delivered, with the object's id, path and
// New for a group, or the error that kept it from being delivered.
func (p *Pending) Wait() (manifest.Entry, error) {
	<-p.delivered
	return p.entry, p.err
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
