package archive

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
)

// syncBuffer is a bytes.Buffer safe for the worker's writer and the test's reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []record.Header {
	s.mu.Lock()
	data := append([]byte(nil), s.b.Bytes()...)
	s.mu.Unlock()
	r, err := record.NewReader(bytes.NewReader(data), record.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var hs []record.Header
	for {
		h, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			return hs
		}
		if err != nil {
			t.Fatalf("record stream: %v", err)
		}
		if _, err := io.Copy(io.Discard, payload); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

// runFake runs Follow against relay until stop reports true, then stops it.
func runFake(t *testing.T, relay *fakeRelay, cfg Config, stop func([]record.Header) bool) []record.Header {
	t.Helper()
	old := dialSession
	dialSession = relay.dial
	t.Cleanup(func() { dialSession = old })

	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg.RelayURL = "https://relay.test/anon"
	cfg.Broadcast = "bbb"
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	go func() { done <- Follow(ctx, cfg, NewRecordSink(&out)) }()
	deadline := time.After(10 * time.Second)
	for !stop(out.records(t)) {
		select {
		case <-deadline:
			cancel()
			t.Fatalf("timed out; records so far: %+v", out.records(t))
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	return out.records(t)
}

// summary renders records compactly, "track:group" or "track:gap:first-last:reason",
// ordered by track and sequence: groups are received concurrently, so the
// stream's order is not defined across groups.
func summary(hs []record.Header) []string {
	hs = slices.Clone(hs)
	seq := func(h record.Header) uint64 {
		if h.Kind == record.KindGap {
			return h.First
		}
		return h.Group
	}
	slices.SortStableFunc(hs, func(a, b record.Header) int {
		return cmp.Or(strings.Compare(a.Track, b.Track), cmp.Compare(seq(a), seq(b)))
	})
	var s []string
	for _, h := range hs {
		if h.Kind == record.KindGap {
			s = append(s, h.Track+":gap:"+itoa(h.First)+"-"+itoa(h.Last)+":"+h.Reason)
		} else {
			s = append(s, h.Track+":"+itoa(h.Group))
		}
	}
	return s
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func count(hs []record.Header, track string) int {
	n := 0
	for _, h := range hs {
		if h.Track == track {
			n++
		}
	}
	return n
}

func TestFollowDefaultTracksWithLostGroups(t *testing.T) {
	relay := newFakeRelay("video0.m4s") // no catalog.json, no init.mp4, no audio0.m4s
	v := relay.tracks["video0.m4s"]
	for seq := uint64(0); seq < 8; seq++ {
		v <- fakeGroup{seq: seq, frames: [][]byte{[]byte("moof"), []byte("mdat")}, reset: seq == 5, huge: seq == 6}
	}
	got := runFake(t, relay, Config{}, func(hs []record.Header) bool { return len(hs) >= 8 })
	want := []string{"video0.m4s:0", "video0.m4s:1", "video0.m4s:2", "video0.m4s:3", "video0.m4s:4",
		"video0.m4s:gap:5-5:reset", "video0.m4s:gap:6-6:too-large", "video0.m4s:7"}
	if !reflect.DeepEqual(summary(got), want) {
		t.Errorf("records = %q\nwant      %q", summary(got), want)
	}
	for _, h := range got {
		if h.Kind == record.KindGroup && (h.Size != 8 || !reflect.DeepEqual(h.Frames, []int64{4, 4})) {
			t.Errorf("group %d: size %d frames %v, want 8 [4 4]", h.Group, h.Size, h.Frames)
		}
	}
}

func TestFollowReconnectRecordsGap(t *testing.T) {
	relay := newFakeRelay("video0.m4s")
	v := relay.tracks["video0.m4s"]
	for seq := uint64(10); seq < 13; seq++ {
		v <- fakeGroup{seq: seq, frames: [][]byte{{byte(seq)}}}
	}
	dropped := false
	got := runFake(t, relay, Config{Tracks: []string{"video0.m4s"}}, func(hs []record.Header) bool {
		if len(hs) == 3 && !dropped {
			dropped = true
			relay.drop()
			for seq := uint64(16); seq < 18; seq++ {
				v <- fakeGroup{seq: seq, frames: [][]byte{{byte(seq)}}}
			}
		}
		return len(hs) >= 6
	})
	want := []string{"video0.m4s:10", "video0.m4s:11", "video0.m4s:12",
		"video0.m4s:gap:13-15:disconnected", "video0.m4s:16", "video0.m4s:17"}
	if !reflect.DeepEqual(summary(got), want) {
		t.Errorf("records = %q\nwant      %q", summary(got), want)
	}
	if relay.sessions < 2 {
		t.Errorf("sessions = %d, want a reconnect", relay.sessions)
	}
}

func TestFollowCatalogTracks(t *testing.T) {
	relay := newFakeRelay("catalog.json", "0.m4s", "1.m4s", "video0.m4s")
	relay.tracks["catalog.json"] <- fakeGroup{seq: 0, frames: [][]byte{[]byte(
		`{"video":{"renditions":{"0.m4s":{"codec":"avc1"}}},"audio":{"renditions":{"1.m4s":{"codec":"mp4a.40.2"}}}}`)}}
	relay.tracks["0.m4s"] <- fakeGroup{seq: 3, frames: [][]byte{[]byte("v")}}
	relay.tracks["1.m4s"] <- fakeGroup{seq: 9, frames: [][]byte{[]byte("a")}}
	relay.tracks["video0.m4s"] <- fakeGroup{seq: 1, frames: [][]byte{[]byte("not in the catalog")}}
	got := runFake(t, relay, Config{}, func(hs []record.Header) bool {
		return count(hs, "0.m4s") == 1 && count(hs, "1.m4s") == 1 && count(hs, "catalog.json") == 1
	})
	if n := count(got, "video0.m4s"); n != 0 {
		t.Errorf("archived %d groups of a track the catalog does not name", n)
	}
}

func TestFollowReconnectsWhenStalled(t *testing.T) {
	relay := newFakeRelay("video0.m4s")
	relay.tracks["video0.m4s"] <- fakeGroup{seq: 1, frames: [][]byte{{1}}}
	// Nothing more arrives: the session looks alive but is silent.
	runFake(t, relay, Config{Tracks: []string{"video0.m4s"}, StallTimeout: 50 * time.Millisecond},
		func(hs []record.Header) bool {
			relay.mu.Lock()
			defer relay.mu.Unlock()
			return relay.sessions >= 3
		})
}

// TestFollowSaysWhyItReconnects: a subscription that fails, and the stall
// that then ends the session, are both logged with their reason (aiomoqt as a
// server granted no request ids, and the archiver said nothing for 30 s, then
// "session ended; reconnecting err=<nil>").
func TestFollowSaysWhyItReconnects(t *testing.T) {
	relay := newFakeRelay("video0.m4s")
	relay.subscribeErr = errors.New("the relay allows no more requests (MAX_REQUEST_ID 0)")
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	runFake(t, relay, Config{Tracks: []string{"video0.m4s"}, StallTimeout: 50 * time.Millisecond, Logger: logger},
		func([]record.Header) bool {
			relay.mu.Lock()
			defer relay.mu.Unlock()
			return relay.sessions >= 2
		})
	logs.mu.Lock()
	text := logs.b.String()
	logs.mu.Unlock()
	for _, want := range []string{
		`msg="track subscription ended" broadcast=bbb relay=https://relay.test/anon track=video0.m4s err="the relay allows no more requests (MAX_REQUEST_ID 0)"`,
		`msg="session ended; reconnecting" broadcast=bbb relay=https://relay.test/anon err="no group received for`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %s\n%s", want, text)
		}
	}
}

func TestFollowRetriesMissingExplicitTrack(t *testing.T) {
	old := retryMissingEvery
	retryMissingEvery = 20 * time.Millisecond
	t.Cleanup(func() { retryMissingEvery = old })
	relay := newFakeRelay("video0.m4s")
	relay.tracks["video0.m4s"] <- fakeGroup{seq: 1, frames: [][]byte{{1}}}
	added := false
	runFake(t, relay, Config{Tracks: []string{"video0.m4s", "late.m4s"}}, func(hs []record.Header) bool {
		if len(hs) == 1 && !added {
			// The track appears on the relay after the first attempt failed.
			added = true
			relay.mu.Lock()
			relay.tracks["late.m4s"] = make(chan fakeGroup, 1)
			relay.tracks["late.m4s"] <- fakeGroup{seq: 7, frames: [][]byte{{7}}}
			relay.mu.Unlock()
		}
		return count(hs, "late.m4s") == 1
	})
	if relay.sessions != 1 {
		t.Errorf("sessions = %d: the missing track should be retried within the session", relay.sessions)
	}
}

// TestFollowRefusesBadRelayURL: the worker applies the one relay URL check
// (discover.ValidateRelayURL) and calls a failure a configuration error.
func TestFollowRefusesBadRelayURL(t *testing.T) {
	for _, url := range []string{"http://relay.test/anon", "https://relay.test:0/anon", "https://relay.test/a/../b", "not a url"} {
		err := Follow(context.Background(), Config{RelayURL: url, Broadcast: "bbb"}, NewRecordSink(io.Discard))
		if !errors.Is(err, ErrConfig) {
			t.Errorf("Follow with relay %q: %v, want ErrConfig", url, err)
		}
	}
}

// stalledSink holds every commit until release is closed, as a store that
// stops answering does; commits receives one value per commit waiting.
type stalledSink struct {
	*RecordSink
	release chan struct{}
	commits chan struct{}
}

func (s *stalledSink) BeginGroup(ctx context.Context, h record.Header) (GroupWriter, error) {
	gw, err := s.RecordSink.BeginGroup(ctx, h)
	return stalledGroup{gw, s}, err
}

type stalledGroup struct {
	GroupWriter
	s *stalledSink
}

func (g stalledGroup) Commit(h record.Header) (Stored, error) {
	g.s.commits <- struct{}{}
	<-g.s.release
	return g.GroupWriter.Commit(h)
}

// stopWhileStalled runs Follow against dial into a stalledSink, waits for
// commits commits to wait and for taken to report that the worker took the
// next group, stops the worker while the commits still wait, then lets them
// finish. It returns the records, summarised.
func stopWhileStalled(t *testing.T, dial func(context.Context, string, moq.DialOptions) (moq.Session, error), cfg Config, resume func(string, string) (manifest.ResumePoint, bool, error), commits int, taken func() bool) []string {
	t.Helper()
	old := dialSession
	dialSession = dial
	t.Cleanup(func() { dialSession = old })
	var out syncBuffer
	sink := &stalledSink{RecordSink: NewRecordSink(&out), release: make(chan struct{}), commits: make(chan struct{}, 64)}
	sink.Resume = resume
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg.RelayURL, cfg.Broadcast = "https://relay.test/anon", "bbb"
	go func() { done <- Follow(ctx, cfg, sink) }()
	for range commits {
		<-sink.commits
	}
	for !taken() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	// The worker sees the cancellation with no slot free. (On a machine too
	// slow to, it takes a slot after the release and receives the group:
	// accounted for as well, and the callers accept it.)
	time.Sleep(20 * time.Millisecond)
	close(sink.release)
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	return summary(out.records(t))
}

// TestFollowAccountsForGroupsHeldAtShutdown stops a worker whose store has
// stopped answering, with groupsInFlight groups committing and the next one
// opened and waiting for a slot: that one, too, must end up a gap, not
// vanish (seen with the real relay and a restarting S3 server).
func TestFollowAccountsForGroupsHeldAtShutdown(t *testing.T) {
	relay := newFakeRelay("video0.m4s")
	v := relay.tracks["video0.m4s"]
	const groups = groupsInFlight + 3
	for seq := uint64(0); seq < groups; seq++ {
		v <- fakeGroup{seq: seq, frames: [][]byte{{byte(seq)}}}
	}
	got := stopWhileStalled(t, relay.dial, Config{Tracks: []string{"video0.m4s"}}, nil, groupsInFlight,
		func() bool { return len(v) == groups-groupsInFlight-1 })
	var want []string
	for seq := range uint64(groupsInFlight) {
		want = append(want, "video0.m4s:"+itoa(seq))
	}
	held := itoa(groupsInFlight)
	lost := append(slices.Clone(want), "video0.m4s:gap:"+held+"-"+held+":disconnected")
	archived := append(want, "video0.m4s:"+held)
	if !reflect.DeepEqual(got, lost) && !reflect.DeepEqual(got, archived) {
		t.Errorf("records = %q\nwant      %q", got, lost)
	}
}
