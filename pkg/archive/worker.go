package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/every-channel/ec-node/pkg/backoff"
	"github.com/every-channel/ec-node/pkg/discover"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
)

// Defaults for Config fields left zero.
const (
	DefaultAnnounceWait  = 30 * time.Second
	DefaultMinBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultMaxGroupBytes = 64 << 20
	DefaultStallTimeout  = 30 * time.Second
	// DefaultBackfillMaxAge is moq-relay's default --cache-duration, and the max
	// age hang publishes media tracks with.
	DefaultBackfillMaxAge = 30 * time.Second
	// groupsInFlight bounds the groups of one track received at once.
	groupsInFlight = 8
	// statusInterval is how often the status file is rewritten.
	statusInterval = 2 * time.Second
)

// dialSession connects to a relay; tests substitute an in-memory stand-in.
var dialSession = moq.Dial

// ErrConfig marks configuration errors: retrying cannot help.
var ErrConfig = errors.New("configuration error")

// errNotAnnounced ends a session whose broadcast was not announced in time.
var errNotAnnounced = errors.New("broadcast not announced")

// errBroadcastEnded ends a session whose broadcast was unannounced.
var errBroadcastEnded = errors.New("broadcast ended")

// errStalled ends a session that received no group for StallTimeout.
var errStalled = errors.New("no group received")

// Run archives one broadcast into cfg.Store and cfg.ManifestDir until ctx is
// cancelled (then it returns nil) or MaxAttempts consecutive sessions fail.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Store == nil || cfg.ManifestDir == "" {
		return fmt.Errorf("%w: a CAS store and a manifest directory are required", ErrConfig)
	}
	sink, err := NewStoreSink(cfg.Store, cfg.ManifestDir, cfg.Logger)
	if err != nil {
		return err
	}
	defer sink.Close()
	if cfg.SessionLog == nil {
		if cfg.SessionLog, err = manifest.OpenSessionLog(cfg.ManifestDir, cfg.Logger); err != nil {
			return err
		}
	}
	return Follow(ctx, cfg, sink)
}

// Follow runs the subscribe side of a worker into any Sink: it connects, waits
// for the broadcast, subscribes to its tracks, and reconnects with capped
// exponential backoff and jitter whenever the session or the broadcast ends.
func Follow(ctx context.Context, cfg Config, sink Sink) error {
	if err := cfg.check(); err != nil {
		return err
	}
	w := newWorker(cfg, sink)
	stopStatus := w.status.run(ctx, cfg.StatusFile, cfg.OnStatus, w.log)
	defer stopStatus()
	defer w.status.stopped()

	failures := 0
	for {
		before := w.status.groups()
		err := w.session(ctx)
		if ctx.Err() != nil {
			w.status.setState("stopped", nil)
			return w.payOwed()
		}
		if errors.Is(err, ErrConfig) {
			w.status.setState("stopped", err)
			return err
		}
		if w.status.groups() > before {
			failures = 0 // the session made progress; start backing off afresh
		}
		failures++
		if cfg.MaxAttempts > 0 && failures >= cfg.MaxAttempts {
			w.status.setState("stopped", err)
			return fmt.Errorf("archive %s: giving up after %d failed sessions: %w", cfg.Broadcast, failures, err)
		}
		delay := backoff.Policy{Min: cfg.MinBackoff, Max: cfg.MaxBackoff}.Delay(failures - 1)
		w.log.Warn("session ended; reconnecting", "err", err, "in", delay.Round(time.Millisecond), "attempt", failures)
		w.status.setState("backoff", err)
		w.status.reconnected()
		select {
		case <-ctx.Done():
			w.status.setState("stopped", nil)
			return w.payOwed()
		case <-time.After(delay):
		}
	}
}

