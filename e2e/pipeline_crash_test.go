//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/zeebo/blake3"
)

// streamGroup is a group written into a test record stream.
type streamGroup struct {
	broadcast, track string
	seq              uint64
	blake3           string
}

// writeRecordStream writes a record stream of n groups with random sizes (some
// repeating an earlier payload, so the store sees dedup hits) spread over
// several tracks, with a gap now and then, and returns its groups.
func writeRecordStream(t *testing.T, path string, rng *rand.Rand, n int, tracks [][2]string) []streamGroup {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := record.NewWriter(f)
	var groups []streamGroup
	var payloads [][]byte
	for i := range n {
		bt := tracks[i%len(tracks)]
		seq := uint64(i/len(tracks) + 1)
		var p []byte
		if i > 0 && rng.IntN(10) == 0 {
			p = payloads[rng.IntN(len(payloads))]
		} else {
			p = make([]byte, rng.IntN(128<<10))
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			payloads = append(payloads, p)
		}
		split := int64(rng.IntN(len(p) + 1))
		h := record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: bt[0], Track: bt[1], Group: seq,
			Frames: []int64{split, int64(len(p)) - split}, Size: int64(len(p)), ReceivedUnixMs: 1700000000000 + int64(i)}
		if err := w.WriteGroup(h, bytes.NewReader(p)); err != nil {
			t.Fatal(err)
		}
		id := cas.ID(blake3.Sum256(p))
		groups = append(groups, streamGroup{bt[0], bt[1], seq, id.String()})
		if i%50 == 49 {
			g := record.Header{V: record.Version, Kind: record.KindGap, Broadcast: bt[0], Track: bt[1],
				First: seq + 1000, Last: seq + 1001, Reason: record.GapSkipped, ReceivedUnixMs: 1700000000000 + int64(i)}
			if err := w.WriteGap(g); err != nil {
				t.Fatal(err)
			}
		}
	}
	return groups
}

// pipelineRun is the outcome of one `cas-put --records | manifest-append` run.
type pipelineRun struct {
	killed           bool // the victim was killed before the pipeline finished
	casPutErr        error
	appendErr        error
	casPutLog, apLog string
}

