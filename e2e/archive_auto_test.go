//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/supervise"
)

// directoryServer serves a public-streams directory in the deployed shape (the
// ECP-0068 relay transport fields) whose entries the test changes at will.
type directoryServer struct {
	*httptest.Server
	mu      sync.Mutex
	entries map[string]string // broadcast -> relay URL
}

func newDirectoryServer(t *testing.T) *directoryServer {
	d := &directoryServer{entries: map[string]string{}}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		type entry struct {
			StreamID      string `json:"stream_id"`
			RelayURL      string `json:"relay_url"`
			BroadcastName string `json:"broadcast_name"`
			TrackName     string `json:"track_name"`
			UpdatedUnixMs int64  `json:"updated_unix_ms"`
		}
		list := []entry{}
		for name, relay := range d.entries {
			list = append(list, entry{StreamID: "sid-" + name, RelayURL: relay, BroadcastName: name,
				TrackName: "video0.m4s", UpdatedUnixMs: time.Now().UnixMilli()})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *directoryServer) set(name, relay string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if relay == "" {
		delete(d.entries, name)
	} else {
		d.entries[name] = relay
	}
}

// archiveFixture is a relay with publishers, for archive-auto to find.
type archiveFixture struct {
	t     *testing.T
	ctx   context.Context
	relay *peers.Relay
	pubs  map[string]*peers.Publisher
	logs  string
}

func newArchiveFixture(t *testing.T) *archiveFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &archiveFixture{t: t, ctx: ctx, pubs: map[string]*peers.Publisher{}, logs: t.TempDir()}
	relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{LogDir: f.logs})
	if err != nil {
		t.Fatal(err)
	}
	f.relay = relay
	t.Cleanup(func() { relay.Kill() })
	return f
}

func (f *archiveFixture) publish(name string) {
	f.t.Helper()
	dir := filepath.Join(f.logs, "pub-"+name)
	os.MkdirAll(dir, 0o755)
	p, err := peers.StartPublisher(f.ctx, f.relay, name, f.t.Logf, peers.PublisherOptions{LogDir: dir, Size: "160x120", FPS: 10})
	if err != nil {
		f.t.Fatal(err)
	}
	f.pubs[name] = p
	f.t.Cleanup(func() { p.Kill() })
}

func (f *archiveFixture) unpublish(name string) {
	f.t.Helper()
	if err := f.pubs[name].Stop(); err != nil {
		f.t.Logf("stopping publisher %s: %v", name, err)
	}
	delete(f.pubs, name)
}

// restartRelay restarts the relay (new certificate) and the publishers, which
// pin the old certificate and do not reconnect by themselves.
func (f *archiveFixture) restartRelay() {
	f.t.Helper()
	var names []string
	for name := range f.pubs {
		names = append(names, name)
		f.pubs[name].Kill()
	}
	if err := f.relay.Restart(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	for _, name := range names {
		f.publish(name)
	}
}

// autoProcess is a running `ec-node archive-auto`.
type autoProcess struct {
	cmd       *exec.Cmd
	log       *bytes.Buffer
	mu        *sync.Mutex
	statusDir string
	done      chan struct{}
}

func startArchiveAuto(t *testing.T, args ...string) *autoProcess {
	t.Helper()
	root := t.TempDir()
	p := &autoProcess{log: &bytes.Buffer{}, mu: &sync.Mutex{}, statusDir: filepath.Join(root, "status"), done: make(chan struct{})}
	if !slices.Contains(args, "--store") { // else the caller names the CAS
		args = append([]string{"--output-dir", filepath.Join(root, "cas")}, args...)
	}
	args = append([]string{"archive-auto", "--mode", "inprocess", "--manifest-dir", filepath.Join(root, "manifests"),
		"--status-dir", p.statusDir, "--poll-interval", "1s", "--grace", "3s", "--stale", "1m",
		"--tls-disable-verify", "--announce-wait", "5s", "--max-backoff", "2s"}, args...)
	p.cmd = exec.Command(buildBinary(t, "ec-node"), args...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			t.Error("archive-auto did not stop within 15 s of SIGINT")
		}
		if t.Failed() {
			t.Logf("archive-auto log:\n%s", p.logText())
		}
	})
	return p
}

