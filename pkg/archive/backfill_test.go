package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
)

// cachingRelay is a fakeRelay whose sessions also serve past groups from a
// cache (moq.Backfiller), as moq-relay does within its --cache-duration.
type cachingRelay struct {
	*fakeRelay
	cmu     sync.Mutex
	cache   map[string][]fakeGroup // by track
	ranges  []moq.Range            // every SubscribeRange asked for
	recent  bool                   // SubscribeRecent is supported (lite-06)
	recents int                    // SubscribeRecent calls
}

func newCachingRelay(tracks ...string) *cachingRelay {
	return &cachingRelay{fakeRelay: newFakeRelay(tracks...), cache: map[string][]fakeGroup{}}
}

func (r *cachingRelay) dial(ctx context.Context, url string, opts moq.DialOptions) (moq.Session, error) {
	s, err := r.fakeRelay.dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	return &cachingSession{fakeSession: s.(*fakeSession), relay: r}, nil
}

func (r *cachingRelay) setCache(track string, seqs ...uint64) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	r.cache[track] = nil
	for _, seq := range seqs {
		r.cache[track] = append(r.cache[track], fakeGroup{seq: seq, frames: [][]byte{{byte(seq)}}})
	}
}

type cachingSession struct {
	*fakeSession
	relay *cachingRelay
}

// SubscribeRange serves the cached groups within r, then ends.
func (s *cachingSession) SubscribeRange(ctx context.Context, broadcast, track string, r moq.Range) (moq.Subscription, error) {
	s.relay.cmu.Lock()
	defer s.relay.cmu.Unlock()
	s.relay.ranges = append(s.relay.ranges, r)
	ch := make(chan fakeGroup, len(s.relay.cache[track]))
	for _, g := range s.relay.cache[track] {
		if g.seq >= r.First && g.seq <= r.Last {
			ch <- g
		}
	}
	close(ch)
	return &cachedSubscription{groups: ch}, nil
}

// SubscribeRecent serves the whole cache, then the live groups, like
// moq-relay on lite-06; with recent off it is unsupported, like earlier
// versions.
func (s *cachingSession) SubscribeRecent(ctx context.Context, broadcast, track string, maxAge time.Duration) (moq.Subscription, uint64, error) {
	s.relay.cmu.Lock()
	defer s.relay.cmu.Unlock()
	if !s.relay.recent {
		return nil, 0, errors.ErrUnsupported
	}
	cached := s.relay.cache[track]
	if len(cached) == 0 {
		return nil, 0, errors.New("fake: recent subscription with nothing cached")
	}
	s.relay.recents++
	ch := make(chan fakeGroup, len(cached))
	for _, g := range cached {
		ch <- g
	}
	close(ch)
	live, err := s.Subscribe(ctx, broadcast, track)
	if err != nil {
		return nil, 0, err
	}
	start := cached[0].seq
	for _, g := range cached {
		start = min(start, g.seq)
	}
	return &cachedSubscription{groups: ch, then: live}, start, nil
}

// cachedSubscription serves groups, then ends, or goes on with then.
type cachedSubscription struct {
	groups chan fakeGroup
	then   moq.Subscription
}

