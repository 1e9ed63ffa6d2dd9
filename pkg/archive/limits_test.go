package archive

import (
	"math"
	"reflect"
	"testing"

	"github.com/every-channel/ec-node/pkg/record"
)

// TestGroupsOverTheRecordFormatAreTooLargeGaps: a group the record format
// could not carry (more than record.MaxFrames frames, or a header encoding
// over record.MaxHeaderLine: 65,536 frames each with a 19-digit timestamp)
// becomes a too-large gap, and the track goes on; the most frames a header
// holds are archived.
func TestGroupsOverTheRecordFormatAreTooLargeGaps(t *testing.T) {
	relay := newFakeRelay("video0.m4s")
	v := relay.tracks["video0.m4s"]
	v <- fakeGroup{seq: 0, frames: make([][]byte, record.MaxFrames)}
	v <- fakeGroup{seq: 1, frames: make([][]byte, record.MaxFrames+1)}
	v <- fakeGroup{seq: 2, frames: make([][]byte, record.MaxFrames), timestamp: math.MaxInt64}
	v <- fakeGroup{seq: 3, frames: [][]byte{[]byte("a")}, timestamp: math.MaxInt64}
	got := runFake(t, relay, Config{}, func(hs []record.Header) bool { return len(hs) >= 4 })
	want := []string{"video0.m4s:0", "video0.m4s:gap:1-1:too-large", "video0.m4s:gap:2-2:too-large", "video0.m4s:3"}
	if !reflect.DeepEqual(summary(got), want) {
		t.Errorf("records = %q\nwant      %q", summary(got), want)
	}
}