func (p *autoProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// statusView is where `ec-node archive-status` reads the workers' status files:
// a directory, and the command that runs archive-status (nil: the built binary
// here; the systemd test runs it inside its private mount namespace).
type statusView struct {
	dir     string
	command func(args ...string) *exec.Cmd
}

// groups returns groups archived per broadcast, from `ec-node archive-status --json`.
func groupsByBroadcast(t *testing.T, v statusView) map[string]int64 {
	t.Helper()
	args := []string{"archive-status", "--status-dir", v.dir, "--json", "--stale", "1h"}
	var cmd *exec.Cmd
	if v.command != nil {
		cmd = v.command(args...)
	} else {
		cmd = exec.Command(buildBinary(t, "ec-node"), args...)
	}
	out, _ := cmd.Output() // a non-zero exit only means stale or none yet
	groups := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r supervise.Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("archive-status line %q: %v", line, err)
		}
		if r.State != "stopped" {
			groups[r.Broadcast] = r.Groups
		}
	}
	return groups
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, last)
}

// archiving waits until exactly the given broadcasts have workers and each has
// archived more than the given number of groups.
func archiving(t *testing.T, v statusView, want map[string]int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("workers archiving %v", want), 60*time.Second, func() (bool, string) {
		got := groupsByBroadcast(t, v)
		if len(got) != len(want) {
			return false, fmt.Sprint(got)
		}
		for name, min := range want {
			if g, ok := got[name]; !ok || g <= min {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
}

// TestArchiveAutoFollowsDirectory: archive-auto (in-process) archives every
// broadcast of a directory, stops the worker of one that leaves it, starts one
// for a newcomer, and keeps archiving across a relay restart.
func TestArchiveAutoFollowsDirectory(t *testing.T) {
	f := newArchiveFixture(t)
	dir := newDirectoryServer(t)
	url := f.relay.URL("anon")
	for _, name := range []string{"e2e-a", "e2e-b"} {
		f.publish(name)
		dir.set(name, url)
	}
	dir.set("../escape", url) // hostile entry: skipped with a warning
	auto := startArchiveAuto(t, "--directory", dir.URL)
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": 2, "e2e-b": 2})
	if !strings.Contains(auto.logText(), "skipping entry") {
		t.Error("no warning about the hostile directory entry")
	}

	dir.set("e2e-b", "")
	f.publish("e2e-c")
	dir.set("e2e-c", url)
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": 2, "e2e-c": 2})
	if !strings.Contains(auto.logText(), `msg="stopping worker" broadcast=e2e-b`) {
		t.Error("no log of e2e-b's worker being stopped")
	}

	before := groupsByBroadcast(t, statusView{dir: auto.statusDir})
	f.restartRelay()
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": before["e2e-a"] + 3, "e2e-c": before["e2e-c"] + 3})
}

// TestArchiveAutoFollowsAnnouncements: the same driven by the relay's own
// announcements, with no web directory.
func TestArchiveAutoFollowsAnnouncements(t *testing.T) {
	f := newArchiveFixture(t)
	f.publish("e2e-a")
	f.publish("e2e-b")
	auto := startArchiveAuto(t, "--directory", "", "--relay-announce", f.relay.URL("anon"))
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": 2, "e2e-b": 2})

	f.unpublish("e2e-b")
	f.publish("e2e-c")
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": 2, "e2e-c": 2})

	before := groupsByBroadcast(t, statusView{dir: auto.statusDir})
	f.restartRelay()
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": before["e2e-a"] + 3, "e2e-c": before["e2e-c"] + 3})
}
