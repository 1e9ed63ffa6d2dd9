package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"time"

	"github.com/every-channel/ec-node/pkg/backoff"
	"github.com/every-channel/ec-node/pkg/discover"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/systemd"
)

// Defaults of Config.
const (
	DefaultPollInterval = 30 * time.Second
	DefaultGrace        = 2 * time.Minute
	DefaultTick         = 2 * time.Second
	DefaultStaleAfter   = 2 * time.Minute
)

// DefaultBackoff spaces the restarts of a crashing worker.
var DefaultBackoff = backoff.Policy{Min: 2 * time.Second, Max: 5 * time.Minute}

// Config configures a Supervisor.
type Config struct {
	Runner Runner
	// Source lists the live broadcasts; nil archives only Static.
	Source discover.Source
	// Static broadcasts are archived whatever discovery says, and regardless of
	// Include, Exclude and MaxWorkers.
	Static []discover.Broadcast
	// RelayOverride, when set, replaces every discovered broadcast's relay URL
	// (the deployed relayUrlOverride).
	RelayOverride string
	// Include and Exclude are path.Match patterns on discovered broadcast names
	// ("*" does not cross "/"); empty Include means all, Exclude wins.
	Include, Exclude []string
	// Mine, when set, keeps only the discovered broadcasts this host archives
	// when several share the work (shard.Ring.Mine); nil keeps all.
	Mine func(broadcast string) bool
	// MaxWorkers caps the discovered workers (0: no cap); running ones are kept
	// first, then names in order.
	MaxWorkers int
	// PollInterval spaces discovery listings; Grace is how long a broadcast may
	// be missing from them before its worker is stopped; Tick spaces the
	// reconcile passes between listings (restarts, liveness).
	PollInterval, Grace, Tick time.Duration
	Backoff                   backoff.Policy
	// StatusDir holds the workers' status files, read for liveness warnings.
	StatusDir  string
	StaleAfter time.Duration
	// Notify, if set, is called after every reconcile pass with a one-line
	// summary (the command forwards it to sd_notify as READY/WATCHDOG).
	Notify func(summary string)
	Logger *slog.Logger
}

// Supervisor reconciles workers with discovery.
type Supervisor struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	tracked map[string]*tracked
	stale   map[string]bool
}

type tracked struct {
	w            Worker
	static       bool
	missingSince time.Time // zero while the latest listing has it
	started      time.Time // when we last started it; zero once seen stopped
	failures     int       // consecutive short-lived runs
	nextStart    time.Time
}

// New validates cfg (a Runner, and Check) and fills in defaults.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Runner == nil {
		return nil, errors.New("supervise: no runner")
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	setDefault(&cfg.PollInterval, DefaultPollInterval)
	setDefault(&cfg.Grace, DefaultGrace)
	setDefault(&cfg.Tick, DefaultTick)
	setDefault(&cfg.StaleAfter, DefaultStaleAfter)
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{cfg: cfg, log: log, now: time.Now, tracked: map[string]*tracked{}, stale: map[string]bool{}}
	for _, b := range cfg.Static {
		w, _ := workerFor(b) // Check validated it
		s.tracked[w.Instance] = &tracked{w: w, static: true}
	}
	return s, nil
}

// Check validates everything in cfg but the Runner, so that a configuration
// can be checked before anything runs: ec-node systemd-units checks the
// settings it renders into a unit this way.
func (cfg *Config) Check() error {
	if cfg.Source == nil && len(cfg.Static) == 0 {
		return errors.New("supervise: nothing to archive: no discovery source and no static broadcasts")
	}
	for _, p := range append(append([]string{}, cfg.Include...), cfg.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("supervise: pattern %q: %w", p, err)
		}
	}
	if cfg.RelayOverride != "" {
		if err := discover.ValidateRelayURL(cfg.RelayOverride); err != nil {
			return fmt.Errorf("supervise: relay override: %w", err)
		}
	}
	if cfg.MaxWorkers < 0 {
		return errors.New("supervise: negative worker cap")
	}
	for _, b := range cfg.Static {
		if _, err := workerFor(b); err != nil {
			return fmt.Errorf("supervise: static broadcast: %w", err)
		}
	}
	return nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func workerFor(b discover.Broadcast) (Worker, error) {
	if err := b.Validate(); err != nil {
		return Worker{}, err
	}
	key, err := systemd.Key(b.RelayURL, b.Name)
	if err != nil {
		return Worker{}, err
	}
	return Worker{Instance: systemd.Instance(key), Key: key, RelayURL: b.RelayURL, Broadcast: b.Name}, nil
}

type listing struct {
	list []discover.Broadcast
	err  error
}

// Run supervises until ctx ends, then shuts the runner down (bounded by 30 s).
func (s *Supervisor) Run(ctx context.Context) error {
	listings := make(chan listing)
	if s.cfg.Source != nil {
		go s.poll(ctx, listings)
	}
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	s.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			return s.cfg.Runner.Shutdown(shutdownCtx)
		case l := <-listings:
			if l.err != nil {
				s.log.Warn("discovery failed; keeping the current workers", "err", l.err)
				continue
			}
			s.observe(l.list)
			s.reconcile(ctx)
		case <-tick.C:
			s.reconcile(ctx)
		}
	}
}