func (sub *cachedSubscription) NextGroup(ctx context.Context) (moq.Group, error) {
	select {
	case g, ok := <-sub.groups:
		if !ok {
			if sub.then != nil {
				return sub.then.NextGroup(ctx)
			}
			return nil, io.EOF
		}
		return &fakeGroupStream{g: g}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (sub *cachedSubscription) Close() error { return nil }

func (r *cachingRelay) live(track string, seqs ...uint64) {
	for _, seq := range seqs {
		r.tracks[track] <- fakeGroup{seq: seq, frames: [][]byte{{byte(seq)}}}
	}
}

// runCaching runs Follow against relay with resume (if not nil) answering
// LastGroup, until want records were written.
func runCaching(t *testing.T, relay *cachingRelay, resume func(string, string) (manifest.ResumePoint, bool, error), want int, then func([]record.Header)) []string {
	t.Helper()
	return summary(runCachingRaw(t, relay, resume, want, then))
}

// runCachingRaw is runCaching returning the records in the order written.
func runCachingRaw(t *testing.T, relay *cachingRelay, resume func(string, string) (manifest.ResumePoint, bool, error), want int, then func([]record.Header)) []record.Header {
	t.Helper()
	old := dialSession
	dialSession = relay.dial
	t.Cleanup(func() { dialSession = old })
	var out syncBuffer
	sink := NewRecordSink(&out)
	sink.Resume = resume
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := Config{RelayURL: "https://relay.test/anon", Broadcast: "bbb", Tracks: []string{"video0.m4s"}}
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	go func() { done <- Follow(ctx, cfg, sink) }()
	waitRecords(t, &out, want, then)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	return out.records(t)
}

func waitRecords(t *testing.T, out *syncBuffer, want int, then func([]record.Header)) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		hs := out.records(t)
		if then != nil {
			then(hs)
		}
		if len(hs) >= want {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("timed out; records so far: %q", summary(hs))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// lastGroup resumes after seq; missing are the groups below it that the
// manifest does not account for (in flight at a crash).
func lastGroup(seq uint64, missing ...uint64) func(string, string) (manifest.ResumePoint, bool, error) {
	return func(string, string) (manifest.ResumePoint, bool, error) {
		return manifest.ResumePoint{High: seq, Missing: missing}, true, nil
	}
}

// TestBackfill runs each case against a relay that serves a subscription from
// its cache (moq-lite-06: SubscribeRecent) and one that only serves ranges
// beside the live subscription (earlier versions).
func TestBackfill(t *testing.T) {
	for _, recent := range []bool{false, true} {
		t.Run(fmt.Sprintf("recent=%v", recent), func(t *testing.T) { testBackfill(t, recent) })
	}
}

func testBackfill(t *testing.T, recent bool) {
	const v = "video0.m4s"
	newCachingRelay := func(tracks ...string) *cachingRelay {
		r := newCachingRelay(tracks...)
		r.recent = recent
		return r
	}
	t.Run("reconnect takes the cached groups; evicted ones are expired gaps", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.live(v, 10, 11, 12)
		relay.setCache(v, 14, 15) // 13 was evicted
		dropped := false
		got := runCaching(t, relay, nil, 7, func(hs []record.Header) {
			if len(hs) == 3 && !dropped {
				dropped = true
				relay.drop()
				relay.live(v, 16, 17)
			}
		})
		want := []string{v + ":10", v + ":11", v + ":12", v + ":gap:13-13:expired", v + ":14", v + ":15", v + ":16", v + ":17"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", got, want)
		}
	})
	t.Run("restart resumes after the manifest's last group", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.setCache(v, 12, 13, 14, 15)
		relay.live(v, 16)
		if recent {
			// The cache is served whole: group 12 again, which the manifest drops.
			got := runCaching(t, relay, lastGroup(12), 5, nil)
			want := []string{v + ":12", v + ":13", v + ":14", v + ":15", v + ":16"}
			if !reflect.DeepEqual(got, want) || relay.recents != 1 || len(relay.ranges) != 0 {
				t.Errorf("records = %q (recent subscriptions %d, ranges %+v)\nwant      %q, 1, none", got, relay.recents, relay.ranges, want)
			}
			return
		}
		got := runCaching(t, relay, lastGroup(12), 4, nil)
		want := []string{v + ":13", v + ":14", v + ":15", v + ":16"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", got, want)
		}
		if want := []moq.Range{{First: 13, Last: 15, MaxAge: DefaultBackfillMaxAge}}; !reflect.DeepEqual(relay.ranges, want) {
			t.Errorf("ranges asked = %+v, want %+v", relay.ranges, want)
		}
	})
	if recent {
		t.Run("a group lost in flight that the cache does not serve again is a gap", func(t *testing.T) {
			relay := newCachingRelay(v)
			relay.live(v, 10)
			relay.tracks[v] <- fakeGroup{seq: 11, frames: [][]byte{{11}}, broken: true}
			relay.live(v, 12, 13)
			dropped := false
			got := runCaching(t, relay, nil, 8, func(hs []record.Header) {
				if len(hs) == 3 && !dropped {
					dropped = true
					relay.setCache(v, 10, 12, 13, 14) // starts below 11, yet without it
					relay.drop()
					relay.live(v, 15)
				}
			})
			if !slices.Contains(got, v+":gap:11-11:disconnected") {
				t.Errorf("records = %q, want group 11 in a gap record", got)
			}
		})
	}
	t.Run("groups in flight at a crash are taken from the cache", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.setCache(v, 10, 11, 12, 13, 14)
		relay.live(v, 15)
		// The manifest holds ..9, 11, 13: 10 and 12 were in flight.
		raw := runCachingRaw(t, relay, lastGroup(13, 10, 12), 4, nil)
		var got []string
		for _, s := range summary(raw) {
			if s != v+":11" && s != v+":13" { // served again by a whole-cache catch-up; the manifest drops them
				got = append(got, s)
			}
		}
		want := []string{v + ":10", v + ":12", v + ":14", v + ":15"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", summary(raw), want)
		}
	})
	t.Run("groups in flight at a crash, no longer cached, are expired gaps", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.setCache(v, 13, 14)
		relay.live(v, 15)
		got := runCaching(t, relay, lastGroup(13, 10), 3, nil)
		if !slices.Contains(got, v+":gap:10-10:expired") || !slices.Contains(got, v+":15") {
			t.Errorf("records = %q, want a gap 10-10 expired and group 15", got)
		}
	})
	t.Run("the cached groups arrive in any order", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.setCache(v, 19, 13, 14, 15, 16, 17, 18) // parallel streams: the newest first
		relay.live(v, 20)
		raw := runCachingRaw(t, relay, lastGroup(12), 8, nil)
		want := []string{v + ":13", v + ":14", v + ":15", v + ":16", v + ":17", v + ":18", v + ":19", v + ":20"}
		if got := summary(raw); !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", got, want)
		}
		// From the cache they are written in sequence order, as published, so
		// that no publisher session is split (manifest.SplitSessions).
		if recent && !slices.IsSortedFunc(raw, func(a, b record.Header) int { return cmp.Compare(a.Group, b.Group) }) {
			t.Errorf("records written out of order: %+v", raw)
		}
	})
	t.Run("restarted publisher, restarted archiver: its new groups are taken from 0", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.setCache(v, 0, 1, 2) // the publisher's new sequence
		relay.live(v, 3)
		got := runCaching(t, relay, lastGroup(13), 4, nil) // the manifest holds 1..13
		want := []string{v + ":0", v + ":1", v + ":2", v + ":3"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", got, want)
		}
	})
	t.Run("restarted publisher, archiver stayed up", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.live(v, 12, 13)
		dropped := false
		got := runCaching(t, relay, nil, 5, func(hs []record.Header) {
			if len(hs) == 2 && !dropped {
				dropped = true
				relay.setCache(v, 0, 1)
				relay.drop()
				relay.live(v, 2)
			}
		})
		want := []string{v + ":0", v + ":1", v + ":2", v + ":12", v + ":13"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", got, want)
		}
	})
	t.Run("a group lost in flight is taken again after the reconnect", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.live(v, 10)
		relay.tracks[v] <- fakeGroup{seq: 11, frames: [][]byte{{11}}, broken: true}
		relay.setCache(v, 11, 12)
		dropped := false
		got := runCaching(t, relay, nil, 4, func(hs []record.Header) {
			if len(hs) == 1 && !dropped {
				time.Sleep(20 * time.Millisecond) // group 11 breaks meanwhile
				dropped = true
				relay.drop()
				relay.live(v, 13)
			}
		})
		want := []string{v + ":10", v + ":11", v + ":12", v + ":13"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", got, want)
		}
	})
	t.Run("a group lost in flight is a gap when the worker stops", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.live(v, 10)
		relay.tracks[v] <- fakeGroup{seq: 11, frames: [][]byte{{11}}, broken: true}
		got := runCaching(t, relay, nil, 1, func([]record.Header) { time.Sleep(20 * time.Millisecond) })
		want := []string{v + ":10", v + ":gap:11-11:disconnected"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("records = %q\nwant      %q", got, want)
		}
	})
	t.Run("a track never archived starts at the latest group", func(t *testing.T) {
		relay := newCachingRelay(v)
		relay.setCache(v, 3, 4)
		relay.live(v, 5)
		got := runCaching(t, relay, nil, 1, nil)
		if want := []string{v + ":5"}; !reflect.DeepEqual(got, want) || len(relay.ranges) != 0 || relay.recents != 0 {
			t.Errorf("records = %q (back-fills %+v, %d from the cache), want %q and none", got, relay.ranges, relay.recents, want)
		}
	})
}

