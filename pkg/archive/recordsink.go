package archive

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// RecordSink writes what a worker receives as a record stream (moq-sub's
// stdout), for cas-put and manifest-append to store in other processes.
// A group is buffered in memory until it is complete, because its header
// line (frame sizes, total size) precedes the payload; Config.MaxGroupBytes
// bounds that buffer.
type RecordSink struct {
	mu  sync.Mutex
	out *bufio.Writer
	rw  *record.Writer
	// Resume, when set, answers ResumePoint (e.g. from the manifests that the
	// downstream manifest-append writes), so that a restarted moq-sub records
	// the groups it missed while down.
	Resume func(broadcast, track string) (manifest.ResumePoint, bool, error)
}

// NewRecordSink writes records to w.
func NewRecordSink(w io.Writer) *RecordSink {
	out := bufio.NewWriterSize(w, 64<<10)
	return &RecordSink{out: out, rw: record.NewWriter(out)}
}

var _ Sink = (*RecordSink)(nil)

// BeginGroup implements Sink.
func (s *RecordSink) BeginGroup(ctx context.Context, h record.Header) (GroupWriter, error) {
	return &bufferedGroup{sink: s}, nil
}

// Gap implements Sink.
func (s *RecordSink) Gap(ctx context.Context, h record.Header) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rw.WriteGap(h); err != nil {
		return fmt.Errorf("record stream: %w", err)
	}
	return s.flush()
}

// ResumePoint implements Sink.
func (s *RecordSink) ResumePoint(broadcast, track string) (manifest.ResumePoint, bool, error) {
	if s.Resume == nil {
		return manifest.ResumePoint{}, false, nil
	}
	return s.Resume(broadcast, track)
}

func (s *RecordSink) flush() error {
	if err := s.out.Flush(); err != nil {
		return fmt.Errorf("record stream: %w", err)
	}
	return nil
}

type bufferedGroup struct {
	sink *RecordSink
	buf  bytes.Buffer
}

func (g *bufferedGroup) Write(p []byte) (int, error) { return g.buf.Write(p) }

func (g *bufferedGroup) Commit(h record.Header) (Stored, error) {
	s := g.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rw.WriteGroup(h, &g.buf); err != nil {
		return Stored{}, fmt.Errorf("record stream: %w", err)
	}
	// The record is complete once it reaches the pipe: flush per record so that
	// downstream stages see each group as soon as it is received.
	return Stored{}, s.flush()
}

func (g *bufferedGroup) Abort() { g.buf = bytes.Buffer{} }
