package archive

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/record"
)

// recordingObserver keeps what a worker reported.
type recordingObserver struct {
	mu                 sync.Mutex
	groups, bytes      map[string]int64  // by track
	gaps               map[string]uint64 // groups by "track reason"
	reconnects         int
	announced, stopped []string
}

func newRecordingObserver() *recordingObserver {
	return &recordingObserver{groups: map[string]int64{}, bytes: map[string]int64{}, gaps: map[string]uint64{}}
}

func (o *recordingObserver) GroupStored(b, track string, size int64, commit time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.groups[track]++
	o.bytes[track] += size
}

func (o *recordingObserver) Gap(b, track, reason string, groups uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gaps[track+" "+reason] += groups
}

func (o *recordingObserver) StoreFailed(b, track string) {}

func (o *recordingObserver) Reconnected(b string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reconnects++
}

func (o *recordingObserver) Announced(b string, yes bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.announced = append(o.announced, b+map[bool]string{true: " on", false: " off"}[yes])
}

func (o *recordingObserver) Stopped(b string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopped = append(o.stopped, b)
}

// TestObserverSeesWhatIsRecorded: the Observer is told of exactly the groups
// and gaps the sink receives, of the reconnect and the announcements, and of
// the worker's end.
func TestObserverSeesWhatIsRecorded(t *testing.T) {
	relay := newFakeRelay("video0.m4s")
	v := relay.tracks["video0.m4s"]
	for seq := uint64(10); seq < 13; seq++ {
		v <- fakeGroup{seq: seq, frames: [][]byte{[]byte("abc")}}
	}
	obs := newRecordingObserver()
	dropped := false
	got := runFake(t, relay, Config{Tracks: []string{"video0.m4s"}, Observer: obs}, func(hs []record.Header) bool {
		if len(hs) == 3 && !dropped {
			dropped = true
			relay.drop()
			v <- fakeGroup{seq: 16, frames: [][]byte{[]byte("de")}}
		}
		return len(hs) >= 5
	})
	want := []string{"video0.m4s:10", "video0.m4s:11", "video0.m4s:12", "video0.m4s:gap:13-15:disconnected", "video0.m4s:16"}
	if !reflect.DeepEqual(summary(got), want) {
		t.Fatalf("records = %q, want %q", summary(got), want)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.groups["video0.m4s"] != 4 || obs.bytes["video0.m4s"] != 3*3+2 {
		t.Errorf("observed %d groups, %d bytes; want 4, 11", obs.groups["video0.m4s"], obs.bytes["video0.m4s"])
	}
	if !reflect.DeepEqual(obs.gaps, map[string]uint64{"video0.m4s disconnected": 3}) {
		t.Errorf("observed gaps %v, want 3 disconnected groups", obs.gaps)
	}
	if obs.reconnects != 1 {
		t.Errorf("observed %d reconnects, want 1", obs.reconnects)
	}
	if !reflect.DeepEqual(obs.announced, []string{"bbb on", "bbb on"}) {
		t.Errorf("observed announcements %q, want one per session", obs.announced)
	}
	if !reflect.DeepEqual(obs.stopped, []string{"bbb"}) {
		t.Errorf("observed stops %q, want one", obs.stopped)
	}
}
