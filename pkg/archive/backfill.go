package archive

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
)

// backfillIdle ends a back-fill that received no group for that long: the relay
// serves cached groups at once, and may send nothing at all for a range it no
// longer holds.
var backfillIdle = 3 * time.Second

// catchUpHold is how long after a subscription from the relay's cache the
// reorder window is suspended: the cached groups come at once, on parallel
// streams, in any order.
var catchUpHold = 10 * time.Second

// recentWait bounds how long a subscription from the relay's cache waits for
// the relay to say which group it starts with.
var recentWait = 5 * time.Second

// errBackfillIdle ends a back-fill after backfillIdle without a group.
var errBackfillIdle = errors.New("back-fill idle")

// maxBackfill bounds the groups one back-fill asks for and tracks; the older
// part of a longer absence is recorded as a gap at once.
const maxBackfill = 4096

// backfill takes the groups of r, missed while no subscription was active, from
// the relay's cache, and records as gaps those the relay no longer has. A
// session without moq.Backfiller, or a disabled back-fill, records r at once.
// It blocks until the back-fill ends; fail receives store failures.
func (ts *trackSet) backfill(ctx context.Context, track string, r seqRange, fail func(error)) {
	bf, ok := ts.sess.(moq.Backfiller)
	if !ok || ts.w.cfg.BackfillMaxAge <= 0 {
		if err := ts.recordGaps(context.WithoutCancel(ctx), track, []seqRange{r}); err != nil {
			fail(err)
		}
		return
	}
	if r.last-r.first >= maxBackfill {
		older := seqRange{r.first, r.last - maxBackfill, record.GapDisconnected}
		if err := ts.recordGaps(context.WithoutCancel(ctx), track, []seqRange{older}); err != nil {
			fail(err)
			return
		}
		r.first = older.last + 1
	}
	got, err := ts.takeRange(ctx, bf, track, r, fail)
	reason := record.GapExpired
	if ctx.Err() != nil || (err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errBackfillIdle)) {
		reason = record.GapDisconnected
	}
	lost := missingRanges(r, got, reason)
	ts.w.log.Info("back-filled missed groups from the relay's cache", "track", track,
		"first", r.first, "last", r.last, "received", len(got), "lost", lost, "end", err)
	if err := ts.recordGaps(context.WithoutCancel(ctx), track, lost); err != nil {
		fail(err)
	}
}

// subscribe subscribes to a track. A track archived before is asked for from
// the relay's cache when the session can (moq.Backfiller.SubscribeRecent): the
// groups missed meanwhile arrive first, from start. Otherwise, or when that
// fails, the subscription starts at the latest group (recent is false), and the
// groups missed are back-filled by range once the first one shows where it
// joined. moq-relay keeps a track's groups only while someone subscribes to
// it, so asking for the past must be the track's first subscription: a range
// asked for beside a live subscription reaches only what the relay pulled.
func (ts *trackSet) subscribe(ctx context.Context, track string, gaps *gapTracker) (sub moq.Subscription, start uint64, recent bool, err error) {
	ts.w.mu.Lock()
	known := gaps.known
	ts.w.mu.Unlock()
	bf, ok := ts.sess.(moq.Backfiller)
	if known && ok && ts.w.cfg.BackfillMaxAge > 0 {
		wait, cancel := context.WithTimeout(ctx, recentWait)
		sub, start, err = bf.SubscribeRecent(wait, ts.w.cfg.Broadcast, track, ts.w.cfg.BackfillMaxAge)
		cancel()
		switch {
		case err == nil:
			return sub, start, true, nil
		case errors.Is(err, moq.ErrNotFound) || ctx.Err() != nil:
			return nil, 0, false, err
		case !errors.Is(err, errors.ErrUnsupported):
			ts.w.log.Warn("subscribing from the relay's cache failed; subscribing at the latest group", "track", track, "err", err)
		}
	}
	sub, err = ts.sess.Subscribe(ctx, ts.w.cfg.Broadcast, track)
	return sub, 0, false, err
}

// awaitOwed hands the groups of track lost in flight to a subscription from
// the relay's cache that starts at start: the groups from start on are served
// again, and gaps awaits them like late groups (recording those that do not
// come); the older ones are gaps at once.
func (ts *trackSet) awaitOwed(track string, start uint64, gaps *gapTracker) []seqRange {
	ts.w.mu.Lock()
	defer ts.w.mu.Unlock()
	seqs := ts.w.owed[track]
	delete(ts.w.owed, track)
	var lost []seqRange
	for _, seq := range seqs {
		if seq < start {
			lost = append(lost, seqRange{seq, seq, record.GapExpired})
		} else {
			gaps.await(seq)
		}
	}
	return lost
}

// canBackfill reports whether missed groups are asked for from the relay's cache.
func (ts *trackSet) canBackfill() bool {
	_, ok := ts.sess.(moq.Backfiller)
	return ok && ts.w.cfg.BackfillMaxAge > 0
}

// lostInFlight accounts for a group whose stream broke because the session or
// the subscription ended: it is owed to the next subscription's back-fill, or a
// gap at once when there will be none.
func (ts *trackSet) lostInFlight(ctx context.Context, track string, seq uint64) error {
	if !ts.canBackfill() {
		return ts.recordGaps(context.WithoutCancel(ctx), track, []seqRange{{seq, seq, record.GapDisconnected}})
	}
	ts.w.mu.Lock()
	ts.w.owed[track] = append(ts.w.owed[track], seq)
	ts.w.mu.Unlock()
	return nil
}

