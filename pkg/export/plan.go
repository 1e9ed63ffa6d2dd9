package export

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// groupKey names a group line: a sequence is only unique with its object.
type groupKey struct {
	track  string
	seq    uint64
	blake3 string
}

// catalogVersion is one catalog group of the broadcast.
type catalogVersion struct {
	line     int
	received int64
	cat      *catalog.Catalog
}

// track is one exported track's manifest.
type track struct {
	name     string
	sessions []manifest.Session
}

// segment is a run of lead groups with one catalog and one publisher session:
// one output file (or one per track).
type segment struct {
	session int // index into the lead track's sessions
	cat     *catalogVersion
	why     string             // why the previous segment ended here
	groups  [][]manifest.Entry // by track
	// sessions are each track's session index (the lead's is session).
	sessions []int
}

type exporter struct {
	ctx      context.Context
	opts     Options
	catalogs []catalogVersion
	tracks   []track // tracks[0] is the lead
	segments []segment
	report   Report
	progress Progress
	skipped  map[groupKey]bool // groups whose object was skipped as corrupt
}

// plan reads the manifests and catalogs and divides the range into segments.
func (x *exporter) plan() error {
	names, err := x.readTracks()
	if err != nil {
		return err
	}
	sessions, err := x.selectLead()
	if err != nil {
		return err
	}
	for s, groups := range sessions {
		for _, g := range groups {
			cat := x.inForce(g.ReceivedUnixMs)
			if cat == nil {
				return fmt.Errorf("group %d of track %q (received %s) precedes every catalog", g.Group, g.Track, time.UnixMilli(g.ReceivedUnixMs).UTC().Format(time.RFC3339Nano))
			}
			n := len(x.segments)
			switch {
			case n == 0:
				x.segments = append(x.segments, segment{session: s, cat: cat})
			case x.segments[n-1].session != s:
				x.segments = append(x.segments, segment{session: s, cat: cat, why: fmt.Sprintf("publisher session %d of %q begins", x.tracks[0].sessions[s].Number, x.tracks[0].name)})
			case !sameRenditions(x.segments[n-1].cat.cat, cat.cat, names):
				x.segments = append(x.segments, segment{session: s, cat: cat, why: fmt.Sprintf("catalog changes at line %d", cat.line)})
			}
			seg := &x.segments[len(x.segments)-1]
			if len(seg.groups) == 0 {
				seg.groups = make([][]manifest.Entry, len(x.tracks))
				seg.sessions = make([]int, len(x.tracks))
				seg.sessions[0] = s
			}
			seg.groups[0] = append(seg.groups[0], g)
		}
	}
	if len(x.segments) == 0 {
		return errors.New("the range holds no group of " + fmt.Sprintf("%q", x.tracks[0].name))
	}
	for i := range x.segments {
		if err := x.planFollowers(&x.segments[i]); err != nil {
			return err
		}
	}
	return nil
}

// readTracks reads the catalogs and the manifests of the tracks to export,
// split into publisher sessions, and returns the track names, lead first.
func (x *exporter) readTracks() ([]string, error) {
	if err := x.readCatalogs(); err != nil {
		return nil, err
	}
	// The catalog that names the tracks: the one in force at the range start,
	// or the latest one for a group or media range (whose receive times are not
	// known yet).
	at := int64(-1)
	if !x.opts.Range.Groups && !x.opts.Range.Media && !x.opts.Range.From.IsZero() {
		at = x.opts.Range.From.UnixMilli()
	}
	first := x.inForce(at)
	if first == nil && len(x.catalogs) > 0 {
		first = &x.catalogs[0] // the range starts before the archive does
	}
	if first == nil {
		return nil, fmt.Errorf("no readable catalog of %q is archived", x.opts.Broadcast)
	}
	names, err := x.trackNames(first)
	if err != nil {
		return nil, err
	}
	var catalogTimes []int64
	for _, c := range x.catalogs {
		catalogTimes = append(catalogTimes, c.received)
	}
	for _, name := range names {
		entries, err := manifest.ReadFile(x.opts.ManifestDir, x.opts.Broadcast, name)
		if err != nil {
			return nil, fmt.Errorf("track %q: %w", name, err)
		}
		x.tracks = append(x.tracks, track{name: name, sessions: manifest.SplitSessions(entries, catalogTimes)})
	}
	return names, nil
}

