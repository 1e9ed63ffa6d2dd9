package supervise

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/backoff"
	"github.com/every-channel/ec-node/pkg/discover"
)

// fakeRunner is a stand-in Runner that records calls; tests flip worker states.
type fakeRunner struct {
	states  map[string]WorkerState
	workers map[string]Worker
	calls   []string
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{states: map[string]WorkerState{}, workers: map[string]Worker{}}
}

func (f *fakeRunner) Start(_ context.Context, w Worker) error {
	f.calls = append(f.calls, "start "+w.Broadcast)
	f.states[w.Instance] = WorkerState{Running: true}
	f.workers[w.Instance] = w
	return nil
}

func (f *fakeRunner) Stop(_ context.Context, inst string) error {
	f.calls = append(f.calls, "stop "+f.workers[inst].Broadcast)
	delete(f.states, inst)
	return nil
}

func (f *fakeRunner) List(context.Context) (map[string]WorkerState, error) {
	out := map[string]WorkerState{}
	for k, v := range f.states {
		out[k] = v
	}
	return out, nil
}

func (f *fakeRunner) Shutdown(context.Context) error { return nil }

func (f *fakeRunner) takeCalls() string {
	c := f.calls
	f.calls = nil
	sort.Strings(c)
	return strings.Join(c, ", ")
}

