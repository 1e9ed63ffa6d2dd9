package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/record"
)

// The dedup window: on open (and whenever another writer has appended), the
// entries in the last DedupWindowEntries lines, read from at most the last
// DedupWindowBytes of the file, are remembered, and an appended entry equal to
// one of them (see dedupKey) is skipped. A restart re-feeding recent records
// therefore never duplicates a line.
const (
	DedupWindowEntries = 4096
	DedupWindowBytes   = 4 << 20
	tailChunk          = 256 << 10
)

// Repair describes a torn tail cut from a manifest file.
type Repair struct {
	Path   string
	Offset int64  // where the file now ends; the cut bytes started here
	Bytes  int64  // how many bytes were cut
	Reason string // "no final newline" or "last line is not JSON"
	Head   string // the first bytes cut, for the log
}

// AppendResult counts what one Append did.
type AppendResult struct {
	Appended   int
	Duplicates int
}

// Appender appends entries to the manifest file of one (broadcast, track). It is
// safe for concurrent use, and several Appenders (in any processes) may share a
// file: each Append holds an exclusive flock on it, so lines never interleave.
//
// The manifest directory is a trust boundary: the file is opened below it
// without following symbolic links, and a link or special file where the
// manifest file belongs is an error naming it, so neither the torn-tail repair
// nor an append ever touches a file outside the directory.
type Appender struct {
	mu        sync.Mutex
	root      *safefs.Root
	f         *os.File
	rel       string // the file, relative to root
	path      string
	broadcast string
	track     string
	log       *slog.Logger
	end       int64 // file size after our last scan or write: a line boundary
	recent    dedupWindow
	recentSeq seqRing
}

// OpenAppender opens (creating as needed) the manifest file of (broadcast,
// track) under dir, repairs a torn tail and seeds the dedup window. The returned
// Repair is nil when nothing was cut.
func OpenAppender(dir, broadcast, track string, log *slog.Logger) (*Appender, *Repair, error) {
	root, err := openRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	return openAppender(root, dir, broadcast, track, log)
}

// openRoot creates the manifest directory durably if needed and opens it as
// the trust boundary. A directory given as a symbolic link is resolved once.
func openRoot(dir string) (*safefs.Root, error) {
	if err := safefs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	root, err := safefs.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return root, nil
}

// openAppender is OpenAppender below an open root; dir is the root's name as
// the caller gave it.
func openAppender(root *safefs.Root, dir, broadcast, track string, log *slog.Logger) (*Appender, *Repair, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rel, err := FilePath("", broadcast, track)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	f, err := openFile(root, rel)
	if err != nil {
		return nil, nil, err
	}
	a := &Appender{root: root, f: f, rel: rel, path: filepath.Join(dir, rel), broadcast: broadcast, track: track, log: log, end: -1}
	var repair *Repair
	err = a.locked(func(size int64) error {
		repair, err = a.rescan(size)
		return err
	})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return a, repair, nil
}

