package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
)

// Sink is what a replay publishes into; *moq.Publisher through PublisherSink.
type Sink interface {
	Track(name string, info moq.TrackInfo) (TrackSink, error)
	Announce() error
	// WaitSubscribed blocks until every named track has a subscriber.
	WaitSubscribed(ctx context.Context, tracks []string) error
}

// TrackSink is one published track.
type TrackSink interface {
	WriteGroup(ctx context.Context, g moq.OutGroup) error
	Close()
}

// PublisherSink adapts a moq.Publisher.
func PublisherSink(p *moq.Publisher) Sink { return publisherSink{p} }

type publisherSink struct{ *moq.Publisher }

func (s publisherSink) Track(name string, info moq.TrackInfo) (TrackSink, error) {
	return s.Publisher.Track(name, info)
}

// Options tune Run.
type Options struct {
	// Speed scales the original timing: 1 replays in real time, N n times
	// faster; 0 publishes as fast as the sink takes the groups.
	Speed float64
	// Loop restarts at the range start after the last group, until ctx ends,
	// with sequence numbers and timestamps continuing where the pass ended.
	Loop bool
	// SkipCorrupt turns an object that is missing or does not hash to its id
	// into a gap (logged) instead of an error.
	SkipCorrupt bool
	// WaitSubscribers holds the clock, after the first catalog group is
	// published, until every archived track that catalog names has a
	// subscriber, at most this long (0: start at once). A relay subscribes
	// only on demand, so groups published before then reach nobody.
	WaitSubscribers time.Duration
	// StoreRoot names the CAS root in errors.
	StoreRoot string
	Logger    *slog.Logger
}

// Stats sums up a replay.
type Stats struct {
	Groups  int64 // groups published
	Bytes   int64 // their payload bytes
	Skipped int64 // corrupt or missing objects skipped (SkipCorrupt)
	Passes  int   // passes over the range started
	Elapsed time.Duration
}

// CorruptError is an archived object that is missing or whose bytes do not
// match the manifest.
type CorruptError struct {
	ID   string
	Path string // file path of the object
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("replay: object %s (%s): %v", e.ID, e.Path, e.Err)
}
func (e *CorruptError) Unwrap() error { return e.Err }

// ErrHashMismatch: an object's bytes do not hash to its id.
var ErrHashMismatch = errors.New("content does not match its BLAKE3 id")

// ReadGroup reads a group entry's object, re-hashing it, and splits it into
// its frames as the manifest line recorded them.
func ReadGroup(ctx context.Context, store cas.Store, storeRoot string, e manifest.Entry) ([][]byte, error) {
	id, err := e.ID()
	if err != nil {
		return nil, err
	}
	corrupt := func(err error) error {
		return &CorruptError{ID: e.BLAKE3, Path: filepath.Join(storeRoot, filepath.FromSlash(e.Path)), Err: err}
	}
	r, err := store.Open(ctx, id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, corrupt(err)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: open object %s: %w", e.BLAKE3, err)
	}
	defer r.Close()
	h := blake3.New()
	var buf bytes.Buffer
	buf.Grow(int(e.Size))
	n, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(r, e.Size+1))
	if err != nil {
		return nil, fmt.Errorf("replay: read object %s: %w", e.BLAKE3, err)
	}
	if n != e.Size {
		return nil, corrupt(fmt.Errorf("%d bytes, manifest says %d", n, e.Size))
	}
	var got cas.ID
	h.Sum(got[:0])
	if got != id {
		return nil, corrupt(fmt.Errorf("%w (hashes to %s)", ErrHashMismatch, got))
	}
	payload := buf.Bytes()
	frames := make([][]byte, len(e.Frames))
	for i, size := range e.Frames {
		frames[i], payload = payload[:size], payload[size:]
	}
	return frames, nil
}

// runner carries one replay's state.
type runner struct {
	ctx   context.Context
	store cas.Store
	plan  *Plan
	sink  Sink
	opts  Options
	log   *slog.Logger

	tracks map[string]TrackSink
	scale  map[string]uint64 // timescale of each track
	span   map[string]uint64 // sequence advance per pass
	first  map[string]uint64 // lowest sequence per track
	period int64             // ms a pass lasts on the original clock
	base   time.Time         // wall time of plan.Start in pass 0
	stats  Stats
}

// Run publishes plan into sink, then ends its tracks (the caller closes the
// publisher). It returns when the range (every pass, with Loop: until ctx
// ends) is published, or on the first error.
func Run(ctx context.Context, store cas.Store, plan *Plan, sink Sink, opts Options) (Stats, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &runner{ctx: ctx, store: store, plan: plan, sink: sink, opts: opts, log: log,
		tracks: map[string]TrackSink{}, scale: map[string]uint64{}, span: map[string]uint64{}, first: map[string]uint64{}}
	r.measure()
	started := time.Now()
	err := r.run()
	for _, t := range r.tracks {
		t.Close()
	}
	r.stats.Elapsed = time.Since(started)
	return r.stats, err
}

