package export

import (
	"bufio"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// cursor walks one track's fragments of a segment, group by group.
type cursor struct {
	x      *exporter
	init   *trackInit
	groups []manifest.Entry
	frags  []fragment
	base   uint64 // subtracted from every decode time
	out    int    // output track index
}

// peek returns the next fragment, reading groups as needed; nil at the end.
func (c *cursor) peek() (*fragment, error) {
	for len(c.frags) == 0 {
		if len(c.groups) == 0 {
			return nil, nil
		}
		if err := c.x.ctx.Err(); err != nil {
			return nil, err
		}
		e := &c.groups[0]
		c.groups = c.groups[1:]
		data, err := c.x.read(e)
		if err != nil {
			return nil, err
		}
		c.x.progress.Groups++
		if p := c.x.opts.Progress; p != nil {
			p(c.x.progress)
		}
		if data == nil {
			continue // skipped as corrupt
		}
		if c.frags, err = parseFragments(data, c.init.trex); err != nil {
			return nil, fmt.Errorf("group %d of track %q (object %s): not cmaf: %w", e.Group, e.Track, e.BLAKE3, err)
		}
	}
	return &c.frags[0], nil
}

func (c *cursor) pop() { c.frags = c.frags[1:] }

// before reports whether decode time a at timescale ta precedes b at tb,
// exactly (128-bit products).
func before(a uint64, ta uint32, b uint64, tb uint32) bool {
	ah, al := bits.Mul64(a, uint64(tb))
	bh, bl := bits.Mul64(b, uint64(ta))
	return ah < bh || ah == bh && al < bl
}

// rescale converts t from timescale from to timescale to, rounding down.
func rescale(t uint64, from, to uint32) (uint64, error) {
	hi, lo := bits.Mul64(t, uint64(to))
	if hi >= uint64(from) {
		return 0, fmt.Errorf("decode time %d at timescale %d overflows at %d", t, from, to)
	}
	q, _ := bits.Div64(hi, lo, uint64(from))
	return q, nil
}

// write writes one segment: the init, then every track's fragments in decode
// time order. The lead track's groups bound it; the others' fragments are kept
// from the lead's first decode time to the end of its last fragment.
func (x *exporter) write(n int, seg segment, open Open) error {
	cursors := make([]*cursor, len(x.tracks))
	inits := make([]*trackInit, len(x.tracks))
	for i, t := range x.tracks {
		ti, err := initOf(seg.cat, t.name)
		if err != nil {
			return err
		}
		inits[i] = ti
		cursors[i] = &cursor{x: x, init: ti, groups: seg.groups[i], out: i}
	}
	lead := cursors[0]
	first, err := lead.peek()
	if err != nil {
		return err
	}
	if first == nil {
		return fmt.Errorf("no readable group of track %q in output file %d", x.tracks[0].name, n)
	}
	t0, ts0 := first.decode, lead.init.timescale
	for i, c := range cursors {
		if c.base, err = rescale(t0, ts0, c.init.timescale); err != nil {
			return fmt.Errorf("track %q: %w", x.tracks[i].name, err)
		}
	}

	sink, err := newSink(n, x.tracks, inits, x.opts.PerTrack, open)
	if err != nil {
		return err
	}
	file := File{N: n, Session: x.tracks[0].sessions[seg.session].Number}
	fragments := make([]int, len(cursors)) // by track
	t1 := t0
	for {
		// Once the lead has no fragment left, the end of its last one bounds
		// the others.
		leadNext, err := lead.peek()
		if err != nil {
			return err
		}
		pick, pickF := -1, (*fragment)(nil)
		for i, c := range cursors {
			f, err := c.peek()
			for err == nil && f != nil && i > 0 && before(f.decode, c.init.timescale, t0, ts0) {
				c.pop() // before the lead's start
				f, err = c.peek()
			}
			if err != nil {
				return err
			}
			if f == nil || i > 0 && leadNext == nil && !before(f.decode, c.init.timescale, t1, ts0) {
				continue
			}
			if pickF == nil || before(f.decode, c.init.timescale, pickF.decode, cursors[pick].init.timescale) {
				pick, pickF = i, f
			}
		}
		if pickF == nil {
			break
		}
		c := cursors[pick]
		if pickF.decode < c.base {
			return fmt.Errorf("track %q: decode time %d goes back before the file's start %d", x.tracks[pick].name, pickF.decode, c.base)
		}
		if pick == 0 {
			t1 = max(t1, pickF.decode+pickF.duration)
		}
		if err := sink.fragment(c, pickF); err != nil {
			return err
		}
		c.pop()
		fragments[pick]++
	}
	if err := sink.commit(); err != nil {
		return err
	}
	file.Start, file.Duration = float64(t0)/float64(ts0), float64(t1-t0)/float64(ts0)
	if x.opts.PerTrack {
		for i, t := range x.tracks {
			f := file
			f.Track, f.Fragments = t.name, fragments[i]
			x.report.Files = append(x.report.Files, f)
		}
	} else {
		for _, k := range fragments {
			file.Fragments += k
		}
		x.report.Files = append(x.report.Files, file)
	}
	return nil
}

// sink writes fragments to one muxed file or to one file per track.
type sink struct {
	files   []io.WriteCloser
	bufs    []*bufio.Writer
	seqs    []uint32
	perTrak bool
}

func newSink(n int, tracks []track, inits []*trackInit, perTrack bool, open Open) (*sink, error) {
	s := &sink{perTrak: perTrack}
	add := func(track string, ti []*trackInit) error {
		w, err := open(n, track)
		if err != nil {
			return err
		}
		s.files = append(s.files, w)
		s.bufs = append(s.bufs, bufio.NewWriterSize(w, 256<<10))
		s.seqs = append(s.seqs, 0)
		return mergeInit(s.bufs[len(s.bufs)-1], ti)
	}
	var err error
	if perTrack {
		for i, t := range tracks {
			if err = add(t.name, inits[i:i+1]); err != nil {
				break
			}
		}
	} else {
		err = add("", inits)
	}
	if err != nil {
		return nil, err // the files opened are the caller's to discard (see Open)
	}
	return s, nil
}

func (s *sink) fragment(c *cursor, f *fragment) error {
	i, id := 0, uint32(c.out+1)
	if s.perTrak {
		i, id = c.out, 1
	}
	s.seqs[i]++
	return f.write(s.bufs[i], s.seqs[i], id, c.base)
}

// commit flushes and closes every file (the Open contract: Close commits).
func (s *sink) commit() error {
	for i, b := range s.bufs {
		if err := b.Flush(); err != nil {
			return err
		}
		if err := s.files[i].Close(); err != nil {
			return err
		}
	}
	return nil
}

// missing counts, per track and session, the groups missing between the first
// and last group of each segment, by the reason the manifest gives.
func (x *exporter) missing() []Missing {
	type key struct {
		track   string
		session int
		reason  string
	}
	counts := map[key]uint64{}
	for _, seg := range x.segments {
		for i, groups := range seg.groups {
			if len(groups) == 0 {
				continue
			}
			t := x.tracks[i]
			sess := &t.sessions[seg.sessions[i]]
			have := map[uint64]bool{}
			lo, hi := groups[0].Group, groups[0].Group
			for _, g := range groups {
				have[g.Group] = true
				lo, hi = min(lo, g.Group), max(hi, g.Group)
			}
			for s := lo; s <= hi; s++ {
				if !have[s] {
					counts[key{t.name, sess.Number, gapReason(sess, s)}]++
				}
			}
		}
	}
	for g := range x.skipped {
		counts[key{g.track, x.sessionNumber(g), "corrupt"}]++
	}
	var out []Missing
	for k, n := range counts {
		out = append(out, Missing{Track: k.track, Session: k.session, Reason: k.reason, Groups: n})
	}
	slices.SortFunc(out, func(a, b Missing) int {
		if a.Track != b.Track {
			return strings.Compare(a.Track, b.Track)
		}
		if a.Session != b.Session {
			return a.Session - b.Session
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return out
}

// sessionNumber returns the number of the session holding a group of an
// exported track, or 0 (a catalog group).
func (x *exporter) sessionNumber(g groupKey) int {
	for _, t := range x.tracks {
		if t.name != g.track {
			continue
		}
		for _, sess := range t.sessions {
			for _, e := range sess.Entries {
				if e.Kind == record.KindGroup && e.Group == g.seq && e.BLAKE3 == g.blake3 {
					return sess.Number
				}
			}
		}
	}
	return 0
}

// gapReason is the reason of the session's gap line covering seq, or "unrecorded".
func gapReason(sess *manifest.Session, seq uint64) string {
	for _, e := range sess.Entries {
		if e.Kind == record.KindGap && e.First <= seq && seq <= e.Last {
			return e.Reason
		}
	}
	return "unrecorded"
}
