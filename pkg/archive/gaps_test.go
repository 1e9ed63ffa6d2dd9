package archive

import (
	"reflect"
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// step is one event fed to a gapTracker: a subscription start, an opened group,
// or the end of a subscription, with the gaps it must produce.
type step struct {
	subscribe bool
	open      int64 // -1: none
	end       bool
	want      []seqRange
}

func TestGapTracker(t *testing.T) {
	dis, skip := record.GapDisconnected, record.GapSkipped
	tests := []struct {
		name   string
		resume int64 // -1: nothing in the manifest
		// missing: the groups below resume that the manifest does not account
		// for (in flight at a crash).
		missing []uint64
		steps   []step
	}{
		{"contiguous", -1, nil, []step{{subscribe: true, open: 5}, {open: 6}, {open: 7}, {end: true, open: -1}}},
		{"reordered within window", -1, nil, []step{{subscribe: true, open: 1}, {open: 3}, {open: 2}, {open: 4}, {end: true, open: -1}}},
		{"skip declared once out of window", -1, nil, []step{
			{subscribe: true, open: 1}, {open: 3}, {open: 4}, {open: 5}, {open: 6},
			{open: 7, want: []seqRange{{2, 2, skip}}}, {open: 8}, {end: true, open: -1},
		}},
		{"missing at end of subscription", -1, nil, []step{
			{subscribe: true, open: 1}, {open: 4}, {end: true, open: -1, want: []seqRange{{2, 3, skip}}},
		}},
		{"reconnect jump is a disconnected gap", -1, nil, []step{
			{subscribe: true, open: 10}, {open: 11}, {end: true, open: -1},
			{subscribe: true, open: 15, want: []seqRange{{12, 14, dis}}}, {open: 16},
		}},
		{"reconnect to the cached latest group is no gap", -1, nil, []step{
			{subscribe: true, open: 10}, {end: true, open: -1}, {subscribe: true, open: 10}, {open: 11},
		}},
		{"resume from manifest", 41, nil, []step{{subscribe: true, open: 45, want: []seqRange{{42, 44, dis}}}}},
		{"publisher restart starts a new epoch", 900, nil, []step{{subscribe: true, open: 0}, {open: 1}, {open: 3}, {end: true, open: -1, want: []seqRange{{2, 2, skip}}}}},
		{"new epoch joined late misses its first groups", 13, nil, []step{
			{subscribe: true, open: 5, want: []seqRange{{0, 4, dis}}}, {open: 6}, {end: true, open: -1},
		}},
		{"groups in flight at a crash are back-filled", 41, []uint64{39, 40}, []step{
			{subscribe: true, open: 42, want: []seqRange{{39, 40, dis}}}, {open: 43},
		}},
		{"groups in flight at a crash, then a gap", 41, []uint64{40}, []step{
			{subscribe: true, open: 45, want: []seqRange{{40, 40, dis}, {42, 44, dis}}},
		}},
		{"a restarted publisher: the old epoch's groups in flight are gone", 900, []uint64{899}, []step{
			{subscribe: true, open: 0, want: []seqRange{{899, 899, record.GapExpired}}}, {open: 1},
		}},
		{"huge jump declared at once", -1, nil, []step{
			{subscribe: true, open: 0}, {open: 1000, want: []seqRange{{1, 999, skip}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newGapTracker()
			if tt.resume >= 0 {
				tr.resume(manifest.ResumePoint{High: uint64(tt.resume), Missing: tt.missing})
			}
			for i, s := range tt.steps {
				var got []seqRange
				if s.subscribe {
					tr.subscribed()
				}
				if s.open >= 0 {
					got = append(got, tr.opened(uint64(s.open))...)
				}
				if s.end {
					got = append(got, tr.ended()...)
				}
				if !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d (%+v): gaps = %v, want %v", i, s, got, s.want)
				}
			}
		})
	}
}

func TestGapTrackerResumeAt(t *testing.T) {
	tests := []struct {
		name        string
		high, start uint64
		missing     []uint64
		want        []seqRange
		next        uint64 // the group after start, which must be no gap
	}{
		{"the cache starts after the resume point", 10, 14, nil, []seqRange{{11, 13, record.GapExpired}}, 15},
		{"the cache starts right after it", 10, 11, nil, nil, 12},
		{"overlap with archived groups", 40, 12, nil, nil, 13},
		{"a restarted publisher from 0", 40, 0, nil, nil, 1},
		{"groups in flight at a crash, one no longer cached", 10, 9, []uint64{7, 9}, []seqRange{{7, 7, record.GapExpired}}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newGapTracker()
			tr.resume(manifest.ResumePoint{High: tt.high, Missing: tt.missing})
			tr.subscribed()
			if got := tr.resumeAt(tt.start); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("resumeAt(%d) = %v, want %v", tt.start, got, tt.want)
			}
			for _, seq := range []uint64{tt.start, tt.next} {
				if got := tr.opened(seq); got != nil {
					t.Errorf("opened(%d) = %v, want no gap", seq, got)
				}
			}
			if got := tr.ended(); got != nil {
				t.Errorf("ended() = %v, want no gap", got)
			}
		})
	}
}
