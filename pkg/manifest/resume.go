package manifest

import (
	"cmp"
	"math"
	"slices"

	"github.com/every-channel/ec-node/pkg/record"
)

// ResumePoint is where archiving a track resumes after a restart.
type ResumePoint struct {
	// High is the highest sequence accounted for (archived, or in a gap).
	High uint64
	// Missing are the sequences below High, in the last publisher session of
	// the window, that no entry accounts for: groups still in flight, or
	// awaited in the reorder window, when the archiver stopped (a SIGKILL
	// leaves them so). A resuming archiver takes them from the relay's cache
	// or records them as gaps. Only the resumeWindow sequences below High are
	// looked at: an archiver has far fewer groups of a track in flight.
	Missing []uint64
}

// resumeWindow is how many of the last entries a resume point is read from.
// Groups are appended as they complete, slightly out of order, so the last
// line alone may not hold the highest sequence; a short window still follows a
// publisher that restarted its sequence numbers.
const resumeWindow = 64

// seqRing holds the sequence ranges accounted for by the last resumeWindow
// entries, oldest first from next: a group's sequence, or a gap's range.
type seqRing struct {
	spans [resumeWindow]span
	n     int
}

type span struct{ first, last uint64 }

func (r *seqRing) add(e *Entry) {
	s := span{e.Group, e.Group}
	if e.Kind == record.KindGap {
		s = span{e.First, e.Last}
	}
	r.spans[r.n%resumeWindow] = s
	r.n++
}

// point returns the resume point of the window; ok is false when it is empty.
func (r *seqRing) point() (p ResumePoint, ok bool) {
	if r.n == 0 {
		return ResumePoint{}, false
	}
	k := min(r.n, resumeWindow)
	ordered := make([]span, 0, k)
	for i := r.n - k; i < r.n; i++ {
		ordered = append(ordered, r.spans[i%resumeWindow])
	}
	// The last publisher session starts after the last entry far below the
	// highest sequence before it (as SplitSessions decides).
	from, high := 0, uint64(0)
	for i, s := range ordered {
		if i > 0 && s.last+SessionReorder < high {
			from, high = i, 0
		}
		high = max(high, s.last)
	}
	for _, s := range ordered {
		p.High = max(p.High, s.last)
	}
	if high != p.High {
		return p, true // the highest sequence is an older session's: no holes to tell
	}
	session := slices.Clone(ordered[from:])
	slices.SortFunc(session, func(a, b span) int { return cmp.Compare(a.first, b.first) })
	next := session[0].first // the lowest sequence accounted for in the session
	if p.High > resumeWindow {
		next = max(next, p.High-resumeWindow)
	}
	for _, s := range session {
		for seq := next; seq < s.first; seq++ {
			p.Missing = append(p.Missing, seq)
		}
		if s.last == math.MaxUint64 {
			break
		}
		next = max(next, s.last+1)
	}
	return p, true
}
