package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
)

// retryMissingEvery is how often tracks that did not exist are tried again when no
// catalog update will announce them.
var retryMissingEvery = 15 * time.Second

// trackSet runs the subscriptions of one session: the explicit track list, or
// catalog.json and the tracks it names (DefaultTracks when there is none).
type trackSet struct {
	w    *worker
	sess moq.Session

	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]context.CancelFunc
	missing map[string]bool // tracks the relay did not have, not retried until retryMissing
	warned  map[string]bool // missing tracks already logged in this session
	failed  chan error      // store failures end the session

	lastGroup atomic.Int64 // when a group last opened on any track, Unix ns
}

func newTrackSet(w *worker, sess moq.Session) *trackSet {
	return &trackSet{
		w: w, sess: sess,
		running: map[string]context.CancelFunc{},
		missing: map[string]bool{},
		warned:  map[string]bool{},
		failed:  make(chan error, 1),
	}
}

// run subscribes and blocks until ctx ends (nil) or the session must end: a
// store write failed, or no group arrived for StallTimeout. It returns why.
func (ts *trackSet) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		ts.wg.Wait()
	}()
	catalogs := make(chan catalogUpdate, 1)
	switch {
	case len(ts.w.cfg.Tracks) > 0:
		ts.want(ctx, ts.w.cfg.Tracks, nil)
	default:
		ts.start(ctx, catalog.TrackName, catalogs)
	}
	tick := time.NewTicker(retryMissingEvery)
	defer tick.Stop()
	ts.lastGroup.Store(time.Now().UnixNano())
	stall := time.NewTicker(ts.w.cfg.StallTimeout / 4)
	defer stall.Stop()
	var current []string // the tracks the latest catalog names
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-ts.failed:
			return err
		case <-stall.C:
			if idle := time.Since(time.Unix(0, ts.lastGroup.Load())); idle > ts.w.cfg.StallTimeout {
				return fmt.Errorf("%w for %s", errStalled, idle.Round(time.Second))
			}
		case u := <-catalogs:
			next := slices.DeleteFunc(slices.Clone(ts.w.cfg.FallbackTracks), isCatalogTrack)
			if u.c != nil {
				next = u.c.Tracks
			}
			// Publishers rewrite the catalog often (bitrates, timelines); only a
			// change of tracks is news, and the moment to retry missing ones.
			if !slices.Equal(current, next) {
				ts.w.log.Info("archiving the tracks the catalog names", "tracks", next, "catalog", u.c != nil)
				if u.c != nil {
					for name, why := range u.c.Skipped {
						ts.w.log.Info("catalog rendition not archived", "track", name, "why", why)
					}
				}
				ts.retryMissing()
			}
			current = next
			ts.want(ctx, current, catalogs)
		case <-tick.C:
			ts.retryMissing()
			if len(ts.w.cfg.Tracks) > 0 {
				ts.want(ctx, ts.w.cfg.Tracks, nil)
			} else if current != nil {
				ts.want(ctx, current, catalogs)
			}
		}
	}
}

// retryMissing lets the next want try the tracks the relay did not have.
func (ts *trackSet) retryMissing() {
	ts.mu.Lock()
	clear(ts.missing)
	ts.mu.Unlock()
}

// want reconciles the running subscriptions with tracks; the catalog track
// itself is kept running in catalog mode.
func (ts *trackSet) want(ctx context.Context, tracks []string, catalogs chan catalogUpdate) {
	ts.mu.Lock()
	for name, stop := range ts.running {
		if isCatalogTrack(name) && catalogs != nil {
			continue
		}
		if !slices.Contains(tracks, name) {
			ts.w.log.Info("track no longer in catalog; unsubscribing", "track", name)
			stop()
			delete(ts.running, name)
		}
	}
	ts.mu.Unlock()
	for _, name := range tracks {
		ts.start(ctx, name, nil)
	}
	ts.w.status.setTracks(ts.names())
}

func (ts *trackSet) names() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var names []string
	for name := range ts.running {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// start subscribes to a track unless it runs already. For a catalog track,
// catalogs receives every parsed catalog (nil if no catalog track exists).
func (ts *trackSet) start(ctx context.Context, name string, catalogs chan catalogUpdate) {
	ts.mu.Lock()
	if _, ok := ts.running[name]; ok || ts.missing[name] {
		ts.mu.Unlock()
		return
	}
	tctx, stop := context.WithCancel(ctx)
	ts.running[name] = stop
	ts.mu.Unlock()

	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		err := ts.track(tctx, name, catalogs)
		stopped := tctx.Err() != nil // by want or the session's end: no failure to report
		ts.mu.Lock()
		delete(ts.running, name)
		ts.mu.Unlock()
		stop()
		switch {
		case errors.Is(err, moq.ErrNotFound):
			ts.mu.Lock()
			first := !ts.warned[name]
			ts.missing[name], ts.warned[name] = true, true
			ts.mu.Unlock()
			if first {
				ts.w.log.Warn("track not found on relay; will retry", "track", name)
			}
			if catalogs != nil {
				if next := nextCatalogTrack(name); next != "" {
					ts.start(ctx, next, catalogs)
				} else {
					send(ctx, catalogs, nil)
				}
			}
		case errors.Is(err, errStore):
			// What the failed store lost is known only from the sink: the next
			// subscription resumes the track from what is durable there.
			ts.w.forgetTracker(name)
			select {
			case ts.failed <- err:
			default:
			}
		case err != nil && !stopped:
			ts.w.log.Warn("track subscription ended", "track", name, "err", err)
		}
	}()
}

