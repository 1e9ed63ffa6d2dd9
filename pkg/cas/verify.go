package cas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
)

// FindingKind classifies what Verify found.
type FindingKind string

const (
	// Corrupt: an object whose bytes do not hash to its name (flipped bits,
	// truncation, zero fill).
	Corrupt FindingKind = "corrupt"
	// Unreadable: an object or directory that could not be read (I/O error,
	// permissions).
	Unreadable FindingKind = "unreadable"
	// Stray: a file or directory that is not part of the layout: an invalid
	// name, an object in the wrong shard, a symlink, anything unexpected.
	Stray FindingKind = "stray"
	// Temp: a temp file of an unfinished (live or crashed) write. Not an error:
	// CleanTemp removes old ones.
	Temp FindingKind = "temp"
)

// Finding is one problem (or temp file) in a store.
type Finding struct {
	Kind FindingKind `json:"kind"`
	// Path is relative to the root, slash-separated.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Expected and Actual are the id the name claims and the hash of the bytes
	// (Corrupt only).
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
	// Age is the time since the file was last modified (Temp only).
	Age time.Duration `json:"age_ns,omitempty"`
	// Detail says why a file is Stray or Unreadable.
	Detail string `json:"detail,omitempty"`
}

// ObjectCheck is the outcome for one well-placed object, given to
// VerifyOptions.OnObject.
type ObjectCheck struct {
	ID   ID
	Size int64
	// Match is true when the bytes hash to ID.
	Match bool
}

// VerifyProgress is a snapshot of a running Verify.
type VerifyProgress struct {
	Objects int64 // objects hashed so far
	Bytes   int64 // bytes hashed so far
	// ShardsWalked of ShardsTotal shard directories have been listed; since ids
	// are uniform, their ratio estimates the fraction done.
	ShardsWalked, ShardsTotal int
	Elapsed                   time.Duration
}

// VerifyOptions tune Verify. The zero value is ready to use.
type VerifyOptions struct {
	// Workers hash objects in parallel; 0 means runtime.GOMAXPROCS(0).
	Workers int
	// Progress, when set, is called from one goroutine every ProgressInterval
	// (default 250ms) and once more when the walk is complete.
	Progress         func(VerifyProgress)
	ProgressInterval time.Duration
	// OnObject, when set, is called for every object hashed, concurrently from
	// the workers. It is the hook for cross-checking manifests against the store.
	OnObject func(ObjectCheck)
}

// VerifyReport is the result of Verify. Findings are sorted by path.
type VerifyReport struct {
	Root       string        `json:"root"`
	Objects    int64         `json:"objects"` // objects hashed
	Bytes      int64         `json:"bytes"`   // bytes hashed
	Corrupt    int           `json:"corrupt"`
	Unreadable int           `json:"unreadable"`
	Stray      int           `json:"stray"`
	Temp       int           `json:"temp"`
	Duration   time.Duration `json:"duration_ns"`
	Findings   []Finding     `json:"findings"`
}

// Clean reports whether the store has no corrupt, unreadable or stray entries.
// Temp files do not count: live writers have them.
func (r *VerifyReport) Clean() bool { return r.Corrupt == 0 && r.Unreadable == 0 && r.Stray == 0 }

// Verify checks the store; see the package function Verify.
func (l *Local) Verify(ctx context.Context, opts VerifyOptions) (VerifyReport, error) {
	return Verify(ctx, l.root, opts)
}

