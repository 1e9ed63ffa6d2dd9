package archive

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// StoreSink stores groups in the CAS and appends their manifest entries: the
// in-process equivalent of `cas-put --records | manifest-append`.
//
// Order is what makes it crash-safe: an object is durable (Commit returned)
// before the manifest line naming it is written, and a manifest line is durable
// before the group counts as archived.
type StoreSink struct {
	store     *cas.Local
	manifests *manifest.Dir
}

// NewStoreSink stores into store and the manifests under manifestDir.
func NewStoreSink(store *cas.Local, manifestDir string, log *slog.Logger) (*StoreSink, error) {
	dir, err := manifest.OpenDir(manifestDir, 0, log)
	if err != nil {
		return nil, err
	}
	return &StoreSink{store: store, manifests: dir}, nil
}

var _ Sink = (*StoreSink)(nil)

// Close closes the manifest files.
func (s *StoreSink) Close() error { return s.manifests.Close() }

// BeginGroup implements Sink: the payload streams into a CAS temp file.
func (s *StoreSink) BeginGroup(ctx context.Context, h record.Header) (GroupWriter, error) {
	w, err := s.store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return &storeGroup{sink: s, w: w}, nil
}

// Gap implements Sink.
func (s *StoreSink) Gap(ctx context.Context, h record.Header) error {
	_, err := s.manifests.Append(h.Broadcast, h.Track, manifest.Entry{Header: h})
	return err
}

// LastGroup implements Sink.
func (s *StoreSink) LastGroup(broadcast, track string) (uint64, bool, error) {
	return s.manifests.LastGroup(broadcast, track)
}

type storeGroup struct {
	sink *StoreSink
	w    *cas.ObjectWriter
}

func (g *storeGroup) Write(p []byte) (int, error) { return g.w.Write(p) }

func (g *storeGroup) Commit(h record.Header) (Stored, error) {
	res, err := g.w.Commit()
	if err != nil {
		return Stored{}, err
	}
	if res.Size != h.Size {
		return Stored{}, fmt.Errorf("stored %d bytes for a group of %d", res.Size, h.Size)
	}
	e := manifest.Entry{Header: h, BLAKE3: res.ID.String(), Path: res.Path}
	ar, err := g.sink.manifests.Append(h.Broadcast, h.Track, e)
	if err != nil {
		return Stored{}, err
	}
	return Stored{New: res.New, Duplicate: ar.Duplicates > 0}, nil
}

func (g *storeGroup) Abort() { g.w.Abort() }