func (s *Supervisor) poll(ctx context.Context, out chan<- listing) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		list, err := s.cfg.Source.List(ctx)
		select {
		case out <- listing{list, err}:
		case <-ctx.Done():
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// observe records a successful listing.
func (s *Supervisor) observe(list []discover.Broadcast) {
	now := s.now()
	present := map[string]bool{}
	for _, b := range list {
		if s.cfg.RelayOverride != "" {
			b.RelayURL = s.cfg.RelayOverride
		}
		if !s.wanted(b.Name) {
			continue
		}
		w, err := workerFor(b)
		if err != nil {
			s.log.Warn("ignoring discovered broadcast", "broadcast", b.Name, "err", err)
			continue
		}
		present[w.Instance] = true
		t, ok := s.tracked[w.Instance]
		if !ok {
			t = &tracked{}
			s.tracked[w.Instance] = t
			s.log.Info("broadcast discovered", "broadcast", w.Broadcast, "instance", w.Instance)
		}
		t.w, t.missingSince = w, time.Time{}
	}
	for inst, t := range s.tracked {
		if !present[inst] && !t.static && t.missingSince.IsZero() {
			t.missingSince = now
			s.log.Info("broadcast no longer listed", "broadcast", t.w.Broadcast, "instance", inst, "grace", s.cfg.Grace)
		}
	}
}

func (s *Supervisor) wanted(name string) bool {
	if s.cfg.Mine != nil && !s.cfg.Mine(name) {
		return false
	}
	for _, p := range s.cfg.Exclude {
		if ok, _ := path.Match(p, name); ok {
			return false
		}
	}
	if len(s.cfg.Include) == 0 {
		return true
	}
	for _, p := range s.cfg.Include {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// desired returns the instances that should run now.
func (s *Supervisor) desired(states map[string]WorkerState) map[string]bool {
	now := s.now()
	want := map[string]bool{}
	var discovered []string
	for inst, t := range s.tracked {
		switch {
		case t.static:
			want[inst] = true
		case t.w.Key == "": // adopted, not rediscovered: keep it running through the grace period
			if now.Sub(t.missingSince) <= s.cfg.Grace {
				want[inst] = true
			}
		case t.missingSince.IsZero() || now.Sub(t.missingSince) <= s.cfg.Grace:
			discovered = append(discovered, inst)
		}
	}
	if s.cfg.MaxWorkers > 0 && len(discovered) > s.cfg.MaxWorkers {
		sort.Slice(discovered, func(i, j int) bool {
			ri, rj := states[discovered[i]].Running, states[discovered[j]].Running
			if ri != rj {
				return ri
			}
			return s.tracked[discovered[i]].w.Key < s.tracked[discovered[j]].w.Key
		})
		s.log.Warn("more broadcasts than --max-broadcasts; archiving only some", "live", len(discovered), "max", s.cfg.MaxWorkers)
		discovered = discovered[:s.cfg.MaxWorkers]
	}
	for _, inst := range discovered {
		want[inst] = true
	}
	return want
}

// reconcile makes the runner's workers match the desired set.
func (s *Supervisor) reconcile(ctx context.Context) {
	states, err := s.cfg.Runner.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("cannot list workers; not acting this round", "err", err)
		}
		return
	}
	now := s.now()
	for inst, st := range states {
		if _, ok := s.tracked[inst]; !ok && st.Running {
			// Started by an earlier supervisor: keep it for one grace period, in
			// which the first listings can claim it.
			s.tracked[inst] = &tracked{w: Worker{Instance: inst}, missingSince: now, started: now}
			s.log.Info("adopted running worker", "instance", inst, "state", st.Detail)
		}
	}
	want := s.desired(states)
	running := 0
	for inst, t := range s.tracked {
		st := states[inst]
		if !want[inst] {
			if st.Running {
				s.log.Info("stopping worker", "broadcast", t.w.Broadcast, "instance", inst, "listed", t.missingSince.IsZero())
				if err := s.cfg.Runner.Stop(ctx, inst); err != nil {
					s.log.Error("stopping worker failed", "instance", inst, "err", err)
					continue
				}
			}
			if !t.missingSince.IsZero() && now.Sub(t.missingSince) > s.cfg.Grace {
				delete(s.tracked, inst)
				delete(s.stale, inst)
				removeStatus(s.cfg.StatusDir, inst)
			}
			continue
		}
		if st.Running {
			running++
			continue
		}
		if !t.started.IsZero() { // it ran and has ended
			if now.Sub(t.started) >= s.cfg.Backoff.Max {
				t.failures = 0
			}
			delay := s.cfg.Backoff.Delay(t.failures)
			t.failures++
			t.nextStart, t.started = now.Add(delay), time.Time{}
			s.log.Warn("worker ended; restarting after backoff", "broadcast", t.w.Broadcast, "instance", inst,
				"detail", st.Detail, "failures", t.failures, "in", delay.Round(time.Millisecond))
		}
		if now.Before(t.nextStart) || t.w.Key == "" { // an adopted worker's broadcast is unknown
			continue
		}
		if err := s.cfg.Runner.Start(ctx, t.w); err != nil {
			delay := s.cfg.Backoff.Delay(t.failures)
			t.failures++
			t.nextStart = now.Add(delay)
			s.log.Error("starting worker failed", "broadcast", t.w.Broadcast, "instance", inst, "err", err, "retry_in", delay.Round(time.Millisecond))
			continue
		}
		t.started = now
		running++
		s.log.Info("worker started", "broadcast", t.w.Broadcast, "relay", moq.RedactURL(t.w.RelayURL), "instance", inst)
	}
	stale := s.checkLiveness(want)
	if s.cfg.Notify != nil {
		s.cfg.Notify(fmt.Sprintf("%d workers running, %d wanted, %d stale", running, len(want), stale))
	}
}
