package archive

import (
	"testing"

	"github.com/every-channel/ec-node/pkg/record"
)

// A broadcast without catalog.json but with an MSF catalog track: the worker
// archives the catalog's groups and the tracks it names in the broadcast's
// namespace, and nothing else (not the fallback tracks).
func TestFollowMSFCatalogTracks(t *testing.T) {
	relay := newFakeRelay("catalog", "video", "audio", "elsewhere", "video0.m4s")
	relay.tracks["catalog"] <- fakeGroup{seq: 0, frames: [][]byte{[]byte(`{"version":1,"tracks":[
		{"name":"video","packaging":"loc","role":"video"},
		{"name":"audio","packaging":"loc","role":"audio","namespace":"bbb"},
		{"name":"elsewhere","namespace":"other/broadcast"}]}`),
		[]byte(`{"version":1,"deltaUpdate":true,"removeTracks":[{"name":"audio"}]}`)}}
	relay.tracks["video"] <- fakeGroup{seq: 3, frames: [][]byte{[]byte("v")}}
	relay.tracks["audio"] <- fakeGroup{seq: 9, frames: [][]byte{[]byte("a")}}
	relay.tracks["elsewhere"] <- fakeGroup{seq: 1, frames: [][]byte{[]byte("x")}}
	relay.tracks["video0.m4s"] <- fakeGroup{seq: 1, frames: [][]byte{[]byte("fallback")}}
	got := runFake(t, relay, Config{}, func(hs []record.Header) bool {
		return count(hs, "video") == 1 && count(hs, "audio") == 1 && count(hs, "catalog") == 1
	})
	for _, track := range []string{"elsewhere", "video0.m4s"} {
		if n := count(got, track); n != 0 {
			t.Errorf("archived %d groups of %s, which the MSF catalog does not name", n, track)
		}
	}
	for _, h := range got {
		if h.Track == "catalog" && len(h.Frames) != 2 {
			t.Errorf("catalog group archived with %d frames, want both objects", len(h.Frames))
		}
	}
}

// catalog.json is preferred: with both catalogs, the MSF one is not read.
func TestFollowPrefersHangCatalog(t *testing.T) {
	relay := newFakeRelay("catalog.json", "catalog", "0.m4s", "video")
	relay.tracks["catalog.json"] <- fakeGroup{seq: 0, frames: [][]byte{[]byte(`{"video":{"renditions":{"0.m4s":{}}}}`)}}
	relay.tracks["catalog"] <- fakeGroup{seq: 0, frames: [][]byte{[]byte(`{"version":1,"tracks":[{"name":"video"}]}`)}}
	relay.tracks["0.m4s"] <- fakeGroup{seq: 3, frames: [][]byte{[]byte("v")}}
	relay.tracks["video"] <- fakeGroup{seq: 3, frames: [][]byte{[]byte("msf")}}
	got := runFake(t, relay, Config{}, func(hs []record.Header) bool {
		return count(hs, "0.m4s") == 1 && count(hs, "catalog.json") == 1
	})
	relay.mu.Lock()
	defer relay.mu.Unlock()
	if n := relay.subs["catalog"]; n != 0 {
		t.Errorf("subscribed to the MSF catalog %d times though catalog.json exists", n)
	}
	if n := count(got, "video"); n != 0 {
		t.Errorf("archived %d groups of a track only the MSF catalog names", n)
	}
}
