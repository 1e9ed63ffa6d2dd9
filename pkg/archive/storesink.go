package archive

import (
	"context"
	"log/slog"
	"sync"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/commit"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// StoreSink stores groups in the CAS and appends their manifest entries: the
// in-process equivalent of `cas-put --records | manifest-append`, through the
// same commit.Queue.
//
// Order is what makes it crash-safe: an object is durable (committed) before the
// manifest line naming it is written, and a manifest line is durable before the
// group counts as archived.
type StoreSink struct {
	store     cas.Store
	manifests *manifest.Dir

	mu    sync.Mutex
	queue *commit.Queue
}

// storeCommitsInFlight bounds the groups committed at once across all tracks,
// as cas-put's --jobs does.
const storeCommitsInFlight = 16

// NewStoreSink stores into store and the manifests under manifestDir.
func NewStoreSink(store cas.Store, manifestDir string, log *slog.Logger) (*StoreSink, error) {
	dir, err := manifest.OpenDir(manifestDir, 0, log)
	if err != nil {
		return nil, err
	}
	s := &StoreSink{store: store, manifests: dir}
	s.queue = s.newQueue()
	return s, nil
}

var _ Sink = (*StoreSink)(nil)

// Close waits for the groups being committed and closes the manifest files.
func (s *StoreSink) Close() error {
	s.mu.Lock()
	q := s.queue
	s.mu.Unlock()
	q.Close()
	return s.manifests.Close()
}

// BeginGroup implements Sink: the payload streams into a new CAS object.
func (s *StoreSink) BeginGroup(ctx context.Context, h record.Header) (GroupWriter, error) {
	w, err := s.store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return &storeGroup{sink: s, w: w}, nil
}

// Gap implements Sink. A gap is appended at once, not queued: it is how a group
// that the queue failed is recorded.
func (s *StoreSink) Gap(ctx context.Context, h record.Header) error {
	_, err := s.manifests.Append(h.Broadcast, h.Track, manifest.Entry{Header: h})
	return err
}

// ResumePoint implements Sink.
func (s *StoreSink) ResumePoint(broadcast, track string) (manifest.ResumePoint, bool, error) {
	return s.manifests.ResumePoint(broadcast, track)
}

func (s *StoreSink) newQueue() *commit.Queue {
	return commit.NewQueue(s.store, storeCommitsInFlight, func(e manifest.Entry, _ bool) error {
		_, err := s.manifests.Append(e.Broadcast, e.Track, e)
		return err
	})
}

// liveQueue returns the commit queue, replacing one that a failure stopped. The
// groups queued behind the failure fail with it and become store-failed gaps;
// groups committed afterwards (the worker resumes once the store recovers) need
// a queue that runs.
func (s *StoreSink) liveQueue() *commit.Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue.Err() != nil {
		s.queue = s.newQueue()
	}
	return s.queue
}

type storeGroup struct {
	sink *StoreSink
	w    cas.Writer
}

func (g *storeGroup) Write(p []byte) (int, error) { return g.w.Write(p) }

// Commit queues the group and waits until its manifest line is durable.
func (g *storeGroup) Commit(h record.Header) (Stored, error) {
	p, err := g.sink.liveQueue().Add(h, g.w)
	if err != nil {
		return Stored{}, err
	}
	e, err := p.Wait()
	if err != nil {
		return Stored{}, err
	}
	return Stored{New: *e.New}, nil
}

func (g *storeGroup) Abort() { g.w.Abort() }
