package cas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/internal/safefs"
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
	return verify(ctx, l.root, l.path, opts)
}

// Verify re-hashes every object under root/objects/blake3 with bounded
// parallelism and reports objects whose bytes do not match their name, stray
// entries and temp files. It only reads, so it also works on read-only trees
// (snapshots) and never creates anything. An error means the walk itself could
// not be done (not a store, cancelled); problems in the tree are findings.
//
// root is resolved once; below it no symbolic link is followed and no special
// file is read: every link, FIFO, socket or device in the root, in objects/ or
// below objects/blake3 is a Stray finding, also when it is swapped in while
// Verify runs. Every read stops at the size the file had when opened, so
// Verify ends whatever is done to the tree meanwhile.
func Verify(ctx context.Context, root string, opts VerifyOptions) (VerifyReport, error) {
	r, err := safefs.OpenRoot(root)
	if err != nil {
		return VerifyReport{Root: root}, fmt.Errorf("cas: verify: %w", err)
	}
	return verify(ctx, r, root, opts)
}

func verify(ctx context.Context, root *safefs.Root, name string, opts VerifyOptions) (VerifyReport, error) {
	start := time.Now()
	report := VerifyReport{Root: name}
	v := &verifier{ctx: ctx, root: root, onObject: opts.OnObject, start: start}
	top, err := v.checkLayout()
	if err != nil {
		return report, fmt.Errorf("cas: verify: %w", err)
	}
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
	rel string // slash-separated, relative to the root
	id  ID
}

type verifier struct {
	ctx      context.Context
	root     *safefs.Root
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
	v.mu.Lock()
	v.findings = append(v.findings, f)
	v.mu.Unlock()
}

// checkLayout checks the levels above the shards and returns the entries of
// objects/blake3. It reports every symbolic link and special file in the root
// and in objects/ (a linked objects/ or objects/blake3 is reported and not
// walked), and checks layout.json when there is a regular one.
func (v *verifier) checkLayout() ([]os.DirEntry, error) {
	fi, err := v.root.Lstat(objectsDir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
		return nil, fmt.Errorf("%s is not a CAS root (no objects/blake3 directory)", v.root.Path())
	}
	if err != nil && !safefs.IsWrongKind(err) {
		return nil, err
	}
	if err := checkLayoutFile(v.root); err != nil && !errors.Is(err, fs.ErrNotExist) && !safefs.IsWrongKind(err) {
		return nil, err
	}
	for _, dir := range []string{".", "objects"} {
		entries, err := v.root.ReadDir(dir)
		if safefs.IsWrongKind(err) {
			continue // objects is a link: reported with the root's entries
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if special(e.Type()) {
				v.add(Finding{Kind: Stray, Path: path.Join(dir, e.Name()), Detail: safefs.TypeName(e.Type()) + ", not followed or read"})
			}
		}
	}
	top, err := v.root.ReadDir(objectsDir)
	if safefs.IsWrongKind(err) {
		return nil, nil // reported above
	}
	return top, err
}

// special reports whether a directory entry's type is anything but a regular
// file or directory: a symbolic link, FIFO, socket or device.
func special(t fs.FileMode) bool { return t&fs.ModeType&^fs.ModeDir != 0 }

// walk lists objects/blake3 one shard at a time, streaming well-named objects
// to the workers, so memory holds one shard's names, not the whole tree's.
func (v *verifier) walk(top []os.DirEntry, jobs chan<- hashJob) {
	for _, e := range top {
		if v.ctx.Err() != nil {
			return
		}
		name := e.Name()
		rel := objectsDir + "/" + name
		switch {
		case name == ".tmp" && e.IsDir():
			v.walkTemp()
		case isShardName(name) && e.IsDir():
			v.walkShard(name, jobs)
			v.shardsWalked.Add(1)
		default:
			v.add(Finding{Kind: Stray, Path: rel, Size: v.entrySize(rel, e), Detail: "not a shard directory" + typeNote(e.Type())})
		}
	}
}

// typeNote says what a stray entry is when it is not a regular file.
func typeNote(t fs.FileMode) string {
	if t.IsRegular() {
		return ""
	}
	return " (" + safefs.TypeName(t) + ", not followed or read)"
}

// dirProblem turns a failure to list or open something into a finding: a
// link or special file swapped in after the walk saw it is Stray.
func dirProblem(rel string, err error) Finding {
	if safefs.IsWrongKind(err) {
		return Finding{Kind: Stray, Path: rel, Detail: err.Error()}
	}
	return Finding{Kind: Unreadable, Path: rel, Detail: err.Error()}
}

func (v *verifier) walkShard(shard string, jobs chan<- hashJob) {
	dir := objectsDir + "/" + shard
	entries, err := v.root.ReadDir(dir)
	if err != nil {
		v.add(dirProblem(dir, err))
		return
	}
	for _, e := range entries {
		name := e.Name()
		rel := dir + "/" + name
		id, ok := objectName(name)
		switch {
		case !e.Type().IsRegular():
			v.add(Finding{Kind: Stray, Path: rel, Detail: "not a regular file" + typeNote(e.Type())})
		case !ok:
			v.add(Finding{Kind: Stray, Path: rel, Size: v.entrySize(rel, e), Detail: "not an object name"})
		case name[:2] != shard:
			v.add(Finding{Kind: Stray, Path: rel, Size: v.entrySize(rel, e), Detail: "object in the wrong shard, belongs in " + name[:2] + "/"})
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
	entries, err := v.root.ReadDir(TempDir)
	if err != nil {
		v.add(dirProblem(TempDir, err))
		return
	}
	for _, e := range entries {
		rel := TempDir + "/" + e.Name()
		if !strings.HasPrefix(e.Name(), TempPrefix) || !e.Type().IsRegular() {
			v.add(Finding{Kind: Stray, Path: rel, Size: v.entrySize(rel, e), Detail: "not a temp file of this store" + typeNote(e.Type())})
			continue
		}
		fi, err := v.root.Lstat(rel)
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
			f := dirProblem(job.rel, err)
			f.Size = size
			v.add(f)
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

// openObject opens a file the walk listed; a seam so that tests can swap the
// file between the walk and the open.
var openObject = (*safefs.Root).Open

// hashFile streams one file through h with the worker's buffer, reading no
// more than the size the file had when opened. (mmap(2) was measured too:
// page faults cost as much CPU as the copy read(2) makes.)
func (v *verifier) hashFile(rel string, h *blake3.Hasher, buf []byte) (int64, error) {
	f, err := openObject(v.root, rel)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, _, err := safefs.SizedReader(f)
	if err != nil {
		return 0, err
	}
	var size int64
	for {
		n, err := r.Read(buf)
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

// entrySize is the size of a stray regular file, or 0.
func (v *verifier) entrySize(rel string, e os.DirEntry) int64 {
	if !e.Type().IsRegular() {
		return 0
	}
	fi, err := v.root.Lstat(rel)
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}