// takeOwed returns, as ranges to back-fill, the groups of track lost in flight
// that lie below first, the first group of a new subscription; the others
// (a publisher that restarted its sequence) become gaps.
func (ts *trackSet) takeOwed(ctx context.Context, track string, first uint64) ([]seqRange, error) {
	ts.w.mu.Lock()
	seqs := ts.w.owed[track]
	delete(ts.w.owed, track)
	ts.w.mu.Unlock()
	var take, lost []seqRange
	for _, seq := range seqs {
		if seq < first {
			take = append(take, seqRange{seq, seq, record.GapDisconnected})
		} else {
			lost = append(lost, seqRange{seq, seq, record.GapDisconnected})
		}
	}
	return take, ts.recordGaps(context.WithoutCancel(ctx), track, lost)
}

// takeRange subscribes to r and archives the groups that arrive, returning the
// sequences that opened and why the subscription ended.
func (ts *trackSet) takeRange(ctx context.Context, bf moq.Backfiller, track string, r seqRange, fail func(error)) (map[uint64]bool, error) {
	got := map[uint64]bool{}
	sub, err := bf.SubscribeRange(ctx, ts.w.cfg.Broadcast, track, moq.Range{First: r.first, Last: r.last, MaxAge: ts.w.cfg.BackfillMaxAge})
	if err != nil {
		return got, err
	}
	defer sub.Close()
	var (
		wg       sync.WaitGroup
		inFlight = make(chan struct{}, groupsInFlight)
	)
	defer wg.Wait()
	for {
		idle, cancel := context.WithTimeoutCause(ctx, backfillIdle, errBackfillIdle)
		g, err := sub.NextGroup(idle)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				err = errBackfillIdle
			}
			return got, err
		}
		seq := g.Sequence()
		if seq < r.first || seq > r.last || got[seq] {
			g.Close() // not asked for, or already taken: the live subscription has it
			continue
		}
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			g.Close() // not taken: a gap with the range's others
			return got, ctx.Err()
		}
		got[seq] = true
		wg.Add(1)
		go func() {
			defer func() { <-inFlight; wg.Done() }()
			// Old catalogs are archived but must not steer the live track set.
			if err := ts.group(ctx, track, g, nil); err != nil {
				fail(err)
			}
		}()
	}
}

// missingRanges returns the sequences of r not in got, merged into ranges.
func missingRanges(r seqRange, got map[uint64]bool, reason string) []seqRange {
	var lost []seqRange
	for s := r.first; ; s++ {
		if !got[s] {
			if n := len(lost); n > 0 && lost[n-1].last+1 == s {
				lost[n-1].last = s
			} else {
				lost = append(lost, seqRange{s, s, reason})
			}
		}
		if s == r.last {
			return lost
		}
	}
}

// payOwed records the groups lost in flight that no subscription will
// back-fill any more, when the worker stops.
func (w *worker) payOwed() error {
	w.mu.Lock()
	owed := w.owed
	w.owed = map[string][]uint64{}
	w.mu.Unlock()
	var errs []error
	for track, seqs := range owed {
		for _, seq := range seqs {
			errs = append(errs, w.recordGaps(context.Background(), track, []seqRange{{seq, seq, record.GapDisconnected}}))
		}
	}
	return errors.Join(errs...)
}

// reorderWait is how long a catch-up waits for a lower group before handing
// out the ones that came above it.
var reorderWait = 500 * time.Millisecond

// orderedGroups hands out the groups of a catch-up from the relay's cache in
// sequence order from next, until the catch-up hold ends: moq-relay sends the
// newest group first, and the manifest, from which publisher sessions are
// derived (a sequence far below the previous line starts a new one), wants
// them in the order they were published. A group that does not come within
// reorderWait is passed over.
type orderedGroups struct {
	moq.Subscription
	next    uint64
	pending []moq.Group // by sequence
	until   time.Time
}

func (o *orderedGroups) NextGroup(ctx context.Context) (moq.Group, error) {
	for {
		ordering := time.Now().Before(o.until)
		if len(o.pending) > 0 && (!ordering || o.pending[0].Sequence() <= o.next) {
			g := o.pending[0]
			o.pending = o.pending[1:]
			o.next = max(o.next, g.Sequence()+1)
			return g, nil
		}
		if !ordering {
			return o.Subscription.NextGroup(ctx)
		}
		wait, cancel := ctx, context.CancelFunc(func() {})
		if len(o.pending) > 0 {
			wait, cancel = context.WithTimeout(ctx, reorderWait)
		}
		g, err := o.Subscription.NextGroup(wait)
		cancel()
		if err != nil {
			if len(o.pending) > 0 && ctx.Err() == nil {
				o.next = o.pending[0].Sequence() // the groups below it are not coming now
				continue
			}
			return nil, err
		}
		i, _ := slices.BinarySearchFunc(o.pending, g.Sequence(), func(p moq.Group, seq uint64) int { return cmp.Compare(p.Sequence(), seq) })
		o.pending = slices.Insert(o.pending, i, g)
	}
}

func (o *orderedGroups) Close() error {
	for _, g := range o.pending {
		g.Close()
	}
	o.pending = nil
	return o.Subscription.Close()
}