// openFile opens (creating as needed, with its directory) the regular file rel
// below root for appending.
func openFile(root *safefs.Root, rel string) (*os.File, error) {
	err := root.MkdirAll(path.Dir(rel), 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		// The manifest directory itself was removed (by an operator, a
		// disk-full cleanup): recreate it rather than lose the lines.
		if err = safefs.MkdirAll(root.Path(), 0o755); err == nil {
			err = root.MkdirAll(path.Dir(rel), 0o755)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for {
		f, err := root.OpenFile(rel, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			// Make the new file's directory entry durable before any line in
			// it is reported durable.
			if err := root.SyncDir(path.Dir(rel)); err != nil {
				f.Close()
				return nil, fmt.Errorf("manifest: %w", err)
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		f, err = root.OpenFile(rel, os.O_RDWR|os.O_APPEND, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed between the two opens
		}
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		return f, nil
	}
}

// reopenIfGone reopens the file when its path no longer names the open file
// (the file, or the whole manifest root, was removed or replaced): lines
// appended to an unlinked file would be lost without a trace. The next append
// then rescans the new file. The caller holds a.mu.
func (a *Appender) reopenIfGone() error {
	if a.f == nil {
		return nil // locked reports the closed appender
	}
	open, err := a.f.Stat()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	cur, err := a.root.Lstat(a.rel)
	if err == nil && os.SameFile(open, cur) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("manifest: %w", err)
	}
	f, err := openFile(a.root, a.rel)
	if err != nil {
		return err
	}
	a.log.Warn("manifest: file was removed or replaced while open; appending to a new one", "path", a.path)
	a.f.Close()
	a.f, a.end = f, -1
	return nil
}

// Path is the manifest file's path.
func (a *Appender) Path() string { return a.path }

// ResumePoint returns where archiving the file's track resumes, from its last
// resumeWindow entries (see ReadResumePoint), as of the last Append or open;
// ok is false when the file holds no entry.
func (a *Appender) ResumePoint() (p ResumePoint, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recentSeq.point()
}

// Append writes the entries that are not duplicates as one write(2) and fsyncs
// the file once, so callers batch entries to amortise the fsync. Every entry must
// belong to this file's (broadcast, track) and pass Validate; New is dropped.
// When Append returns nil, the lines are durable.
func (a *Appender) Append(entries ...Entry) (AppendResult, error) {
	for i := range entries {
		e := &entries[i]
		if e.Broadcast != a.broadcast || e.Track != a.track {
			return AppendResult{}, fmt.Errorf("manifest: entry for %q/%q appended to %s", e.Broadcast, e.Track, a.path)
		}
		if err := e.Validate(); err != nil {
			return AppendResult{}, fmt.Errorf("manifest: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reopenIfGone(); err != nil {
		return AppendResult{}, err
	}
	var res AppendResult
	err := a.locked(func(size int64) error {
		if size != a.end {
			// Another writer appended (or cut) since we last looked.
			if _, err := a.rescan(size); err != nil {
				return err
			}
		}
		var buf []byte
		batch := make(map[dedupKey]bool)
		for _, e := range entries {
			k := keyOf(&e)
			if a.recent.has(k) || batch[k] {
				res.Duplicates++
				continue
			}
			batch[k] = true
			e.New = nil
			var err error
			if buf, err = AppendLine(buf, e); err != nil {
				return err
			}
			res.Appended++
		}
		if len(buf) == 0 {
			return nil
		}
		if _, err := a.f.Write(buf); err != nil {
			// Do not leave a partial line for the next writer to build on.
			if terr := a.f.Truncate(a.end); terr != nil {
				a.log.Error("manifest: cannot cut partial write; the next open repairs it", "path", a.path, "err", terr)
			}
			return fmt.Errorf("manifest: append to %s: %w", a.path, err)
		}
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("manifest: fsync %s: %w", a.path, err)
		}
		a.end += int64(len(buf))
		for _, e := range entries {
			a.remember(&e)
		}
		return nil
	})
	if err != nil {
		return AppendResult{}, err
	}
	return res, nil
}

// Close closes the file.
func (a *Appender) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// locked runs fn holding the file's exclusive flock, passing the file size.
func (a *Appender) locked(fn func(size int64) error) error {
	if a.f == nil {
		return fmt.Errorf("manifest: %s: appender closed", a.path)
	}
	fd := int(a.f.Fd())
	if err := flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("manifest: lock %s: %w", a.path, err)
	}
	defer flock(fd, syscall.LOCK_UN) //nolint:errcheck // closing the file releases it anyway
	fi, err := a.f.Stat()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return fn(fi.Size())
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// rescan reads the file's tail, cuts a torn last line, and rebuilds the dedup
// window and last group. The caller holds the flock.
func (a *Appender) rescan(size int64) (*Repair, error) {
	start, data, err := readTail(a.f, size)
	if err != nil {
		return nil, fmt.Errorf("manifest: read %s: %w", a.path, err)
	}
	tail := scanTail(data)
	var repair *Repair
	if tail.torn >= 0 {
		cut := data[tail.torn:]
		repair = &Repair{Path: a.path, Offset: start + int64(tail.torn), Bytes: int64(len(cut)), Reason: tail.reason}
		repair.Head = string(cut[:min(len(cut), 80)])
		if err := a.f.Truncate(repair.Offset); err != nil {
			return nil, fmt.Errorf("manifest: repair %s: %w", a.path, err)
		}
		if err := a.f.Sync(); err != nil {
			return nil, fmt.Errorf("manifest: repair %s: %w", a.path, err)
		}
		a.log.Warn("manifest: cut torn last line", "path", a.path, "offset", repair.Offset,
			"bytes", repair.Bytes, "reason", repair.Reason, "head", repair.Head)
		size = repair.Offset
	}
	if tail.bad > 0 {
		a.log.Warn("manifest: invalid lines in the dedup window (see ec-node manifest check)", "path", a.path, "count", tail.bad)
	}
	a.recent = dedupWindow{}
	a.recentSeq = seqRing{}
	for i := range tail.entries {
		a.remember(&tail.entries[i])
	}
	a.end = size
	return repair, nil
}

func (a *Appender) remember(e *Entry) {
	a.recent.add(keyOf(e))
	a.recentSeq.add(e)
}

// readTail returns the end of the file, from a line start, holding at most
// DedupWindowEntries complete lines and about DedupWindowBytes.
func readTail(r io.ReaderAt, size int64) (start int64, data []byte, err error) {
	start = size
	for start > 0 && len(data) < DedupWindowBytes && bytes.Count(data, []byte{'\n'}) <= DedupWindowEntries {
		n := min(int64(tailChunk), start)
		chunk := make([]byte, n, int(n)+len(data))
		if _, err := r.ReadAt(chunk, start-n); err != nil {
			return 0, nil, err
		}
		start -= n
		data = append(chunk, data...)
	}
	if start > 0 {
		// Drop the partial first line.
		i := bytes.IndexByte(data, '\n')
		start += int64(i + 1)
		data = data[i+1:]
	}
	for bytes.Count(data, []byte{'\n'}) > DedupWindowEntries {
		i := bytes.IndexByte(data, '\n')
		start += int64(i + 1)
		data = data[i+1:]
	}
	return start, data, nil
}

// tailScan is what scanTail found.
type tailScan struct {
	entries []Entry // valid entries, in file order
	bad     int     // complete lines that are not valid entries (kept)
	torn    int     // offset in data of a torn last line, or -1
	reason  string
}

// scanTail parses the lines of data. A last line without "\n", or whose text is
// not JSON at all (as left by a crash that extended the file but not its data),
// is torn. A JSON line that fails validation is kept and counted: it was written
// whole, and cutting it could destroy a newer writer's data.
func scanTail(data []byte) tailScan {
	s := tailScan{torn: -1}
	off := 0
	for off < len(data) {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			s.torn, s.reason = off, "no final newline"
			break
		}
		line := data[off : off+i]
		last := off+i+1 == len(data)
		if e, err := ParseLine(line); err == nil {
			s.entries = append(s.entries, e)
		} else if last && !json.Valid(line) {
			s.torn, s.reason = off, "last line is not JSON"
		} else {
			s.bad++
		}
		off += i + 1
	}
	return s
}

// dedupKey identifies an entry for deduplication: a group by its sequence and
// object, a gap by all its fields.
type dedupKey struct {
	kind        string
	group       uint64
	blake3      string
	first, last uint64
	reason      string
	received    int64
}

func keyOf(e *Entry) dedupKey {
	if e.Kind == record.KindGroup {
		return dedupKey{kind: e.Kind, group: e.Group, blake3: e.BLAKE3}
	}
	return dedupKey{kind: e.Kind, first: e.First, last: e.Last, reason: e.Reason, received: e.ReceivedUnixMs}
}

// dedupWindow remembers the last DedupWindowEntries keys.
type dedupWindow struct {
	ring  []dedupKey
	next  int
	count map[dedupKey]int
}

func (w *dedupWindow) has(k dedupKey) bool { return w.count[k] > 0 }

func (w *dedupWindow) add(k dedupKey) {
	if w.count == nil {
		w.count = make(map[dedupKey]int)
	}
	if len(w.ring) < DedupWindowEntries {
		w.ring = append(w.ring, k)
	} else {
		old := w.ring[w.next]
		if w.count[old]--; w.count[old] == 0 {
			delete(w.count, old)
		}
		w.ring[w.next] = k
		w.next = (w.next + 1) % DedupWindowEntries
	}
	w.count[k]++
}

// ReadResumePoint reads where archiving (broadcast, track) resumes from the last
// resumeWindow complete entries of its manifest file under dir, without
// locking or repairing it. ok is false when the file does not exist or holds
// no entry of that broadcast and track.
func ReadResumePoint(dir, broadcast, track string) (p ResumePoint, ok bool, err error) {
	rel, err := FilePath("", broadcast, track)
	if err != nil {
		return ResumePoint{}, false, fmt.Errorf("manifest: %w", err)
	}
	root, err := safefs.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return ResumePoint{}, false, nil
	}
	if err != nil {
		return ResumePoint{}, false, fmt.Errorf("manifest: %w", err)
	}
	f, err := root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return ResumePoint{}, false, nil
	}
	if err != nil {
		return ResumePoint{}, false, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ResumePoint{}, false, fmt.Errorf("manifest: %w", err)
	}
	_, data, err := readTail(f, fi.Size())
	if err != nil {
		return ResumePoint{}, false, fmt.Errorf("manifest: read %s: %w", f.Name(), err)
	}
	var ring seqRing
	for _, e := range scanTail(data).entries {
		if e.Broadcast == broadcast && e.Track == track {
			ring.add(&e)
		}
	}
	p, ok = ring.point()
	return p, ok, nil
}
