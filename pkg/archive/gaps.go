package archive

import (
	"cmp"
	"slices"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// seqRange is an inclusive range of group sequences that was not archived.
type seqRange struct {
	first, last uint64
	reason      string
}

// Limits of the gap tracker.
const (
	// reorderWindow is how far a track's sequence may run ahead of a missing group
	// before the group is declared skipped. Group streams are independent QUIC
	// streams, so a later group can open before an earlier one.
	reorderWindow = 4
	// maxMissing bounds the groups remembered as possibly late; a larger jump is
	// declared a gap at once.
	maxMissing = 256
)

// gapTracker follows the group sequences of one track across subscriptions and
// decides which ranges were missed. It is not safe for concurrent use.
//
// It sees each group when its stream opens (opened); a group that opens but is
// not stored is reported by its handler as a gap of its own. The tracker
// covers the groups that never opened: jumps within a subscription ("skipped")
// and the groups that passed while no subscription was active ("disconnected",
// which the caller first tries to back-fill from the relay's cache).
type gapTracker struct {
	known    bool   // high is meaningful
	high     uint64 // highest sequence opened, or resumed from the manifest
	fresh    bool   // the next opened group is the first of a new subscription
	missing  map[uint64]struct{}
	restarts int  // times the publisher's sequence went backwards (a new epoch)
	holding  bool // catching up from the relay's cache: groups arrive in any order
}

func newGapTracker() *gapTracker {
	return &gapTracker{missing: map[uint64]struct{}{}}
}

// resume seeds the tracker with where the manifest leaves off: its highest
// sequence, and the groups below it that were in flight when the archiver
// stopped, which the next subscription takes or records as gaps.
func (t *gapTracker) resume(p manifest.ResumePoint) {
	t.known, t.high = true, p.High
	for _, seq := range p.Missing {
		t.missing[seq] = struct{}{}
	}
}

// await adds seq to the groups awaited: one lost in flight that a subscription
// from the relay's cache serves again.
func (t *gapTracker) await(seq uint64) { t.missing[seq] = struct{}{} }

// takeMissing returns the groups still awaited, as ranges with reason: at the
// start of a subscription these are the ones resume found in flight.
func (t *gapTracker) takeMissing(reason string) []seqRange {
	gaps := t.expire(true)
	for i := range gaps {
		gaps[i].reason = reason
	}
	return gaps
}

// subscribed marks the start of a new subscription.
func (t *gapTracker) subscribed() { t.fresh = true }

// resumeAt starts a subscription that the relay serves from group start, the
// oldest it still holds within the back-fill age: the groups between the
// resume point and start are gone from its cache. A start at or below the
// resume point is an overlap with groups archived already (they arrive again
// and the manifest drops them as duplicates; a track whose older groups the
// relay does not keep, like catalog.json, sends fewer) or the new sequence of a
// restarted publisher: its groups up to the old high are taken as late ones,
// and none of them is declared missing.
func (t *gapTracker) resumeAt(start uint64) []seqRange {
	t.fresh = false
	t.holding = true
	var gone []seqRange
	for seq := range t.missing {
		if seq < start {
			delete(t.missing, seq)
			gone = append(gone, seqRange{seq, seq, record.GapExpired})
		}
	}
	slices.SortFunc(gone, func(a, b seqRange) int { return cmp.Compare(a.first, b.first) })
	if !t.known || start <= t.high+1 {
		return gone
	}
	gap := seqRange{t.high + 1, start - 1, record.GapExpired}
	t.high = start - 1
	return append(gone, gap)
}

// opened records that group seq arrived and returns the ranges now known missing.
func (t *gapTracker) opened(seq uint64) []seqRange {
	fresh := t.fresh
	t.fresh = false
	switch {
	case !t.known:
		t.known, t.high = true, seq
		return nil
	case fresh && seq > t.high+1:
		gaps := t.takeMissing(record.GapDisconnected)
		gaps = append(gaps, seqRange{t.high + 1, seq - 1, record.GapDisconnected})
		t.high = seq
		return gaps
	case fresh && seq+reorderWindow < t.high:
		// The publisher started again from a lower sequence: a new epoch, whose
		// groups before seq passed while no subscription was active. The old
		// epoch's groups still awaited are gone with it.
		gaps := t.takeMissing(record.GapExpired)
		t.restarts++
		t.high = seq
		if seq == 0 {
			return gaps
		}
		return append(gaps, seqRange{0, seq - 1, record.GapDisconnected})
	case fresh:
		delete(t.missing, seq)
		t.high = max(t.high, seq)
		return t.takeMissing(record.GapDisconnected)
	case seq > t.high:
		delete(t.missing, seq) // awaited
		var gaps []seqRange
		if seq-t.high-1 > maxMissing {
			gaps = append(gaps, seqRange{t.high + 1, seq - 1, record.GapSkipped})
		} else {
			for s := t.high + 1; s < seq; s++ {
				t.missing[s] = struct{}{}
			}
		}
		t.high = seq
		return append(gaps, t.expire(false)...)
	default:
		delete(t.missing, seq) // a late group
		return nil
	}
}

// release ends the catch-up that resumeAt began: the cached groups, which the
// relay sends all at once on parallel streams, have arrived in whatever order,
// and the reorder window applies again.
func (t *gapTracker) release() []seqRange {
	t.holding = false
	return t.expire(false)
}

// ended closes a subscription: the groups still awaited will not come.
func (t *gapTracker) ended() []seqRange {
	t.holding = false
	return t.expire(true)
}

// expire declares missing groups that fell out of the reorder window (or all of
// them), merged into ranges.
func (t *gapTracker) expire(all bool) []seqRange {
	if t.holding && !all {
		return nil
	}
	var seqs []uint64
	for s := range t.missing {
		if all || s+reorderWindow < t.high {
			seqs = append(seqs, s)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	slices.Sort(seqs)
	var gaps []seqRange
	for _, s := range seqs {
		delete(t.missing, s)
		if n := len(gaps); n > 0 && gaps[n-1].last+1 == s {
			gaps[n-1].last = s
			continue
		}
		gaps = append(gaps, seqRange{s, s, record.GapSkipped})
	}
	return gaps
}
