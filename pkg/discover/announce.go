package discover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/every-channel/ec-node/pkg/backoff"
	"github.com/every-channel/ec-node/pkg/moq"
)

// Dialer opens a subscriber session to a relay (moq.Dial with fixed options).
type Dialer func(ctx context.Context, relayURL string) (moq.Session, error)

// Defaults of AnnounceSource.
const (
	DefaultSettle  = time.Second
	maxAnnounceSet = 100_000 // broadcasts one relay may announce to us
)

// ErrNotReady is returned by AnnounceSource.List while it has no current view
// of the relay: before the first session settles, or after a session was lost.
var ErrNotReady = errors.New("discover: relay announcements not available")

// AnnounceSource lists the broadcasts a relay announces under a prefix
// (moq-lite ANNOUNCE_PLEASE), with no web directory involved. Run maintains the
// live set and reconnects with backoff; List returns a snapshot of it.
type AnnounceSource struct {
	RelayURL string
	Prefix   string
	Dial     Dialer
	// Settle is how long after subscribing the set counts as complete: the relay
	// sends the current broadcasts first, with no end marker (0: DefaultSettle).
	Settle  time.Duration
	Backoff backoff.Policy // reconnect delays (zero: 1 s to 1 min)
	Logger  *slog.Logger

	mu        sync.Mutex
	live      map[string]bool
	readyAt   time.Time // zero while disconnected
	connected bool
}

// List returns the announced broadcasts, or ErrNotReady.
func (a *AnnounceSource) List(ctx context.Context) ([]Broadcast, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.connected || time.Now().Before(a.readyAt) {
		return nil, ErrNotReady
	}
	out := make([]Broadcast, 0, len(a.live))
	for name := range a.live {
		out = append(out, Broadcast{RelayURL: a.RelayURL, Name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Run keeps the announced set current until ctx ends, reconnecting after any
// failure. It returns nil when ctx is cancelled.
func (a *AnnounceSource) Run(ctx context.Context) error {
	if err := ValidateRelayURL(a.RelayURL); err != nil {
		return err
	}
	logger := a.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	policy := a.Backoff
	if policy.Min <= 0 {
		policy = backoff.Policy{Min: time.Second, Max: time.Minute}
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := a.session(ctx, logger)
		a.setDisconnected()
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > policy.Max { // a long healthy session resets the backoff
			attempt = 0
		}
		delay := policy.Delay(attempt)
		logger.Warn("relay announcements lost; reconnecting", "err", err, "in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

func (a *AnnounceSource) session(ctx context.Context, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess, err := a.Dial(ctx, a.RelayURL)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer sess.Close()
	anns, err := sess.Announced(ctx, a.Prefix)
	if err != nil {
		return fmt.Errorf("announce subscription: %w", err)
	}
	defer anns.Close()
	settle := a.Settle
	if settle <= 0 {
		settle = DefaultSettle
	}
	a.mu.Lock()
	a.live, a.connected, a.readyAt = map[string]bool{}, true, time.Now().Add(settle)
	a.mu.Unlock()
	logger.Info("subscribed to relay announcements", "prefix", a.Prefix, "version", sess.Version())
	for {
		ann, err := anns.Next(ctx)
		if err != nil {
			return fmt.Errorf("announcements: %w", err)
		}
		if err := ValidateName(ann.Broadcast); err != nil {
			logger.Warn("ignoring announced broadcast", "err", err)
			continue
		}
		a.mu.Lock()
		switch {
		case !ann.Active:
			delete(a.live, ann.Broadcast)
		case len(a.live) < maxAnnounceSet:
			a.live[ann.Broadcast] = true
		default:
			logger.Warn("ignoring announced broadcast: too many", "limit", maxAnnounceSet)
		}
		a.mu.Unlock()
	}
}

func (a *AnnounceSource) setDisconnected() {
	a.mu.Lock()
	a.connected, a.live = false, nil
	a.mu.Unlock()
}