// errStore marks failures to write the CAS or the manifest: they end the
// session, so that the worker backs off and resumes when the store recovers.
var errStore = errors.New("store")

// track runs one subscription until it ends.
func (ts *trackSet) track(ctx context.Context, name string, catalogs chan catalogUpdate) error {
	gaps, err := ts.w.tracker(name)
	if err != nil {
		return fmt.Errorf("%w: %w", errStore, err)
	}
	sub, start, recent, err := ts.subscribe(ctx, name, gaps)
	if err != nil {
		return err
	}
	subscribed := time.Now()
	if recent {
		sub = &orderedGroups{Subscription: sub, next: start, until: subscribed.Add(catchUpHold)}
	}
	defer sub.Close()
	if recent {
		ts.w.log.Info("subscribed from the relay's cache", "track", name, "start", start)
	} else {
		ts.w.log.Debug("subscribed", "track", name)
	}

	var (
		wg       sync.WaitGroup
		inFlight = make(chan struct{}, groupsInFlight)
		firstErr error
		errOnce  sync.Once
	)
	// A store failure ends the track at once: the groups after it could not be
	// stored either, and ending the session starts the backoff.
	ctx, stopTrack := context.WithCancel(ctx)
	defer stopTrack()
	fail := func(err error) { errOnce.Do(func() { firstErr = err }); stopTrack() }
	ts.w.mu.Lock()
	gaps.subscribed()
	var expired []seqRange
	if recent {
		expired = gaps.resumeAt(start)
	}
	ts.w.mu.Unlock()
	if recent {
		expired = append(expired, ts.awaitOwed(name, start, gaps)...)
	}
	if err := ts.recordGaps(ctx, name, expired); err != nil {
		return err
	}
	var (
		endErr error
		// held has opened in the tracker and is not yet with a receiver: if the
		// loop ends now, it is lost in flight, or it would be neither archived
		// nor in a gap record.
		held moq.Group
	)
	first := !recent // the first group shows what a live-edge subscription missed
	for ; ; first = false {
		g, err := sub.NextGroup(ctx)
		if err != nil {
			endErr = err
			break
		}
		ts.lastGroup.Store(time.Now().UnixNano())
		held = g
		ts.w.mu.Lock()
		missed := gaps.opened(g.Sequence())
		if recent && time.Since(subscribed) > catchUpHold {
			recent = false
			missed = append(missed, gaps.release()...)
		}
		ts.w.mu.Unlock()
		if first {
			owed, err := ts.takeOwed(ctx, name, g.Sequence())
			if err != nil {
				endErr = err
				break
			}
			missed = append(missed, owed...)
		}
		// What passed while no subscription was active may still be cached.
		missed = slices.DeleteFunc(missed, func(r seqRange) bool {
			if r.reason != record.GapDisconnected {
				return false
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts.backfill(ctx, name, r, fail)
			}()
			return true
		})
		if err := ts.recordGaps(ctx, name, missed); err != nil {
			endErr = err
			break
		}
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			endErr = ctx.Err()
		}
		if endErr != nil {
			break
		}
		wg.Add(1)
		done := make(chan struct{})
		go func() {
			defer func() { <-inFlight; wg.Done(); close(done) }()
			if err := ts.group(ctx, name, g, catalogs); err != nil {
				fail(err)
			}
		}()
		held = nil
		if recent {
			// A catch-up appends its groups in sequence order; a cached group
			// that does not complete (its publisher stopped mid-group) must not
			// hold the others back.
			select {
			case <-done:
			case <-time.After(reorderWait):
			case <-ctx.Done():
			}
		}
	}
	if held != nil {
		held.Close()
		if err := ts.lostInFlight(ctx, name, held.Sequence()); err != nil {
			fail(err)
		}
	}
	wg.Wait()
	ts.w.mu.Lock()
	missed := gaps.ended()
	ts.w.mu.Unlock()
	reason := record.GapSkipped
	if ctx.Err() != nil {
		reason = record.GapDisconnected
	}
	for i := range missed {
		missed[i].reason = reason
	}
	if err := ts.recordGaps(context.WithoutCancel(ctx), name, missed); err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	if errors.Is(endErr, io.EOF) {
		return nil
	}
	return endErr
}