// readCatalogs reads every catalog group of the broadcast.
func (x *exporter) readCatalogs() error {
	entries, err := manifest.ReadFile(x.opts.ManifestDir, x.opts.Broadcast, catalog.TrackName)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("broadcast %q has no archived %s (a broadcast without a catalog cannot be exported): %w", x.opts.Broadcast, catalog.TrackName, err)
	}
	if err != nil {
		return err
	}
	for i, e := range entries {
		if e.Kind != record.KindGroup || len(e.Frames) == 0 {
			continue
		}
		data, err := x.read(&e)
		if err != nil {
			return err
		}
		if data == nil {
			continue // skipped as corrupt
		}
		cat, err := catalog.Parse(data[:e.Frames[0]])
		if err != nil {
			return fmt.Errorf("%s line %d: %w", catalog.TrackName, i+1, err)
		}
		x.catalogs = append(x.catalogs, catalogVersion{line: i + 1, received: e.ReceivedUnixMs, cat: cat})
	}
	return nil
}

// inForce returns the latest catalog received at or before ms; ms < 0 asks
// for the latest of all.
func (x *exporter) inForce(ms int64) *catalogVersion {
	var best *catalogVersion
	for i := range x.catalogs {
		c := &x.catalogs[i]
		if (ms < 0 || c.received <= ms) && (best == nil || c.received >= best.received) {
			best = c
		}
	}
	return best
}