// Verify re-hashes every object under root/objects/blake3 with bounded
// parallelism and reports objects whose bytes do not match their name, stray
// entries and temp files. It only reads, so it also works on read-only trees
// (snapshots) and never creates anything. An error means the walk itself could
// not be done (not a store, cancelled); problems in the tree are findings.
func Verify(ctx context.Context, root string, opts VerifyOptions) (VerifyReport, error) {
	start := time.Now()
	report := VerifyReport{Root: root}
	objects := filepath.Join(root, "objects", "blake3")
	if fi, err := os.Stat(objects); err != nil || !fi.IsDir() {
		return report, fmt.Errorf("cas: verify: %s is not a CAS root (no objects/blake3 directory)", root)
	}
	if err := checkLayoutFile(filepath.Join(root, LayoutFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return report, fmt.Errorf("cas: verify: %w", err)
	}
	top, err := os.ReadDir(objects)
	if err != nil {
		return report, fmt.Errorf("cas: verify: %w", err)
	}

	v := &verifier{ctx: ctx, objects: objects, onObject: opts.OnObject, start: start}
	for _, e := range top {
		if isShardName(e.Name()) && e.IsDir() {
			v.shardsTotal++
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan hashJob, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.hashWorker(jobs)
		}()
	}
	stopProgress := v.reportProgress(opts)
	v.walk(top, jobs)
	close(jobs)
	wg.Wait()
	stopProgress()

	report.Objects, report.Bytes = v.objectsDone.Load(), v.bytesDone.Load()
	report.Findings = v.findings
	sort.Slice(report.Findings, func(i, j int) bool {
		a, b := report.Findings[i], report.Findings[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Kind < b.Kind
	})
	for _, f := range report.Findings {
		switch f.Kind {
		case Corrupt:
			report.Corrupt++
		case Unreadable:
			report.Unreadable++
		case Stray:
			report.Stray++
		case Temp:
			report.Temp++
		}
	}
	report.Duration = time.Since(start)
	if err := ctx.Err(); err != nil {
		return report, fmt.Errorf("cas: verify: %w", err)
	}
	return report, nil
}

type hashJob struct {
	rel string // slash-separated, relative to objects/blake3
	id  ID
}

type verifier struct {
	ctx      context.Context
	objects  string
	onObject func(ObjectCheck)
	start    time.Time

	shardsTotal  int
	shardsWalked atomic.Int64
	objectsDone  atomic.Int64
	bytesDone    atomic.Int64

	mu       sync.Mutex
	findings []Finding
}

func (v *verifier) add(f Finding) {
	f.Path = path.Join("objects", "blake3", f.Path)
	v.mu.Lock()
	v.findings = append(v.findings, f)
	v.mu.Unlock()
}

// walk lists objects/blake3 one shard at a time, streaming well-named objects
// to the workers, so memory holds one shard's names, not the whole tree's.
func (v *verifier) walk(top []os.DirEntry, jobs chan<- hashJob) {
	for _, e := range top {
		if v.ctx.Err() != nil {
			return
		}
		name := e.Name()
		switch {
		case name == ".tmp" && e.IsDir():
			v.walkTemp()
		case isShardName(name) && e.IsDir():
			v.walkShard(name, jobs)
			v.shardsWalked.Add(1)
		default:
			v.add(Finding{Kind: Stray, Path: name, Size: entrySize(e), Detail: "not a shard directory"})
		}
	}
}

func (v *verifier) walkShard(shard string, jobs chan<- hashJob) {
	entries, err := os.ReadDir(filepath.Join(v.objects, shard))
	if err != nil {
		v.add(Finding{Kind: Unreadable, Path: shard, Detail: err.Error()})
		return
	}
	for _, e := range entries {
		name := e.Name()
		rel := shard + "/" + name
		id, ok := objectName(name)
		switch {
		case !e.Type().IsRegular():
			v.add(Finding{Kind: Stray, Path: rel, Size: entrySize(e), Detail: "not a regular file (" + e.Type().String() + ")"})
		case !ok:
			v.add(Finding{Kind: Stray, Path: rel, Size: entrySize(e), Detail: "not an object name"})
		case name[:2] != shard:
			v.add(Finding{Kind: Stray, Path: rel, Size: entrySize(e), Detail: "object in the wrong shard, belongs in " + name[:2] + "/"})
		default:
			select {
			case jobs <- hashJob{rel: rel, id: id}:
			case <-v.ctx.Done():
				return
			}
		}
	}
}

func (v *verifier) walkTemp() {
	entries, err := os.ReadDir(filepath.Join(v.objects, ".tmp"))
	if err != nil {
		v.add(Finding{Kind: Unreadable, Path: ".tmp", Detail: err.Error()})
		return
	}
	for _, e := range entries {
		rel := ".tmp/" + e.Name()
		if !strings.HasPrefix(e.Name(), TempPrefix) || !e.Type().IsRegular() {
			v.add(Finding{Kind: Stray, Path: rel, Size: entrySize(e), Detail: "not a temp file of this store"})
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // committed or cleaned meanwhile
		}
		v.add(Finding{Kind: Temp, Path: rel, Size: fi.Size(), Age: v.start.Sub(fi.ModTime()).Round(time.Second)})
	}
}

func (v *verifier) hashWorker(jobs <-chan hashJob) {
	buf := make([]byte, 1<<20)
	h := blake3.New()
	for job := range jobs {
		if v.ctx.Err() != nil {
			continue // drain
		}
		h.Reset()
		size, err := v.hashFile(job.rel, h, buf)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the walk (pruned): not a finding
		}
		if err != nil {
			v.add(Finding{Kind: Unreadable, Path: job.rel, Size: size, Detail: err.Error()})
			continue
		}
		var got ID
		h.Sum(got[:0])
		v.objectsDone.Add(1)
		if got != job.id {
			v.add(Finding{Kind: Corrupt, Path: job.rel, Size: size, Expected: job.id.String(), Actual: got.String()})
		}
		if v.onObject != nil {
			v.onObject(ObjectCheck{ID: job.id, Size: size, Match: got == job.id})
		}
	}
}

// hashFile streams one file through h with the worker's buffer. (mmap(2) was
// measured too: page faults cost as much CPU as the copy read(2) makes.)
func (v *verifier) hashFile(rel string, h *blake3.Hasher, buf []byte) (int64, error) {
	f, err := os.Open(filepath.Join(v.objects, filepath.FromSlash(rel)))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var size int64
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		size += int64(n)
		v.bytesDone.Add(int64(n))
		if err == io.EOF {
			return size, nil
		}
		if err != nil {
			return size, err
		}
		if v.ctx.Err() != nil {
			return size, v.ctx.Err()
		}
	}
}

// reportProgress starts the progress ticker; the returned func stops it after a
// final report.
func (v *verifier) reportProgress(opts VerifyOptions) (stop func()) {
	if opts.Progress == nil {
		return func() {}
	}
	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	snapshot := func() VerifyProgress {
		return VerifyProgress{
			Objects: v.objectsDone.Load(), Bytes: v.bytesDone.Load(),
			ShardsWalked: int(v.shardsWalked.Load()), ShardsTotal: v.shardsTotal,
			Elapsed: time.Since(v.start),
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				opts.Progress(snapshot())
			case <-done:
				opts.Progress(snapshot())
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

func isShardName(name string) bool {
	return len(name) == 2 && isLowerHex(name)
}

// objectName parses "<64 lowercase hex>.bin".
func objectName(name string) (ID, bool) {
	hexPart, ok := strings.CutSuffix(name, ".bin")
	if !ok || len(hexPart) != 2*IDSize || !isLowerHex(hexPart) {
		return ID{}, false
	}
	id, err := ParseID(hexPart)
	return id, err == nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// entrySize is the size of a stray entry, or 0 when it cannot be had.
func entrySize(e os.DirEntry) int64 {
	fi, err := e.Info()
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}
