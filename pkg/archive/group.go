package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
)

// group receives one group into the sink. It returns an error only for store
// failures; a group lost on the network becomes a gap record.
func (ts *trackSet) group(ctx context.Context, track string, g moq.Group, catalogs chan catalogUpdate) error {
	opened := time.Now() // the group's stream header has arrived
	defer g.Close()
	// A group stream can stay open for as long as the publisher's GOP (or much
	// longer on a sparse track); reads do not see ctx, so closing the group is
	// what ends them on shutdown.
	defer context.AfterFunc(ctx, func() { g.Close() })()
	h := record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: ts.w.cfg.Broadcast, Track: track, Group: g.Sequence()}
	gw, err := ts.w.sink.BeginGroup(ctx, h)
	if err != nil {
		return ts.storeFailed(ctx, track, h.Group, err)
	}
	// Frames reach the sink through a buffer: one store write (and one hash
	// update) per 32 KiB instead of one per QUIC read, and no copy buffer
	// allocated per frame by io.Copy (bufio.Writer reads into its own).
	bw := groupBuffers.Get().(*bufio.Writer)
	bw.Reset(storeWriter{gw})
	defer func() {
		bw.Reset(nil)
		groupBuffers.Put(bw)
	}()
	var first *bytes.Buffer // frame 0 of a catalog group
	if catalogs != nil {
		first = new(bytes.Buffer)
	}
	lost := func(reason string, cause error) error {
		gw.Abort()
		ts.w.log.Info("group not archived", "track", track, "group", h.Group, "reason", reason, "err", cause)
		if reason == record.GapDisconnected {
			return ts.lostInFlight(ctx, track, h.Group)
		}
		return ts.recordGaps(context.WithoutCancel(ctx), track, []seqRange{{h.Group, h.Group, reason}})
	}
	for {
		f, err := g.NextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, moq.ErrGroupReset) {
			return lost(record.GapReset, err)
		}
		if errors.Is(err, moq.ErrTooLarge) {
			return lost(record.GapTooLarge, err)
		}
		if err != nil {
			return lost(record.GapDisconnected, err)
		}
		if f.Size > ts.w.cfg.MaxGroupBytes-h.Size || len(h.Frames) >= record.MaxFrames {
			return lost(record.GapTooLarge, fmt.Errorf("group exceeds %d bytes or %d frames", ts.w.cfg.MaxGroupBytes, record.MaxFrames))
		}
		var dst io.Writer = bw
		if first != nil && len(h.Frames) == 0 && f.Size <= catalog.MaxSize {
			dst = io.MultiWriter(dst, first)
		}
		n, err := io.Copy(dst, f.Body)
		if err != nil {
			if errors.Is(err, errStore) {
				gw.Abort()
				return ts.storeFailed(ctx, track, h.Group, err)
			}
			if errors.Is(err, moq.ErrGroupReset) {
				return lost(record.GapReset, err)
			}
			return lost(record.GapDisconnected, err)
		}
		if n != f.Size {
			return lost(record.GapReset, fmt.Errorf("frame of %d bytes ended after %d", f.Size, n))
		}
		h.Frames = append(h.Frames, n)
		h.Size += n
		if f.HasTimestamp {
			h.Timescale = f.Timescale
			h.Timestamps = append(h.Timestamps, f.Timestamp)
		}
	}
	if len(h.Timestamps) != len(h.Frames) {
		h.Timescale, h.Timestamps = 0, nil // all frames carry one, or none is kept
	}
	ended := time.Now()
	h.ReceivedUnixMs = ended.UnixMilli()
	// The group's last bytes still in the buffer count towards
	// receive-to-durable, like the commit.
	if err := bw.Flush(); err != nil {
		gw.Abort()
		return ts.storeFailed(ctx, track, h.Group, err)
	}
	// A header over the record format's limits (many frames with long
	// timestamps) could be neither written nor indexed.
	if err := record.FormatLimits().Check(&h); err != nil {
		return lost(record.GapTooLarge, err)
	}
	committing := time.Now()
	stored, err := gw.Commit(h)
	if err != nil {
		return ts.storeFailed(ctx, track, h.Group, err)
	}
	// Per-group timings for scripts/bench-relay.sh (receive-to-durable latency).
	ts.w.log.Debug("group durable", "track", track, "group", h.Group, "bytes", h.Size,
		"first_byte_unix_us", opened.UnixMicro(), "last_byte_unix_us", ended.UnixMicro(), "durable_unix_us", time.Now().UnixMicro())
	ts.w.status.stored(h, stored, time.Since(committing))
	if first != nil {
		ts.catalog(ctx, track, first.Bytes(), catalogs)
	}
	return nil
}

