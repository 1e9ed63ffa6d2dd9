package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/record"
)

// statusTracker keeps a worker's Status, writes it to the status file and
// passes every event on to the Observer: the one place a worker reports to.
type statusTracker struct {
	mu  sync.Mutex
	s   Status
	obs Observer
}

func newStatusTracker(broadcast, relay string, pid int, obs Observer) *statusTracker {
	now := time.Now().UnixMilli()
	if obs == nil {
		obs = noObserver{}
	}
	return &statusTracker{obs: obs, s: Status{Broadcast: broadcast, Relay: relay, State: "connecting", StartedUnixMs: now, UpdatedUnixMs: now, PID: pid}}
}

func (t *statusTracker) update(f func(*Status)) {
	t.mu.Lock()
	f(&t.s)
	t.mu.Unlock()
}

func (t *statusTracker) setState(state string, err error) {
	t.update(func(s *Status) {
		s.State = state
		if err != nil {
			s.LastError = err.Error()
		}
	})
}

func (t *statusTracker) setVersion(v string)       { t.update(func(s *Status) { s.Version = v }) }
func (t *statusTracker) setTracks(tracks []string) { t.update(func(s *Status) { s.Tracks = tracks }) }

func (t *statusTracker) gap(g record.Header) {
	t.update(func(s *Status) { s.Gaps++ })
	t.obs.Gap(g.Broadcast, g.Track, g.Reason, g.Last-g.First+1)
}

func (t *statusTracker) reconnected() {
	t.update(func(s *Status) { s.Reconnects++ })
	t.obs.Reconnected(t.s.Broadcast)
}

func (t *statusTracker) announced(yes bool)       { t.obs.Announced(t.s.Broadcast, yes) }
func (t *statusTracker) storeFailed(track string) { t.obs.StoreFailed(t.s.Broadcast, track) }
func (t *statusTracker) stopped()                 { t.obs.Stopped(t.s.Broadcast) }

// stored counts a durable group; commit is how long the sink took to commit it.
func (t *statusTracker) stored(h record.Header, st Stored, commit time.Duration) {
	t.obs.GroupStored(h.Broadcast, h.Track, h.Size, commit)
	t.update(func(s *Status) {
		s.Groups++
		s.Bytes += h.Size
		if st.New {
			s.NewObjects++
		}
		s.LastGroupUnixMs = h.ReceivedUnixMs
	})
}

func (t *statusTracker) groups() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.s.Groups
}

// Snapshot returns a copy of the current status.
func (t *statusTracker) snapshot() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.s
	s.Tracks = append([]string(nil), t.s.Tracks...)
	s.UpdatedUnixMs = time.Now().UnixMilli()
	return s
}

// run reports the status every statusInterval, to the file at path and to
// onStatus (either may be unset), until the returned stop is called, which
// reports it a last time.
func (t *statusTracker) run(ctx context.Context, path string, onStatus func(Status), log *slog.Logger) (stop func()) {
	if path == "" && onStatus == nil {
		return func() {}
	}
	report := func() {
		s := t.snapshot()
		if onStatus != nil {
			onStatus(s)
		}
		if path == "" {
			return
		}
		if err := writeStatus(path, s); err != nil {
			log.Warn("status file not written", "path", path, "err", err)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(statusInterval)
		defer tick.Stop()
		for {
			report()
			select {
			case <-tick.C:
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		report()
	}
}

// writeStatus replaces the status file atomically (temp file, fsync, rename,
// fsync directory): a reader never sees half a status, even after a crash.
func writeStatus(path string, s Status) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := safefs.WriteFileAtomic(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}

// maxStatusSize bounds a status file read back; a worker writes a few hundred bytes.
const maxStatusSize = 1 << 20

// ReadStatus reads a status file written by a worker. A symbolic link or
// special file at path is refused rather than followed or blocked on.
func ReadStatus(path string) (Status, error) {
	var s Status
	data, err := safefs.ReadFile(path, maxStatusSize)
	if err != nil {
		return s, fmt.Errorf("status: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("status %s: %w", path, err)
	}
	return s, nil
}