func (f *fakeRunner) crash(broadcast string) {
	for inst, w := range f.workers {
		if w.Broadcast == broadcast {
			f.states[inst] = WorkerState{Failed: true, Detail: "boom"}
		}
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func bc(names ...string) []discover.Broadcast {
	var out []discover.Broadcast
	for _, n := range names {
		out = append(out, discover.Broadcast{RelayURL: "https://relay.test/anon", Name: n})
	}
	return out
}

func newTestSupervisor(t *testing.T, cfg Config) (*Supervisor, *fakeRunner, *clock) {
	t.Helper()
	r := newFakeRunner()
	cfg.Runner = r
	if cfg.Source == nil && cfg.Static == nil {
		cfg.Source = &discover.DirectorySource{}
	}
	cfg.Grace = time.Minute
	cfg.Backoff = backoff.Policy{Min: 10 * time.Second, Max: 80 * time.Second}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s.now = c.now
	return s, r, c
}

func TestSupervisorFollowsDiscovery(t *testing.T) {
	s, r, c := newTestSupervisor(t, Config{Static: bc("static-one")})
	ctx := context.Background()

	s.observe(bc("a", "b"))
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "start a, start b, start static-one" {
		t.Fatalf("first pass: %s", got)
	}
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "" {
		t.Fatalf("steady state made calls: %s", got)
	}

	// b leaves the listing, c joins; b keeps running through the grace period.
	c.advance(10 * time.Second)
	s.observe(bc("a", "c"))
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "start c" {
		t.Fatalf("after b left: %s", got)
	}
	c.advance(40 * time.Second)
	s.observe(bc("a", "c"))
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "" {
		t.Fatalf("within grace: %s", got)
	}
	c.advance(30 * time.Second)
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "stop b" {
		t.Fatalf("after grace: %s", got)
	}
	// The static broadcast survives an empty listing.
	s.observe(nil)
	c.advance(2 * time.Minute)
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "stop a, stop c" {
		t.Fatalf("empty listing: %s", got)
	}
	if len(r.states) != 1 {
		t.Errorf("running %v, want only static-one", r.states)
	}
}

func TestSupervisorBackoffAfterCrash(t *testing.T) {
	s, r, c := newTestSupervisor(t, Config{})
	ctx := context.Background()
	s.observe(bc("a"))
	s.reconcile(ctx)
	r.takeCalls()

	var restarts []time.Duration
	start := c.t
	for i := 0; i < 6; i++ {
		r.crash("a")
		// Step in 1 s increments until the supervisor restarts it.
		for step := 0; ; step++ {
			s.reconcile(ctx)
			if r.takeCalls() == "start a" {
				break
			}
			if step > 200 {
				t.Fatalf("crash %d: no restart after %d s", i, step)
			}
			c.advance(time.Second)
		}
		restarts = append(restarts, c.t.Sub(start))
		start = c.t
	}
	// Delays double from 10 s (jittered to [d/2, d]) and stay at most 80 s.
	nominal := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, d := range restarts {
		lo, hi := nominal[i]*time.Second/2, nominal[i]*time.Second+time.Second
		if d < lo || d > hi {
			t.Errorf("restart %d after %v, want within [%v, %v] (all: %v)", i, d, lo, hi, restarts)
		}
	}
	// A worker that ran longer than the cap starts again from the minimum.
	c.advance(100 * time.Second)
	r.crash("a")
	s.reconcile(ctx)
	if tr := s.tracked[s.instanceOf(t, "a")]; tr.failures != 1 {
		t.Errorf("failures after a long run = %d, want 1", tr.failures)
	}
}

func (s *Supervisor) instanceOf(t *testing.T, name string) string {
	for inst, tr := range s.tracked {
		if tr.w.Broadcast == name {
			return inst
		}
	}
	t.Fatalf("%s not tracked", name)
	return ""
}

func TestSupervisorFiltersOverrideAndCap(t *testing.T) {
	s, r, _ := newTestSupervisor(t, Config{
		Include:       []string{"us/*", "la-*"},
		Exclude:       []string{"us/test*"},
		RelayOverride: "https://10.0.0.7:4443/anon?jwt=x",
		MaxWorkers:    3,
	})
	ctx := context.Background()
	s.observe(bc("us/b", "us/a", "us/test1", "la-nbc", "eu/x", "us/deep/x", "la-abc"))
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "start la-abc, start la-nbc, start us/a" {
		t.Fatalf("got %s", got)
	}
	for _, w := range r.workers {
		if w.RelayURL != "https://10.0.0.7:4443/anon?jwt=x" || !strings.HasPrefix(w.Key, "10.0.0.7:4443/anon|") {
			t.Errorf("worker %+v ignores the relay override", w)
		}
	}
	// Running workers keep their slots when a name sorting earlier appears.
	s.observe(bc("la-aaa", "us/b", "us/a", "la-nbc", "la-abc"))
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "" {
		t.Errorf("cap churned workers: %s", got)
	}
}

func TestSupervisorKeepsOnlyItsShard(t *testing.T) {
	s, r, _ := newTestSupervisor(t, Config{Mine: func(name string) bool { return strings.HasSuffix(name, "-mine") }})
	s.observe(bc("a-mine", "b-other", "c-mine"))
	s.reconcile(context.Background())
	if got := r.takeCalls(); got != "start a-mine, start c-mine" {
		t.Fatalf("got %s, want only this host's share started", got)
	}
}

func TestSupervisorAdoptsRunningWorkers(t *testing.T) {
	s, r, c := newTestSupervisor(t, Config{})
	ctx := context.Background()
	w, _ := workerFor(bc("a")[0])
	orphan, _ := workerFor(bc("gone")[0])
	r.states[w.Instance] = WorkerState{Running: true}
	r.states[orphan.Instance] = WorkerState{Running: true}
	r.workers[orphan.Instance] = orphan

	s.reconcile(ctx) // before the first listing: adopt, start nothing, stop nothing
	if got := r.takeCalls(); got != "" {
		t.Fatalf("adoption made calls: %s", got)
	}
	s.observe(bc("a"))
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "" {
		t.Fatalf("rediscovered worker was restarted: %s", got)
	}
	c.advance(2 * time.Minute)
	s.observe(bc("a"))
	s.reconcile(ctx)
	if got := r.takeCalls(); got != "stop gone" {
		t.Fatalf("orphan after grace: %s", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no runner":      {Source: &discover.DirectorySource{}},
		"nothing to do":  {Runner: newFakeRunner()},
		"bad pattern":    {Runner: newFakeRunner(), Source: &discover.DirectorySource{}, Include: []string{"["}},
		"http override":  {Runner: newFakeRunner(), Source: &discover.DirectorySource{}, RelayOverride: "http://x"},
		"bad static":     {Runner: newFakeRunner(), Static: []discover.Broadcast{{RelayURL: "https://r", Name: "../x"}}},
		"negative limit": {Runner: newFakeRunner(), Source: &discover.DirectorySource{}, MaxWorkers: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

// failingSource is a stand-in discovery source that is down.
type failingSource struct{ calls chan struct{} }

func (f failingSource) List(context.Context) ([]discover.Broadcast, error) {
	f.calls <- struct{}{}
	return nil, fmt.Errorf("directory down")
}

func TestRunKeepsWorkersWhileDiscoveryFails(t *testing.T) {
	src := failingSource{calls: make(chan struct{}, 100)}
	r := newFakeRunner()
	var summaries []string
	s, err := New(Config{Runner: r, Source: src, Static: bc("s"), PollInterval: time.Millisecond,
		Tick: time.Millisecond, Grace: time.Millisecond, Notify: func(m string) { summaries = append(summaries, m) }})
	if err != nil {
		t.Fatal(err)
	}
	s.tracked["adopted-x"] = &tracked{w: Worker{Instance: "x", Key: "k", Broadcast: "x"}}
	r.states["adopted-x"] = WorkerState{Running: true}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for i := 0; i < 5; i++ {
			<-src.calls
		}
		time.Sleep(10 * time.Millisecond)
		cancel()
	}()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.takeCalls(); got != "start s" {
		t.Errorf("calls while discovery failed: %s", got)
	}
	if len(summaries) == 0 || !strings.Contains(summaries[len(summaries)-1], "2 workers running") {
		t.Errorf("summaries %v", summaries)
	}
}