// storeFailed records a group that the sink could not store as a gap, if the
// manifest still takes one, and returns the error that ends the track.
func (ts *trackSet) storeFailed(ctx context.Context, track string, seq uint64, err error) error {
	if ctx.Err() != nil {
		// Cancelled (shutdown, unsubscribed, another group's failure), not a
		// failure of its own: lost in flight like any other group.
		return ts.lostInFlight(ctx, track, seq)
	}
	ts.w.log.Error("group not archived: store failed", "track", track, "group", seq, "err", err)
	ts.w.status.storeFailed(track)
	_ = ts.recordGaps(context.WithoutCancel(ctx), track, []seqRange{{seq, seq, record.GapStoreFailed}})
	if !errors.Is(err, errStore) {
		err = fmt.Errorf("%w: %w", errStore, err)
	}
	return fmt.Errorf("%s group %d: %w", track, seq, err)
}

// catalog parses a catalog group's first frame and hands it to the track set.
func (ts *trackSet) catalog(ctx context.Context, track string, data []byte, catalogs chan catalogUpdate) {
	c, err := parseCatalog(track, data, ts.w.cfg.Broadcast)
	if err != nil {
		ts.w.log.Warn("catalog not understood; it is archived, its tracks are not followed", "track", track, "err", err)
		return
	}
	ts.w.log.Debug("catalog", "tracks", c.Tracks)
	send(ctx, catalogs, c)
}

// catalogUpdate carries the newest catalog to the track set's loop; nil means
// the broadcast has no catalog track.
type catalogUpdate struct{ c *catalog.Catalog }

// send delivers the newest catalog update, replacing one not yet taken.
func send(ctx context.Context, ch chan catalogUpdate, c *catalog.Catalog) {
	for {
		select {
		case ch <- catalogUpdate{c}:
			return
		case <-ctx.Done():
			return
		default:
		}
		select { // drop the stale update (capacity 1) and try again
		case <-ch:
		default:
		}
	}
}

// groupBuffers are the write buffers of the groups being received, reused
// because a broadcast opens a group per track every GOP.
var groupBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// storeWriter marks errors of the sink's writer so that they are not taken for
// network errors of the frame being copied.
type storeWriter struct{ w io.Writer }

func (s storeWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errStore, err)
	}
	return n, err
}

func (ts *trackSet) recordGaps(ctx context.Context, track string, gaps []seqRange) error {
	return ts.w.recordGaps(ctx, track, gaps)
}

func (w *worker) recordGaps(ctx context.Context, track string, gaps []seqRange) error {
	for _, g := range gaps {
		h := record.Header{
			V: record.Version, Kind: record.KindGap, Broadcast: w.cfg.Broadcast, Track: track,
			First: g.first, Last: g.last, Reason: g.reason, ReceivedUnixMs: time.Now().UnixMilli(),
		}
		if err := w.sink.Gap(ctx, h); err != nil {
			w.status.storeFailed(track)
			return fmt.Errorf("%w: gap record: %w", errStore, err)
		}
		w.status.gap(h)
		w.log.Warn("gap", "track", track, "first", g.first, "last", g.last, "reason", g.reason)
	}
	return nil
}