// runPipeline runs cas-put --records < stream | manifest-append as two real
// processes joined by a pipe. With killWhen set, it polls it every millisecond
// and sends SIGKILL to the victim (0: cas-put, 1: manifest-append) once it
// reports true.
func runPipeline(t *testing.T, stream, root, mdir string, killWhen func() bool, victim int) pipelineRun {
	t.Helper()
	in, err := os.Open(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var putLog, apLog bytes.Buffer
	put := exec.Command(buildBinary(t, "cas-put"), "--root", root, "--records")
	put.Stdin, put.Stdout, put.Stderr = in, pw, &putLog
	ap := exec.Command(buildBinary(t, "manifest-append"), "--manifest-dir", mdir)
	ap.Stdin, ap.Stderr = pr, &apLog
	if err := put.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ap.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pr.Close()
	var run pipelineRun
	done := make(chan struct{})
	if killWhen != nil {
		procs := []*exec.Cmd{put, ap}
		go func() {
			for !killWhen() {
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
			}
			procs[victim].Process.Signal(syscall.SIGKILL)
		}()
	}
	run.casPutErr, run.appendErr = put.Wait(), ap.Wait()
	close(done)
	run.casPutLog, run.apLog = putLog.String(), apLog.String()
	victimErr := []error{run.casPutErr, run.appendErr}
	if killWhen != nil {
		run.killed = killedBySIGKILL(victimErr[victim])
	}
	return run
}

// objectCount counts the published objects of the CAS at root.
func objectCount(root string) int {
	n := 0
	filepath.WalkDir(filepath.Join(root, "objects", "blake3"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".bin") {
			n++
		}
		return nil
	})
	return n
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// checkStores runs the store verification and the manifest check; it fails the
// test on anything but torn tails, whose count it returns.
func checkStores(t *testing.T, root, mdir string) (torn int) {
	t.Helper()
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join(root, "objects", "blake3")); errors.Is(err, os.ErrNotExist) {
		return 0 // killed before cas-put created the store
	}
	vr, err := cas.Verify(ctx, root, cas.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !vr.Clean() {
		t.Fatalf("cas verify: %+v", vr.Findings)
	}
	store, err := cas.OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mdir); errors.Is(err, os.ErrNotExist) {
		return 0
	}
	rep, err := manifest.Check(ctx, mdir, store, manifest.CheckOptions{Rehash: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if p.Kind != manifest.ProblemTornTail {
			t.Fatalf("manifest check: %+v", rep.Problems)
		}
		torn++
	}
	return torn
}

// manifestGroups counts each (broadcast, track, group, blake3) in the manifests.
func manifestGroups(t *testing.T, mdir string) map[streamGroup]int {
	t.Helper()
	seen := make(map[streamGroup]int)
	for _, entries := range readManifests(t, mdir) {
		for _, e := range entries {
			if e.Kind == record.KindGroup {
				seen[streamGroup{e.Broadcast, e.Track, e.Group, e.BLAKE3}]++
			}
		}
	}
	return seen
}

// tearRandomManifest appends half a line to one manifest file, as a power loss
// during a write could leave (SIGKILL cannot: write(2) completes or not).
func tearRandomManifest(t *testing.T, rng *rand.Rand, mdir string) bool {
	t.Helper()
	var files []string
	filepath.WalkDir(mdir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != manifest.SessionLogName {
			files = append(files, path)
		}
		return nil
	})
	if len(files) == 0 {
		return false
	}
	f, err := os.OpenFile(files[rng.IntN(len(files))], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(`{"v":1,"kind":"group","broadcast":"torn`)
	return true
}

// TestPipelineCrash kills cas-put or manifest-append (alternately) with SIGKILL
// at random moments, re-feeding the same stream each time, and checks after
// every kill that the store and manifests are consistent; after a final full run
// every group of the stream is in the manifests exactly once. It runs in epochs,
// each starting from empty stores. While objects are missing, each kill comes
// once the CAS has grown past a random object count, so that kills land while
// objects and lines are being written whatever the machine's speed; once it is
// complete, kills come after a random delay within a run's duration.
func TestPipelineCrash(t *testing.T) {
	const epochs, killsPerEpoch, maxRunsPerEpoch = 5, 11, 40
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	work := t.TempDir()
	stream := filepath.Join(work, "stream.records")
	tracks := [][2]string{{"live/alice", "video0"}, {"live/alice", "audio0"}, {"../bob", "video/0"}}
	groups := writeRecordStream(t, stream, rng, 300, tracks)
	buildBinary(t, "cas-put")
	buildBinary(t, "manifest-append")

	// Calibrate: how long a full run into empty stores takes on this machine.
	start := time.Now()
	if run := runPipeline(t, stream, filepath.Join(work, "cal-cas"), filepath.Join(work, "cal-man"), nil, 0); run.casPutErr != nil || run.appendErr != nil {
		t.Fatalf("calibration run: %v %v\n%s%s", run.casPutErr, run.appendErr, run.casPutLog, run.apLog)
	}
	full := time.Since(start)
	distinct := objectCount(filepath.Join(work, "cal-cas"))
	t.Logf("a full run into empty stores takes %v and stores %d objects", full, distinct)

	var killed, killedPartial, finished, tornInjected int
	for epoch := range epochs {
		root := filepath.Join(work, fmt.Sprint("cas", epoch))
		mdir := filepath.Join(work, fmt.Sprint("manifests", epoch))
		var progress []int // group entries after each kill
		injectedLast := false
		epochKills, est, n := 0, full, 0
		for i := 0; epochKills < killsPerEpoch; i++ {
			if i == maxRunsPerEpoch {
				t.Fatalf("epoch %d: only %d of %d runs were killed before finishing", epoch, epochKills, i)
			}
			victim := i % 2
			var killWhen func() bool
			// Progress is read from the CAS, which grows object by object;
			// manifest-append may write many lines at once.
			if objs := objectCount(root); objs < distinct-1 {
				target := objs + 1 + rng.IntN(distinct-1-objs)
				killWhen = func() bool { return objectCount(root) >= target }
			} else {
				// Re-runs find objects and lines already there and finish
				// sooner, so the delay range follows the last run that finished.
				deadline := time.Now().Add(time.Duration(rng.Int64N(int64(est) + 1)))
				killWhen = func() bool { return time.Now().After(deadline) }
			}
			runStart := time.Now()
			run := runPipeline(t, stream, root, mdir, killWhen, victim)
			if !run.killed {
				est = time.Since(runStart)
			}
			torn := checkStores(t, root, mdir)
			if injectedLast && torn > 0 && !run.killed {
				t.Fatalf("epoch %d run %d finished but left a torn tail unrepaired", epoch, i)
			}
			n = 0
			for _, c := range manifestGroups(t, mdir) {
				n += c
			}
			if run.killed {
				epochKills++
			}
			switch {
			case !run.killed:
				finished++
			case n < len(groups):
				killed++
				killedPartial++
			default:
				killed++
			}
			progress = append(progress, n)
			injectedLast = false
			if i%6 == 5 && tearRandomManifest(t, rng, mdir) {
				tornInjected++
				injectedLast = true
				if checkStores(t, root, mdir) != 1 {
					t.Fatal("manifest check missed an injected torn tail")
				}
			}
		}
		run := runPipeline(t, stream, root, mdir, nil, 0)
		if run.casPutErr != nil || run.appendErr != nil {
			t.Fatalf("epoch %d final run: %v %v\n%s%s", epoch, run.casPutErr, run.appendErr, run.casPutLog, run.apLog)
		}
		if torn := checkStores(t, root, mdir); torn != 0 {
			t.Fatalf("epoch %d: %d torn tails after the final run", epoch, torn)
		}
		seen := manifestGroups(t, mdir)
		for _, g := range groups {
			if seen[g] != 1 {
				t.Fatalf("epoch %d: group %+v appears %d times", epoch, g, seen[g])
			}
		}
		if len(seen) != len(groups) {
			t.Fatalf("epoch %d: manifests hold %d distinct groups, the stream %d", epoch, len(seen), len(groups))
		}
		t.Logf("epoch %d: group entries after each run %v; final run: all %d groups once", epoch, progress, len(groups))
	}
	// Every epoch starts from empty stores with a kill on CAS progress, so each
	// has at least one kill in the middle of the work.
	if killedPartial < epochs {
		t.Fatalf("only %d of %d kills left the manifests incomplete", killedPartial, killed)
	}
	t.Logf("full run %v; %d SIGKILLs (%d with work still to do), %d runs finished first; %d torn tails injected, all repaired",
		full.Round(time.Millisecond), killed, killedPartial, finished, tornInjected)
}
