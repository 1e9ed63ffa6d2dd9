package serve

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/export"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/zeebo/blake3"
)

// errNotFound is a broadcast or track that no manifest file names.
var errNotFound = errors.New("not archived")

// broadcastFiles is one archived broadcast: the tracks that have a manifest file.
type broadcastFiles struct {
	Name   string
	Tracks []string // sorted; catalog.TrackName among them when archived
}

// listArchive names every broadcast and track by the first line of each
// manifest file (names come from the files, never from a request, and the
// hashed long form of escaped names needs no reversing). A link or special
// file in the manifest tree is logged and passed over: it must not take the
// whole archive off the air (manifest check reports it too).
func (s *Server) listArchive() ([]broadcastFiles, error) {
	tree, err := manifest.OpenTree(s.opts.ManifestDir)
	if err != nil {
		return nil, err
	}
	files, err := tree.Files("", func(err error) error {
		s.log.Warn("archive-serve: not a manifest file, passed over", "err", err)
		return nil
	})
	if err != nil {
		return nil, err
	}
	byName := map[string]*broadcastFiles{}
	for _, rel := range files {
		e, ok := s.firstEntry(tree, rel)
		if !ok {
			continue
		}
		b := byName[e.Broadcast]
		if b == nil {
			b = &broadcastFiles{Name: e.Broadcast}
			byName[e.Broadcast] = b
		}
		b.Tracks = append(b.Tracks, e.Track)
	}
	var out []broadcastFiles
	for _, b := range byName {
		slices.Sort(b.Tracks)
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b broadcastFiles) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// firstEntry reads the first line of a manifest file; ok is false for an
// empty file (or one whose first line is being written) and for one that
// cannot be read, which is logged (manifest check reports those).
func (s *Server) firstEntry(tree *manifest.Tree, rel string) (manifest.Entry, bool) {
	f, err := tree.Open(rel)
	if err != nil {
		s.log.Warn("archive-serve: manifest file passed over", "err", err)
		return manifest.Entry{}, false
	}
	defer f.Close()
	e, err := manifest.NewDecoder(f).Next()
	return e, err == nil
}

// broadcast returns the archived broadcast called name.
func (s *Server) broadcast(name string) (broadcastFiles, error) {
	all, err := s.listArchive()
	if err != nil {
		return broadcastFiles{}, err
	}
	for _, b := range all {
		if b.Name == name {
			return b, nil
		}
	}
	return broadcastFiles{}, fmt.Errorf("broadcast %q: %w", name, errNotFound)
}

// rendition is what a catalog says of one track.
type rendition struct {
	Kind      string // "video", "audio" or "" (the catalog section)
	Container string // "cmaf", "legacy", "loc"
	Codec     string // RFC 6381, as the catalog gives it
	Init      cas.ID // BLAKE3 of the init segment (cmaf only)
	HasInit   bool
}

// catalogVersion is one catalog group of a broadcast.
type catalogVersion struct {
	Received   int64
	Renditions map[string]rendition
}

// catalogs reads every catalog group of a broadcast, oldest first. Each
// catalog object is verified as it is read; parsed catalogs are cached by id.
func (s *Server) catalogs(ctx context.Context, b string) ([]catalogVersion, error) {
	entries, err := manifest.ReadFile(s.opts.ManifestDir, b, catalog.TrackName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []catalogVersion
	for _, e := range entries {
		if e.Kind != record.KindGroup || len(e.Frames) == 0 {
			continue
		}
		r, err := s.catalogRenditions(ctx, &e)
		if err != nil {
			return nil, err
		}
		out = append(out, catalogVersion{Received: e.ReceivedUnixMs, Renditions: r})
	}
	slices.SortStableFunc(out, func(a, b catalogVersion) int { return cmp.Compare(a.Received, b.Received) })
	return out, nil
}

func (s *Server) catalogRenditions(ctx context.Context, e *manifest.Entry) (map[string]rendition, error) {
	id, err := e.ID()
	if err != nil {
		return nil, err
	}
	if r, ok := s.cache.catalog(id); ok && s.initsCached(r) {
		return r, nil
	}
	data, err := s.readVerified(ctx, id, e.Size)
	if err != nil {
		return nil, err
	}
	doc := data[:e.Frames[0]]
	cat, err := catalog.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("catalog object %s: %w", id, err)
	}
	codecs := catalogCodecs(doc)
	out := map[string]rendition{}
	for _, t := range cat.Tracks {
		r := codecs[t]
		r.Container = cat.Container[t]
		if init, ok := cat.Init[t]; ok {
			r.Init, r.HasInit = cas.ID(blake3.Sum256(init)), true
			s.cache.putInit(r.Init, init)
		}
		out[t] = r
	}
	s.cache.putCatalog(id, out)
	return out, nil
}

// initsCached reports whether every init segment of a cached catalog is
// still cached (the two caches forget independently).
func (s *Server) initsCached(r map[string]rendition) bool {
	for _, x := range r {
		if _, ok := s.cache.init(x.Init); x.HasInit && !ok {
			return false
		}
	}
	return true
}

// catalogCodecs reads the section (video or audio) and codec string of each
// rendition of a hang catalog; pkg/catalog keeps only what archiving needs.
// A document it cannot read yields none: playlists then carry no CODECS.
func catalogCodecs(doc []byte) map[string]rendition {
	var d map[string]json.RawMessage
	out := map[string]rendition{}
	if json.Unmarshal(doc, &d) != nil {
		return out
	}
	for _, kind := range []string{"video", "audio"} {
		var sec struct {
			Renditions map[string]struct {
				Codec string `json:"codec"`
			} `json:"renditions"`
		}
		if json.Unmarshal(d[kind], &sec) != nil {
			continue
		}
		for name, r := range sec.Renditions {
			out[name] = rendition{Kind: kind, Codec: r.Codec}
		}
	}
	return out
}

// inForce returns the latest catalog received at or before ms, or nil.
func inForce(cats []catalogVersion, ms int64) *catalogVersion {
	var best *catalogVersion
	for i := range cats {
		if cats[i].Received <= ms {
			best = &cats[i]
		}
	}
	return best
}

// timeRange selects groups by receive time (Unix ms, inclusive); 0 is open.
type timeRange struct{ From, To int64 }

func (r timeRange) contains(ms int64) bool {
	return (r.From == 0 || ms >= r.From) && (r.To == 0 || ms <= r.To)
}

// segment is one group of a track as an HLS media segment.
type segment struct {
	Entry    manifest.Entry
	ID       cas.ID
	Init     cas.ID
	Duration float64 // seconds
	// Discontinuity is set when the segment does not continue the previous
	// one (Why says why): a missing group, a new publisher session, a new
	// init segment, or an object whose duration could not be read.
	Discontinuity bool
	Why           string
}

// Start is the segment's wall-clock start: its group's receive time (when
// its last frame arrived) less its duration.
func (g *segment) Start() time.Time {
	return time.UnixMilli(g.Entry.ReceivedUnixMs).Add(-time.Duration(g.Duration * float64(time.Second)))
}

// Why a segment does not continue the previous one.
const (
	whySession = "publisher session"
	whyInit    = "catalog change"
	// whyUnrecorded is a hole in the sequences that no gap line explains.
	whyUnrecorded = "unrecorded"
)

// trackSegments returns a track's groups in rng as segments: publisher
// sessions in file order, each session's groups in sequence order. Groups
// without a cmaf init segment in the catalog in force are left out. live
// holds back the newest groups that arrived out of order (see holdBack).
func (s *Server) trackSegments(ctx context.Context, b, track string, cats []catalogVersion, rng timeRange, live bool) ([]segment, error) {
	entries, err := manifest.ReadFile(s.opts.ManifestDir, b, track)
	if err != nil {
		return nil, err
	}
	var times []int64
	for _, c := range cats {
		times = append(times, c.Received)
	}
	var out []segment
	why := ""
	for _, sess := range manifest.SplitSessions(entries, times) {
		var groups []manifest.Entry
		for _, e := range sess.Entries {
			if e.Kind == record.KindGroup && rng.contains(e.ReceivedUnixMs) {
				groups = append(groups, e)
			}
		}
		slices.SortStableFunc(groups, func(a, b manifest.Entry) int { return cmp.Compare(a.Group, b.Group) })
		if len(out) > 0 && len(groups) > 0 {
			why = whySession
		}
		for i, e := range groups {
			if i > 0 && e.Group == groups[i-1].Group {
				continue // a duplicate line
			}
			if i > 0 && e.Group != groups[i-1].Group+1 && why == "" {
				why = gapReason(&sess, groups[i-1].Group+1)
			}
			cv := inForce(cats, e.ReceivedUnixMs)
			if cv == nil {
				why = cmp.Or(why, "no catalog")
				continue
			}
			r := cv.Renditions[track]
			if r.Container != "cmaf" || !r.HasInit {
				why = cmp.Or(why, "not cmaf")
				continue
			}
			seg := segment{Entry: e, Init: r.Init}
			if seg.ID, err = e.ID(); err != nil {
				return nil, err
			}
			if seg.Duration, err = s.duration(ctx, &e, r.Init); err != nil {
				s.log.Error("archive-serve: segment left out of the playlist", "broadcast", b, "track", track, "group", e.Group, "err", err)
				why = cmp.Or(why, "unreadable")
				continue
			}
			if n := len(out); n > 0 {
				if why == "" && out[n-1].Init != seg.Init {
					why = whyInit
				}
				seg.Discontinuity, seg.Why = why != "", why
			}
			why = ""
			out = append(out, seg)
		}
	}
	if live {
		out = holdBack(out)
	}
	return out, nil
}

// holdBack drops the newest segments from the first unrecorded hole among the
// last manifest.SessionReorder+1: the archiver appends groups as they
// complete, slightly out of order, and an EVENT playlist may only grow at its
// end, so a group that may still arrive must not be passed over. (A hole
// with a gap line will not be filled.)
func holdBack(segs []segment) []segment {
	for i := max(1, len(segs)-manifest.SessionReorder-1); i < len(segs); i++ {
		if segs[i].Discontinuity && segs[i].Why == whyUnrecorded {
			return segs[:i]
		}
	}
	return segs
}

// gapReason is the reason of the session's gap line covering seq, or whyUnrecorded.
func gapReason(sess *manifest.Session, seq uint64) string {
	for _, e := range sess.Entries {
		if e.Kind == record.KindGap && e.First <= seq && seq <= e.Last {
			return e.Reason
		}
	}
	return whyUnrecorded
}

// duration is a group's media duration in seconds: from the manifest's
// per-frame timestamps when it has two or more (frame count times the mean
// frame interval, exact for a constant frame rate), else from the object's
// fragments (tfdt and trun durations), read once and cached.
func (s *Server) duration(ctx context.Context, e *manifest.Entry, init cas.ID) (float64, error) {
	if n := len(e.Timestamps); e.Timescale > 0 && n >= 2 && n == len(e.Frames) && e.Timestamps[n-1] > e.Timestamps[0] {
		span := float64(e.Timestamps[n-1]-e.Timestamps[0]) / float64(e.Timescale)
		return span * float64(n) / float64(n-1), nil
	}
	id, err := e.ID()
	if err != nil {
		return 0, err
	}
	if d, ok := s.cache.span(id); ok {
		return d, nil
	}
	initData, ok := s.cache.init(init)
	if !ok {
		return 0, fmt.Errorf("init segment %s is no longer cached", init)
	}
	data, err := s.readVerified(ctx, id, e.Size)
	if err != nil {
		return 0, err
	}
	_, dur, scale, err := export.Span(initData, data)
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", id, err)
	}
	d := float64(dur) / float64(scale)
	s.cache.putSpan(id, d)
	return d, nil
}