func TestMissingRanges(t *testing.T) {
	got := missingRanges(seqRange{first: 3, last: 9}, map[uint64]bool{5: true, 8: true}, record.GapExpired)
	want := []seqRange{{3, 4, record.GapExpired}, {6, 7, record.GapExpired}, {9, 9, record.GapExpired}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("missingRanges = %v, want %v", got, want)
	}
}

// TestBackfillAccountsForGroupsHeldAtShutdown stops a worker while a
// back-fill's commits wait on a store that stopped answering and the range's
// next group waits for a slot: the groups of the range not received are gaps.
func TestBackfillAccountsForGroupsHeldAtShutdown(t *testing.T) {
	const v = "video0.m4s"
	relay := newCachingRelay(v)
	var cached []uint64
	for seq := uint64(10); seq < 12+groupsInFlight; seq++ {
		cached = append(cached, seq)
	}
	relay.setCache(v, cached...)
	relay.live(v, 30)
	// The live group 30 and groupsInFlight of the range wait, then the range's
	// next one is taken; nothing shows that, so give it a moment.
	start := time.Now()
	got := stopWhileStalled(t, relay.dial, Config{Tracks: []string{v}}, lastGroup(9), 1+groupsInFlight,
		func() bool { return time.Since(start) > 20*time.Millisecond })
	// The range asked for is 10..29, the cache holds 10..11+groupsInFlight.
	held, next := itoa(10+groupsInFlight), itoa(11+groupsInFlight)
	var want []string
	for seq := uint64(10); seq < 10+groupsInFlight; seq++ {
		want = append(want, v+":"+itoa(seq))
	}
	lost := append(slices.Clone(want), v+":gap:"+held+"-29:disconnected", v+":30")
	archived := append(want, v+":"+held, v+":gap:"+next+"-29:disconnected", v+":30")
	if !reflect.DeepEqual(got, lost) && !reflect.DeepEqual(got, archived) {
		t.Errorf("records = %q\nwant      %q", got, lost)
	}
}
