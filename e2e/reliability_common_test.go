//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// The reliability suite (RELIABILITY.md) runs a short mode inside the default
// test command and a long mode with EC_SOAK=1 (scripts/reliability.sh --long).
// Every measured figure is logged on a line starting "RELIABILITY:", which
// scripts/reliability.sh collects.

// soakMode reports whether the long modes run.
func soakMode() bool { return os.Getenv("EC_SOAK") == "1" }

// bySoak returns long in soak mode and short otherwise.
func bySoak[T any](short, long T) T {
	if soakMode() {
		return long
	}
	return short
}

// figure logs one measured figure of a scenario.
func figure(t *testing.T, scenario, format string, args ...any) {
	t.Helper()
	t.Logf("RELIABILITY: %s: %s", scenario, fmt.Sprintf(format, args...))
}

// gop is the publisher's group length (peers.StartPublisher: -g = FPS).
const gop = time.Second

// archiverProc is one `ec-node wt-archive` that a test kills and restarts; all
// its runs log into one file.
type archiverProc struct {
	t    *testing.T
	args []string
	log  string
	cmd  *exec.Cmd
	done chan error
}

// newArchiver prepares wt-archive of broadcast from url into the CAS root cas
// and the manifest root mdir, logging into dir/name.log. extra flags follow.
func newArchiver(t *testing.T, dir, name, url, broadcast, cas, mdir string, extra ...string) *archiverProc {
	args := append([]string{"wt-archive", "--url", url, "--name", broadcast,
		"--output-dir", cas, "--manifest-dir", mdir}, extra...)
	a := &archiverProc{t: t, args: args, log: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		a.kill()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, lastLines(a.logText(), 30))
		}
	})
	return a
}

func (a *archiverProc) start() {
	a.t.Helper()
	log, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	a.cmd = exec.Command(buildBinary(a.t, "ec-node"), a.args...)
	a.cmd.Stderr = log
	if err := a.cmd.Start(); err != nil {
		log.Close()
		a.t.Fatal(err)
	}
	a.done = make(chan error, 1)
	go func() { a.done <- a.cmd.Wait(); log.Close() }()
}

// running reports whether the process has not exited yet.
func (a *archiverProc) running() bool {
	if a.done == nil {
		return false
	}
	select {
	case err := <-a.done:
		a.done <- err
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit.
func (a *archiverProc) kill() {
	if a.cmd == nil || a.done == nil {
		return
	}
	_ = a.cmd.Process.Kill()
	err := <-a.done
	a.done <- err
}

// stop sends SIGTERM and returns the exit error.
func (a *archiverProc) stop() error {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(20 * time.Second):
		a.kill()
		return errors.New("wt-archive did not stop within 20s of SIGTERM")
	}
}

// wait waits up to d for the process to exit by itself.
func (a *archiverProc) wait(d time.Duration) (exited bool, err error) {
	select {
	case err := <-a.done:
		a.done <- err
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

func (a *archiverProc) logText() string {
	data, _ := os.ReadFile(a.log)
	return string(data)
}

// trackKey names one manifest file.
type trackKey struct{ broadcast, track string }

// readManifests decodes every manifest file under mdir; a torn last line
// (checkStores counts those) ends its file.
func readManifests(t *testing.T, mdir string) map[trackKey][]manifest.Entry {
	t.Helper()
	out := map[trackKey][]manifest.Entry{}
	err := filepath.WalkDir(mdir, func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".jsonl") || d.Name() == manifest.SessionLogName {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := manifest.NewDecoder(f)
		for {
			e, err := dec.Next()
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			k := trackKey{e.Broadcast, e.Track}
			out[k] = append(out[k], e)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// accounting is what one track's manifest says about its sequence range.
type accounting struct {
	groups    int             // group records
	gaps      []record.Header // gap records
	gapGroups int             // sequences inside gap records
	first     uint64
	last      uint64
	received  map[uint64]time.Time // group sequence -> receive time
}

// account requires every sequence from the track's first to its last record
// to be either archived once or inside a gap record, and no group twice.
func account(t *testing.T, name string, entries []manifest.Entry) accounting {
	t.Helper()
	a := accounting{first: math.MaxUint64, received: map[uint64]time.Time{}}
	seen := map[uint64]string{}
	mark := func(s uint64, what string) {
		if prev, dup := seen[s]; dup && (what == "group" && prev == "group") {
			t.Errorf("%s: group %d archived twice", name, s)
		}
		if seen[s] != "group" {
			seen[s] = what
		}
		a.first, a.last = min(a.first, s), max(a.last, s)
	}
	for _, e := range entries {
		if e.Kind == record.KindGap {
			a.gaps = append(a.gaps, e.Header)
			a.gapGroups += int(e.Last - e.First + 1)
			for s := e.First; s <= e.Last; s++ {
				mark(s, "gap")
			}
			continue
		}
		a.groups++
		mark(e.Group, "group")
		a.received[e.Group] = time.UnixMilli(e.ReceivedUnixMs)
	}
	if len(seen) == 0 {
		return a
	}
	var holes []string
	for s := a.first; s <= a.last; s++ {
		if seen[s] == "" {
			holes = append(holes, fmt.Sprint(s))
		}
	}
	if len(holes) > 0 {
		t.Errorf("%s: sequences neither archived nor in a gap record: %s", name, strings.Join(holes, ","))
	}
	return a
}

// outage is one run of consecutive sequences that were not archived.
type outage struct {
	lost, bound int
	down        time.Duration
}

// lossPerOutage finds the runs of sequences that are not archived between two
// archived groups, attributes each to the first fault after the group before
// it, and returns the groups lost and the bound they should stay within: the
// group in flight at the fault plus one per GOP from the fault to the receipt
// of the group after the run.
func lossPerOutage(a accounting, faults []time.Time) []outage {
	var out []outage
	for s := a.first; s <= a.last; s++ {
		if _, ok := a.received[s]; ok || s == a.first {
			continue
		}
		end := s
		for end < a.last {
			if _, ok := a.received[end+1]; ok {
				break
			}
			end++
		}
		before, ok := a.received[s-1]
		after, ok2 := a.received[end+1]
		if ok && ok2 {
			if i := slices.IndexFunc(faults, func(f time.Time) bool { return f.After(before) }); i >= 0 {
				down := after.Sub(faults[i])
				out = append(out, outage{
					lost:  int(end - s + 1),
					bound: 1 + int(math.Ceil(down.Seconds()/gop.Seconds())),
					down:  down,
				})
			}
		}
		s = end
	}
	return out
}

// percentile returns the p-th percentile (0..100) of ds by nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// lastLines returns the last n lines of s, for failure messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
