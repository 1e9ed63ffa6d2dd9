package archive

import (
	"slices"

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

// resume seeds the tracker with the last sequence already in the manifest.
func (t *gapTracker) resume(seq uint64) {
	t.known, t.high = true, seq
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
	if !t.known || start <= t.high+1 {
		return nil
	}
	gap := seqRange{t.high + 1, start - 1, record.GapExpired}
	t.high = start - 1
	return []seqRange{gap}
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
		gap := seqRange{t.high + 1, seq - 1, record.GapDisconnected}
		t.high = seq
		return []seqRange{gap}
	case fresh && seq+reorderWindow < t.high:
		// The publisher started again from a lower sequence: a new epoch, whose
		// groups before seq passed while no subscription was active.
		t.restarts++
		t.high = seq
		clear(t.missing)
		if seq == 0 {
			return nil
		}
		return []seqRange{{0, seq - 1, record.GapDisconnected}}
	case seq > t.high:
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
