// Package export turns a range of an archived broadcast back into playable
// fragmented MP4: the init segments from the catalog in force, the moof+mdat
// fragments of each group passed through with only their track id, sequence
// number and decode time rewritten. The behaviour is specified in docs/export.md.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/record"
)

// ErrMultipleFiles is returned with SingleFile when the range needs more files.
var ErrMultipleFiles = errors.New("the range needs more than one output file")

// Options say what to export.
type Options struct {
	ManifestDir string
	Store       cas.Store
	// StoreRoot is only used to name objects in errors.
	StoreRoot string
	Broadcast string
	// Tracks to export; empty means every rendition of the catalog in force.
	Tracks []string
	Range  Range
	// PerTrack writes one file per track instead of one muxed file.
	PerTrack bool
	// SingleFile fails, before writing anything, when the range needs more than
	// one output file (a catalog change or a publisher restart inside it).
	SingleFile bool
	// SkipCorrupt turns a missing or corrupt object into a gap instead of an error.
	SkipCorrupt bool
	// Progress, when set, is called after each group.
	Progress func(Progress)
}

// Range selects the groups of the lead track (the first video track, else the
// first track): by receive time (after From, at or before To; a zero end is open), by
// group numbers (Groups) or by media time (Media).
type Range struct {
	From, To time.Time
	// Groups selects the lead track's groups First..Last (inclusive) of one
	// publisher session: Session (1-based, as in docs/manifest.md), or the
	// only session holding any of them when Session is 0.
	Groups      bool
	First, Last uint64
	// Media selects the lead track's groups whose first frame's media time is
	// in MediaFrom..MediaTo (inclusive; MediaTo 0 leaves the end open), within
	// one publisher session like Groups (media time restarts with each).
	Media              bool
	MediaFrom, MediaTo time.Duration
	Session            int
}

// Progress counts the groups read.
type Progress struct {
	Groups, GroupsTotal int
	Bytes               int64
}

// Open creates output file n (0-based) of an export: all tracks muxed (track
// "") or one track. Close must commit it; on an export error the caller
// discards every file not closed.
type Open func(n int, track string) (io.WriteCloser, error)

// Report describes an export.
type Report struct {
	Files   []File
	Missing []Missing
	// NotExported says why renditions of the catalog were left out (a
	// container other than cmaf) when no tracks were named.
	NotExported []string
}

// File is one output file.
type File struct {
	N       int
	Track   string // "" when muxed
	Session int    // of the lead track
	// Start and Duration are the lead track's media time, in seconds, before
	// the output's decode times were moved to start at 0.
	Start, Duration float64
	Fragments       int
}

// Missing counts the groups of a track missing inside the exported range.
type Missing struct {
	Track   string
	Session int    // 0 for catalog groups
	Reason  string // a gap reason; "unrecorded" when no gap line covers it; "corrupt" with SkipCorrupt
	Groups  uint64
}

// Export writes the selected range through open.
func Export(ctx context.Context, opts Options, open Open) (Report, error) {
	x := &exporter{opts: opts, ctx: ctx}
	if err := x.plan(); err != nil {
		return Report{}, err
	}
	if opts.SingleFile && len(x.segments) > 1 {
		return Report{}, fmt.Errorf("%w: %d files (%s)", ErrMultipleFiles, len(x.segments), x.segmentReasons())
	}
	for _, s := range x.segments {
		for _, g := range s.groups {
			x.progress.GroupsTotal += len(g)
		}
	}
	for i, seg := range x.segments {
		if err := x.write(i, seg, open); err != nil {
			return x.report, err
		}
	}
	x.report.Missing = x.missing()
	return x.report, nil
}

// SessionInfo summarizes one publisher session of a track.
type SessionInfo struct {
	Track  string
	Number int // 1-based, as Range.Session
	Line   int // of its first manifest line
	// Groups counts its group lines; First and Last are their lowest and
	// highest sequence; Gaps counts its gap lines.
	Groups, Gaps int
	First, Last  uint64
	// Received is the receive time of its first and last group.
	Received [2]time.Time
}

// Sessions lists the publisher sessions of the tracks an export would write
// (opts.Tracks, or every rendition of the latest catalog), lead track first.
// Only the catalogs' objects are read.
func Sessions(ctx context.Context, opts Options) ([]SessionInfo, error) {
	opts.Range = Range{}
	x := &exporter{opts: opts, ctx: ctx}
	if _, err := x.readTracks(); err != nil {
		return nil, err
	}
	var out []SessionInfo
	for _, t := range x.tracks {
		for _, sess := range t.sessions {
			info := SessionInfo{Track: t.name, Number: sess.Number, Line: sess.Line}
			for _, e := range sess.Entries {
				if e.Kind == record.KindGap {
					info.Gaps++
					continue
				}
				if info.Groups == 0 || e.Group < info.First {
					info.First = e.Group
				}
				info.Last = max(info.Last, e.Group)
				info.Groups++
			}
			if first, last, ok := sess.ReceivedRange(); ok {
				info.Received = [2]time.Time{time.UnixMilli(first), time.UnixMilli(last)}
			}
			out = append(out, info)
		}
	}
	return out, nil
}