// trackNames returns the tracks to export, the lead first, checking that
// each is a cmaf rendition with an init segment.
func (x *exporter) trackNames(cv *catalogVersion) ([]string, error) {
	names := x.opts.Tracks
	if len(names) == 0 {
		// Every cmaf rendition; the others are named in the report, or in
		// the error when no rendition is left.
		var refused error
		for _, t := range cv.cat.Tracks {
			kind, ok := cv.cat.Container[t]
			switch {
			case !ok:
			case kind == "cmaf":
				names = append(names, t)
			default:
				_, refused = initOf(cv, t)
				x.report.NotExported = append(x.report.NotExported, refused.Error())
			}
		}
		if len(names) == 0 && refused != nil {
			return nil, refused
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s line %d names no media track", catalog.TrackName, cv.line)
	}
	lead := -1
	for i, name := range names {
		ti, err := initOf(cv, name)
		if err != nil {
			return nil, err
		}
		if lead < 0 && ti.handler == "vide" {
			lead = i
		}
	}
	if lead > 0 {
		names = append([]string{names[lead]}, slices.Delete(slices.Clone(names), lead, lead+1)...)
	}
	return names, nil
}

// initOf returns a track's parsed init segment from a catalog.
func initOf(cv *catalogVersion, name string) (*trackInit, error) {
	kind, ok := cv.cat.Container[name]
	if !ok {
		return nil, fmt.Errorf("track %q is not a rendition of the catalog at %s line %d", name, catalog.TrackName, cv.line)
	}
	if kind != "cmaf" {
		return nil, fmt.Errorf("track %q has container kind %q; only cmaf can be exported to MP4 for now", name, kind)
	}
	data, ok := cv.cat.Init[name]
	if !ok {
		return nil, fmt.Errorf("track %q: the cmaf rendition at %s line %d has no init segment", name, catalog.TrackName, cv.line)
	}
	ti, err := parseInit(data)
	if err != nil {
		return nil, fmt.Errorf("track %q (%s line %d): %w", name, catalog.TrackName, cv.line, err)
	}
	return ti, nil
}

// sameRenditions reports whether two catalogs give the tracks the same init segments.
func sameRenditions(a, b *catalog.Catalog, names []string) bool {
	for _, n := range names {
		if a.Container[n] != b.Container[n] || !bytes.Equal(a.Init[n], b.Init[n]) {
			return false
		}
	}
	return true
}

// selectLead returns the lead track's groups in the range, by session index,
// each session's groups in sequence order.
func (x *exporter) selectLead() ([][]manifest.Entry, error) {
	lead := x.tracks[0]
	r := x.opts.Range
	out := make([][]manifest.Entry, len(lead.sessions))
	var holding []string // sessions holding groups of a per-session range
	for s, sess := range lead.sessions {
		if r.Session != 0 && sess.Number != r.Session {
			continue
		}
		for _, e := range sess.Entries {
			if e.Kind != record.KindGroup {
				continue
			}
			in, err := x.inRange(&e)
			if err != nil {
				return nil, err
			}
			if in {
				out[s] = append(out[s], e)
			}
		}
		if len(out[s]) > 0 {
			first, last, _ := sess.ReceivedRange()
			holding = append(holding, fmt.Sprintf("session %d (from line %d, received %s to %s)", sess.Number, sess.Line,
				time.UnixMilli(first).UTC().Format(time.RFC3339), time.UnixMilli(last).UTC().Format(time.RFC3339)))
		}
	}
	if (r.Groups || r.Media) && len(holding) > 1 {
		what := fmt.Sprintf("groups %d-%d", r.First, r.Last)
		if r.Media {
			what = fmt.Sprintf("media time %s-%s", r.MediaFrom, r.MediaTo)
		}
		return nil, fmt.Errorf("%s of track %q are in more than one publisher session, choose one: %s", what, lead.name, strings.Join(holding, "; "))
	}
	for _, groups := range out {
		slices.SortStableFunc(groups, func(a, b manifest.Entry) int { return cmp.Compare(a.Group, b.Group) })
	}
	return out, nil
}

// inRange reports whether a lead group is in the range.
func (x *exporter) inRange(e *manifest.Entry) (bool, error) {
	r := x.opts.Range
	switch {
	case r.Groups:
		return r.First <= e.Group && e.Group <= r.Last, nil
	case r.Media:
		t, ok, err := x.mediaStart(e)
		return ok && t >= r.MediaFrom && (r.MediaTo <= 0 || t <= r.MediaTo), err
	default:
		ms := e.ReceivedUnixMs
		// A group is received when complete, so (From, To] holds the groups
		// completed in the range: about To-From of media, not a GOP more.
		return (r.From.IsZero() || ms > r.From.UnixMilli()) && (r.To.IsZero() || ms <= r.To.UnixMilli()), nil
	}
}

// mediaStart is the media time of a group's first frame: from the manifest's
// timestamps when it has them (moq-lite-05 and later), else from the first
// fragment's decode time, reading the object. ok is false for an object
// skipped as corrupt.
func (x *exporter) mediaStart(e *manifest.Entry) (t time.Duration, ok bool, err error) {
	seconds := func(v, scale uint64) time.Duration {
		return time.Duration(float64(v) / float64(scale) * float64(time.Second))
	}
	if e.Timescale > 0 && len(e.Timestamps) > 0 && e.Timestamps[0] >= 0 {
		return seconds(uint64(e.Timestamps[0]), e.Timescale), true, nil
	}
	cv := x.inForce(e.ReceivedUnixMs)
	if cv == nil {
		return 0, false, fmt.Errorf("group %d of track %q precedes every catalog", e.Group, e.Track)
	}
	ti, err := initOf(cv, e.Track)
	if err != nil {
		return 0, false, err
	}
	data, err := x.read(e)
	if err != nil || data == nil {
		return 0, false, err
	}
	frags, err := parseFragments(data, ti.trex)
	if err != nil || len(frags) == 0 {
		return 0, false, fmt.Errorf("group %d of track %q (object %s): not cmaf: %v", e.Group, e.Track, e.BLAKE3, err)
	}
	return seconds(frags[0].decode, uint64(ti.timescale)), true, nil
}

// Margins around the lead groups' receive times within which the other
// tracks' groups are read; their media time then decides.
const (
	followBefore = 10_000 // ms before the first lead group: a GOP may take this long
	followAfter  = 5_000  // ms after the last: delivery of the tracks is skewed
)

// planFollowers picks each other track's candidate groups for a segment: from
// its session overlapping the lead's session most, those received near the
// lead groups. Their fragments are trimmed by media time when written.
func (x *exporter) planFollowers(seg *segment) error {
	leadSess := &x.tracks[0].sessions[seg.session]
	lf, ll, _ := leadSess.ReceivedRange()
	lead := seg.groups[0]
	lo := lead[0].ReceivedUnixMs - followBefore
	hi := lead[len(lead)-1].ReceivedUnixMs + followAfter
	for i := 1; i < len(x.tracks); i++ {
		s := bestOverlap(x.tracks[i].sessions, lf, ll)
		if s < 0 {
			continue // the track has nothing there; the file holds the others
		}
		seg.sessions[i] = s
		for _, e := range x.tracks[i].sessions[s].Entries {
			if e.Kind == record.KindGroup && e.ReceivedUnixMs >= lo && e.ReceivedUnixMs <= hi {
				seg.groups[i] = append(seg.groups[i], e)
			}
		}
		slices.SortStableFunc(seg.groups[i], func(a, b manifest.Entry) int { return cmp.Compare(a.Group, b.Group) })
	}
	return nil
}

// bestOverlap returns the session whose receive times overlap [first, last]
// most (the nearest one when none overlaps), or -1 when there are no groups.
func bestOverlap(sessions []manifest.Session, first, last int64) int {
	best, bestScore := -1, int64(0)
	for i := range sessions {
		f, l, ok := sessions[i].ReceivedRange()
		if !ok {
			continue
		}
		// Overlap length; a negative value is the distance apart.
		score := min(l, last) - max(f, first)
		if best < 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

func (x *exporter) segmentReasons() string {
	var why []string
	for _, s := range x.segments[1:] {
		why = append(why, s.why)
	}
	return strings.Join(why, "; ")
}