// measure derives each track's timescale and sequence span, and the period
// of one pass: the range's duration plus one average spacing, so a loop does
// not publish the last and the first group at the same instant.
func (r *runner) measure() {
	last := map[string]uint64{}
	for _, it := range r.plan.items {
		e := it.entry
		if _, ok := r.scale[e.Track]; !ok && e.Timescale != 0 {
			r.scale[e.Track] = e.Timescale
		}
		if f, ok := r.first[e.Track]; !ok || e.Group < f {
			r.first[e.Track] = e.Group
		}
		last[e.Track] = max(last[e.Track], e.Group)
	}
	for _, t := range r.plan.Tracks {
		if r.scale[t] == 0 {
			r.scale[t] = 1000
		}
		r.span[t] = last[t] - r.first[t] + 1
	}
	d := r.plan.End - r.plan.Start
	r.period = 1000
	if n := int64(len(r.plan.items)); n > 1 && d > 0 {
		r.period = d + d/(n-1)
	}
}

func (r *runner) run() error {
	for _, name := range r.plan.Tracks {
		t, err := r.sink.Track(name, moq.TrackInfo{Priority: 127, Timescale: r.scale[name]})
		if err != nil {
			return err
		}
		r.tracks[name] = t
	}
	if err := r.sink.Announce(); err != nil {
		return err
	}
	r.base = time.Now()
	waited := false
	for pass := 0; pass == 0 || r.opts.Loop; pass++ {
		r.stats.Passes++
		if pass > 0 {
			r.log.Info("replay: restarting at the range start", "pass", pass+1)
		}
		for i, it := range r.plan.items {
			// The wait comes right after the first catalog group: a subscriber
			// needs it to find the tracks, and everything after it (catalog
			// updates too) would reach nobody before the subscriptions exist.
			if !waited && i > 0 {
				waited = true
				if err := r.waitSubscribers(it); err != nil {
					return err
				}
			}
			if err := r.publish(pass, it); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitSubscribers holds the clock until the tracks the first catalog names
// (those archived) are subscribed, or Options.WaitSubscribers passes.
func (r *runner) waitSubscribers(next item) error {
	if r.opts.WaitSubscribers <= 0 {
		return nil
	}
	e := r.plan.items[0].entry
	if e.Track != catalog.TrackName {
		return nil // no catalog first: nothing tells a subscriber the tracks
	}
	frames, err := ReadGroup(r.ctx, r.store, r.opts.StoreRoot, e)
	if err != nil || len(frames) == 0 {
		return nil // published already, or skipped: nothing to learn the tracks from
	}
	c, err := catalog.Parse(frames[0])
	if err != nil {
		r.log.Warn("replay: catalog unreadable; not waiting for subscribers", "err", err)
		return nil
	}
	var want []string
	for _, t := range c.Tracks {
		if _, ok := r.tracks[t]; ok {
			want = append(want, t)
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.WaitSubscribers)
	defer cancel()
	r.log.Info("replay: waiting for subscribers", "tracks", want, "at_most", r.opts.WaitSubscribers)
	if err := r.sink.WaitSubscribed(ctx, want); err != nil {
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		r.log.Warn("replay: starting without every track subscribed", "err", err)
	}
	// The clock starts now: the first media group goes out at once.
	r.base = time.Now().Add(-r.offset(next))
	return nil
}

// offset is when an item is due, relative to the start of pass 0, at speed 1.
func (r *runner) offset(it item) time.Duration {
	return time.Duration(it.at-r.plan.Start) * time.Millisecond
}

func (r *runner) publish(pass int, it item) error {
	e := it.entry
	if r.opts.Speed > 0 {
		at := r.offset(it) + time.Duration(int64(pass)*r.period)*time.Millisecond
		due := r.base.Add(time.Duration(float64(at) / r.opts.Speed))
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.ctx.Done():
				t.Stop()
				return r.ctx.Err()
			}
		}
	}
	frames, err := ReadGroup(r.ctx, r.store, r.opts.StoreRoot, e)
	var corrupt *CorruptError
	if errors.As(err, &corrupt) && r.opts.SkipCorrupt {
		r.stats.Skipped++
		r.log.Warn("replay: corrupt object skipped; the group becomes a gap", "track", e.Track, "group", e.Group,
			"blake3", corrupt.ID, "path", corrupt.Path, "err", corrupt.Err)
		return nil
	}
	if err != nil {
		return err
	}
	g := moq.OutGroup{Sequence: e.Group + uint64(pass)*r.span[e.Track], Frames: make([]moq.OutFrame, len(frames))}
	scale := r.scale[e.Track]
	shift := uint64(int64(pass)*r.period) * scale / 1000
	derived := uint64(max(0, it.at-r.plan.Start)) * scale / 1000
	for i, f := range frames {
		ts := derived
		if len(e.Timestamps) == len(frames) && e.Timescale == scale {
			ts = uint64(max(0, e.Timestamps[i]))
		}
		g.Frames[i] = moq.OutFrame{Payload: f, Timestamp: ts + shift}
	}
	if err := r.tracks[e.Track].WriteGroup(r.ctx, g); err != nil {
		return fmt.Errorf("replay: publish %s group %d: %w", e.Track, g.Sequence, err)
	}
	r.stats.Groups++
	r.stats.Bytes += e.Size
	return nil
}
