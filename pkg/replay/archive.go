// Package replay publishes an archived broadcast again: it reads the manifests
// of one broadcast and the objects they name in the CAS, schedules the groups
// on their original timing, and feeds them to a publisher (a moq.Publisher in
// production), so that what a subscriber receives is byte for byte what was
// archived.
package replay

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// Archive is what the manifests hold for one broadcast: every track's entries
// (groups and gaps), in file order.
type Archive struct {
	Broadcast string
	Tracks    map[string][]manifest.Entry
}

// Load reads every manifest file of broadcast under manifestDir. An invalid
// line is an error: replaying a manifest we cannot read fully would publish a
// broadcast with holes nobody recorded. So is a link or special file among the
// broadcast's track files (never followed or opened): one of its tracks would
// be missing.
func Load(manifestDir, broadcast string) (*Archive, error) {
	tree, err := manifest.OpenTree(manifestDir)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	files, err := tree.Files(broadcast, func(err error) error { return err })
	if err != nil {
		return nil, fmt.Errorf("replay: broadcast %q: %w", broadcast, err)
	}
	a := &Archive{Broadcast: broadcast, Tracks: map[string][]manifest.Entry{}}
	for _, rel := range files {
		entries, err := tree.Read(rel)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		if len(entries) > 0 {
			a.Tracks[entries[0].Track] = entries
		}
	}
	if len(a.Tracks) == 0 {
		return nil, fmt.Errorf("replay: broadcast %q: no manifest entries under %s", broadcast, manifestDir)
	}
	return a, nil
}

// Range selects what to replay. The zero value is everything.
type Range struct {
	// From and To bound the groups' received times, inclusive; zero is open.
	From, To time.Time
	// Track, First and Last select by group sequence instead: the window runs
	// from the received time of Track's first group at or after First to that
	// of its last group at or before Last, and every track's groups received in
	// that window are replayed.
	Track       string
	First, Last uint64
	ByGroups    bool
}

// item is one scheduled manifest entry.
type item struct {
	at    int64 // received time, Unix ms
	entry manifest.Entry
}

// Plan is the schedule of one pass over the range.
type Plan struct {
	// Items in publishing order: by received time, the catalog first on ties.
	items []item
	// Start and End are the received times of the first and last item (ms).
	Start, End int64
	// Tracks lists every track with an item, the catalog track first.
	Tracks []string
	// Groups counts the group items; Gaps the archive's gap entries in range.
	Groups, Gaps int
}

// PlanRange schedules the entries of r. The catalog group in force at the
// start of the window (the last one received at or before it) is published
// first even if it was received earlier, so that a subscriber can decode the
// media that follows.
func (a *Archive) PlanRange(r Range) (*Plan, error) {
	from, to := int64(0), int64(1<<62)
	if r.ByGroups {
		entries, ok := a.Tracks[r.Track]
		if !ok {
			return nil, fmt.Errorf("replay: --groups: track %q is not archived", r.Track)
		}
		from, to = 1<<62, 0
		for _, e := range entries {
			if e.Kind == record.KindGroup && e.Group >= r.First && e.Group <= r.Last {
				from, to = min(from, e.ReceivedUnixMs), max(to, e.ReceivedUnixMs)
			}
		}
		if from > to {
			return nil, fmt.Errorf("replay: --groups: track %q has no group in %d-%d", r.Track, r.First, r.Last)
		}
	} else {
		if !r.From.IsZero() {
			from = r.From.UnixMilli()
		}
		if !r.To.IsZero() {
			to = r.To.UnixMilli()
		}
	}
	p := &Plan{}
	seen := map[string]map[[2]string]bool{}
	var inForce *item
	for _, track := range a.trackOrder() {
		seen[track] = map[[2]string]bool{}
		for _, e := range a.Tracks[track] {
			if track == catalog.TrackName && e.Kind == record.KindGroup && e.ReceivedUnixMs < from &&
				(inForce == nil || e.ReceivedUnixMs >= inForce.entry.ReceivedUnixMs) {
				inForce = &item{at: from, entry: e} // published at the start, whenever received
			}
			if e.ReceivedUnixMs < from || e.ReceivedUnixMs > to {
				continue
			}
			if e.Kind == record.KindGap {
				p.Gaps++
				continue
			}
			// A manifest may name a group twice (re-fed input older than the
			// appender's dedup window); it is published once.
			key := [2]string{fmt.Sprint(e.Group), e.BLAKE3}
			if seen[track][key] {
				continue
			}
			seen[track][key] = true
			p.items = append(p.items, item{at: e.ReceivedUnixMs, entry: e})
		}
	}
	if inForce != nil {
		p.items = append(p.items, *inForce)
	}
	if len(p.items) == 0 {
		return nil, errors.New("replay: no archived group in the selected range")
	}
	order := map[string]int{}
	for i, t := range a.trackOrder() {
		order[t] = i
	}
	slices.SortStableFunc(p.items, func(x, y item) int {
		return cmp.Or(cmp.Compare(x.at, y.at), cmp.Compare(order[x.entry.Track], order[y.entry.Track]),
			cmp.Compare(x.entry.Group, y.entry.Group))
	})
	p.Start, p.End = p.items[0].at, p.items[len(p.items)-1].at
	p.Groups = len(p.items)
	has := map[string]bool{}
	for _, it := range p.items {
		if !has[it.entry.Track] {
			has[it.entry.Track] = true
			p.Tracks = append(p.Tracks, it.entry.Track)
		}
	}
	slices.SortStableFunc(p.Tracks, func(x, y string) int { return cmp.Compare(order[x], order[y]) })
	return p, nil
}

// trackOrder lists the archived tracks, the catalog first, then by name.
func (a *Archive) trackOrder() []string {
	var names []string
	for t := range a.Tracks {
		names = append(names, t)
	}
	slices.SortFunc(names, func(x, y string) int {
		return cmp.Or(-cmp.Compare(boolInt(x == catalog.TrackName), boolInt(y == catalog.TrackName)), strings.Compare(x, y))
	})
	return names
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DefaultGroupsTrack is the track --groups counts in when none is named: the
// first media track of the catalog in force at the start of the archive, else
// the first archived track other than the catalog.
func (a *Archive) DefaultGroupsTrack(first *catalog.Catalog) string {
	if first != nil {
		for _, t := range first.Tracks {
			if _, ok := a.Tracks[t]; ok {
				return t
			}
		}
	}
	for _, t := range a.trackOrder() {
		if t != catalog.TrackName {
			return t
		}
	}
	return catalog.TrackName
}