// check validates the configuration and fills in defaults.
func (cfg *Config) check() error {
	if err := discover.ValidateRelayURL(cfg.RelayURL); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Broadcast == "" {
		return fmt.Errorf("%w: no broadcast name", ErrConfig)
	}
	if cfg.AnnounceWait <= 0 {
		cfg.AnnounceWait = DefaultAnnounceWait
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.MaxGroupBytes <= 0 {
		cfg.MaxGroupBytes = DefaultMaxGroupBytes
	}
	if cfg.FallbackTracks == nil {
		cfg.FallbackTracks = DefaultTracks
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.BackfillMaxAge == 0 {
		cfg.BackfillMaxAge = DefaultBackfillMaxAge
	}
	if cfg.Tool == "" {
		cfg.Tool = DefaultTool
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// worker is the state of one broadcast across sessions.
type worker struct {
	cfg    Config
	sink   Sink
	log    *slog.Logger
	status *statusTracker

	mu       sync.Mutex
	trackers map[string]*gapTracker // by track
	owed     map[string][]uint64    // by track: groups lost in flight when a session ended, to back-fill
}

func newWorker(cfg Config, sink Sink) *worker {
	log := cfg.Logger.With("broadcast", cfg.Broadcast, "relay", moq.RedactURL(cfg.RelayURL))
	return &worker{
		cfg:      cfg,
		sink:     sink,
		log:      log,
		status:   newStatusTracker(cfg.Broadcast, moq.RedactURL(cfg.RelayURL), os.Getpid(), cfg.Observer),
		trackers: map[string]*gapTracker{},
		owed:     map[string][]uint64{},
	}
}

// session runs one connection to the relay until it or the broadcast ends.
func (w *worker) session(ctx context.Context) error {
	w.status.setState("connecting", nil)
	sess, err := dialSession(ctx, w.cfg.RelayURL, w.cfg.Dial)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer sess.Close()
	w.status.setVersion(sess.Version())
	w.log.Info("connected", "version", sess.Version())

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-sess.Done():
			cancel(fmt.Errorf("session: %w", sess.Err()))
		case <-ctx.Done():
		}
	}()

	w.status.setState("waiting", nil)
	ended, err := w.awaitBroadcast(ctx, sess)
	if err != nil {
		return err
	}
	w.status.setState("archiving", nil)
	if err := w.logSession(sess); err != nil {
		return err
	}
	go func() {
		<-ended
		cancel(errBroadcastEnded)
	}()

	tracks := newTrackSet(w, sess)
	if err := tracks.run(ctx); err != nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return ctx.Err()
}

// awaitBroadcast waits, at most AnnounceWait, for the relay to announce the
// broadcast. The returned channel is closed when the broadcast is unannounced.
// A relay that refuses announcements is not waited on: the subscriptions will
// tell whether the broadcast exists.
func (w *worker) awaitBroadcast(ctx context.Context, sess moq.Session) (<-chan struct{}, error) {
	ended := make(chan struct{})
	anns, err := sess.Announced(ctx, w.cfg.Broadcast)
	if err != nil {
		w.log.Warn("relay refused announcements; subscribing directly", "err", err)
		return ended, nil
	}
	wait, cancelWait := context.WithTimeout(ctx, w.cfg.AnnounceWait)
	defer cancelWait()
	w.log.Info("waiting for the broadcast to be announced", "timeout", w.cfg.AnnounceWait)
	for {
		a, err := anns.Next(wait)
		if err != nil {
			anns.Close()
			if ctx.Err() == nil && wait.Err() != nil {
				w.status.announced(false)
				return nil, fmt.Errorf("%w within %s", errNotAnnounced, w.cfg.AnnounceWait)
			}
			return nil, fmt.Errorf("announcements: %w", err)
		}
		if a.Broadcast == w.cfg.Broadcast && a.Active {
			break
		}
	}
	w.status.announced(true)
	go func() {
		defer close(ended)
		defer anns.Close()
		for {
			a, err := anns.Next(ctx)
			if err != nil {
				return
			}
			if a.Broadcast == w.cfg.Broadcast && !a.Active {
				w.status.announced(false)
				return
			}
		}
	}()
	return ended, nil
}

// forgetTracker drops a track's gap tracker after a store failure, so that the
// next subscription seeds it again from what the sink holds durably.
func (w *worker) forgetTracker(track string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.trackers, track)
}

// tracker returns the gap tracker of a track, seeded from the sink on first use.
func (w *worker) tracker(track string) (*gapTracker, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t, ok := w.trackers[track]; ok {
		return t, nil
	}
	t := newGapTracker()
	p, ok, err := w.sink.ResumePoint(w.cfg.Broadcast, track)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", track, err)
	}
	if ok {
		t.resume(p)
	}
	w.trackers[track] = t
	return t, nil
}
