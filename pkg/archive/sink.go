package archive

import (
	"context"
	"io"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// Sink is where a worker puts what it receives. The in-process archiver stores
// into the CAS and the manifests (StoreSink); moq-sub writes the record framing
// to stdout (RecordSink) for cas-put and manifest-append to do the same in
// other processes.
type Sink interface {
	// BeginGroup starts one group. h names the broadcast, track and group; the
	// payload follows through the returned writer.
	BeginGroup(ctx context.Context, h record.Header) (GroupWriter, error)
	// Gap records a range of groups that was not archived.
	Gap(ctx context.Context, h record.Header) error
	// ResumePoint returns where the archive of a track leaves off (ok is false
	// for a track never archived), so that a restarted worker takes or
	// records what it missed meanwhile.
	ResumePoint(broadcast, track string) (p manifest.ResumePoint, ok bool, err error)
}

// GroupWriter receives one group's payload: its frames, concatenated.
type GroupWriter interface {
	io.Writer
	// Commit makes the group durable; h is now complete (frames, size, times).
	Commit(h record.Header) (Stored, error)
	// Abort discards the group; nothing of it is published.
	Abort()
}

// Stored describes a committed group.
type Stored struct {
	// New is false when the payload was already in the store (a dedup hit).
	New bool
}
