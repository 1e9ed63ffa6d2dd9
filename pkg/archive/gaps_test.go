package archive

import (
	"reflect"
	"testing"

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
		steps  []step
	}{
		{"contiguous", -1, []step{{subscribe: true, open: 5}, {open: 6}, {open: 7}, {end: true, open: -1}}},
		{"reordered within window", -1, []step{{subscribe: true, open: 1}, {open: 3}, {open: 2}, {open: 4}, {end: true, open: -1}}},
		{"skip declared once out of window", -1, []step{
			{subscribe: true, open: 1}, {open: 3}, {open: 4}, {open: 5}, {open: 6},
			{open: 7, want: []seqRange{{2, 2, skip}}}, {open: 8}, {end: true, open: -1},
		}},
		{"missing at end of subscription", -1, []step{
			{subscribe: true, open: 1}, {open: 4}, {end: true, open: -1, want: []seqRange{{2, 3, skip}}},
		}},
		{"reconnect jump is a disconnected gap", -1, []step{
			{subscribe: true, open: 10}, {open: 11}, {end: true, open: -1},
			{subscribe: true, open: 15, want: []seqRange{{12, 14, dis}}}, {open: 16},
		}},
		{"reconnect to the cached latest group is no gap", -1, []step{
			{subscribe: true, open: 10}, {end: true, open: -1}, {subscribe: true, open: 10}, {open: 11},
		}},
		{"resume from manifest", 41, []step{{subscribe: true, open: 45, want: []seqRange{{42, 44, dis}}}}},
		{"publisher restart starts a new epoch", 900, []step{{subscribe: true, open: 0}, {open: 1}, {open: 3}, {end: true, open: -1, want: []seqRange{{2, 2, skip}}}}},
		{"new epoch joined late misses its first groups", 13, []step{
			{subscribe: true, open: 5, want: []seqRange{{0, 4, dis}}}, {open: 6}, {end: true, open: -1},
		}},
		{"huge jump declared at once", -1, []step{
			{subscribe: true, open: 0}, {open: 1000, want: []seqRange{{1, 999, skip}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newGapTracker()
			if tt.resume >= 0 {
				tr.resume(uint64(tt.resume))
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
		want        []seqRange
		next        uint64 // the group after start, which must be no gap
	}{
		{"the cache starts after the resume point", 10, 14, []seqRange{{11, 13, record.GapExpired}}, 15},
		{"the cache starts right after it", 10, 11, nil, 12},
		{"overlap with archived groups", 40, 12, nil, 13},
		{"a restarted publisher from 0", 40, 0, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newGapTracker()
			tr.resume(tt.high)
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
