package manifest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/zeebo/blake3"
)

// Kinds of problem Check reports.
const (
	ProblemInvalidLine    = "invalid-line"   // a complete line that is not a valid entry
	ProblemTornTail       = "torn-tail"      // a last line cut short; the next open repairs it
	ProblemWrongFile      = "wrong-file"     // an entry whose names do not map to its file
	ProblemDuplicate      = "duplicate"      // a repeated (group, blake3) or identical gap in one file
	ProblemMissingObject  = "missing-object" // a group's object is not in the store
	ProblemSizeMismatch   = "size-mismatch"  // the object's size differs from the entry's
	ProblemHashMismatch   = "hash-mismatch"  // the object's bytes do not hash to its id (Rehash)
	ProblemObjectError    = "object-error"   // the object could not be read
	ProblemStrayFile      = "stray-file"     // a file in the manifest tree that is not a manifest
	defaultMaxProblems    = 1000
	defaultCheckWorkers   = 8
	unreferencedSliceSize = 1000
)

// CheckOptions tune Check. The zero value checks lines and object presence.
type CheckOptions struct {
	// Rehash re-reads every referenced object and compares its BLAKE3 with its id.
	Rehash bool
	// Workers check objects in parallel; 0 means 8.
	Workers int
	// ListObjects, when set, lists every object in the store so that Check can
	// report those no manifest references. It costs memory for the set of
	// referenced ids (about 100 bytes per distinct object).
	ListObjects func(ctx context.Context, fn func(cas.ID) error) error
	// MaxProblems bounds the problems kept in the report (all are counted);
	// 0 means 1000.
	MaxProblems int
}

// Problem is one inconsistency.
type Problem struct {
	Kind string `json:"kind"`
	// File is the manifest file, relative to the manifest directory.
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Detail string `json:"detail"`
}

// CheckReport is the result of Check.
type CheckReport struct {
	ManifestDir string `json:"manifest_dir"`
	Files       int    `json:"files"`
	Lines       int    `json:"lines"`
	Groups      int    `json:"groups"`
	Gaps        int    `json:"gaps"`
	// Sessions counts the valid lines of the session log (SessionLogName).
	Sessions int `json:"sessions"`
	// ProblemCount counts every problem; Problems holds the first MaxProblems,
	// sorted by file and line.
	ProblemCount int       `json:"problem_count"`
	Problems     []Problem `json:"problems"`
	// Unreferenced counts store objects no manifest line names (ListObjects set);
	// UnreferencedPaths holds the first 1000. They are not inconsistencies: an
	// object stored by cas-put whose line manifest-append never wrote is one.
	Unreferenced      int      `json:"unreferenced"`
	UnreferencedPaths []string `json:"unreferenced_paths,omitempty"`
}

// Clean reports whether no problem was found.
func (r *CheckReport) Clean() bool { return r.ProblemCount == 0 }

// Check reads every manifest file under manifestDir and checks each line, and
// each group entry's object in store. It only reads. An error means the check
// itself could not run; inconsistencies are reported as Problems.
//
// manifestDir is resolved once (it may be a symbolic link); below it no link
// is followed and no special file is read: each is a stray-file problem. A
// file is read up to the size it had when opened, so Check ends whatever is
// appended or swapped in meanwhile.
func Check(ctx context.Context, manifestDir string, store cas.Store, opts CheckOptions) (CheckReport, error) {
	root, err := safefs.OpenRoot(manifestDir)
	if err != nil {
		return CheckReport{ManifestDir: manifestDir}, fmt.Errorf("manifest: check: %w", err)
	}
	c := &checker{
		ctx: ctx, dir: manifestDir, root: root, store: store, opts: opts,
		report: CheckReport{ManifestDir: manifestDir},
		jobs:   make(chan objectJob, 64),
	}
	if c.opts.MaxProblems <= 0 {
		c.opts.MaxProblems = defaultMaxProblems
	}
	if c.opts.Workers <= 0 {
		c.opts.Workers = defaultCheckWorkers
	}
	if opts.ListObjects != nil {
		c.referenced = make(map[cas.ID]struct{})
	}
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range c.jobs {
				c.checkObject(j)
			}
		}()
	}
	err = c.walk()
	close(c.jobs)
	wg.Wait()
	if err == nil && opts.ListObjects != nil {
		err = opts.ListObjects(ctx, func(id cas.ID) error {
			if _, ok := c.referenced[id]; !ok {
				c.report.Unreferenced++
				if len(c.report.UnreferencedPaths) < unreferencedSliceSize {
					c.report.UnreferencedPaths = append(c.report.UnreferencedPaths, cas.ObjectPath(id))
				}
			}
			return nil
		})
	}
	if err != nil {
		return c.report, fmt.Errorf("manifest: check %s: %w", manifestDir, err)
	}
	slices.SortFunc(c.report.Problems, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), strings.Compare(a.Kind, b.Kind))
	})
	return c.report, nil
}

type checker struct {
	ctx        context.Context
	dir        string // as given to Check
	root       *safefs.Root
	store      cas.Store
	opts       CheckOptions
	jobs       chan objectJob
	referenced map[cas.ID]struct{} // only read and written by the walking goroutine

	mu     sync.Mutex // guards report.Problems and ProblemCount
	report CheckReport
}

type objectJob struct {
	file string
	line int
	id   cas.ID
	size int64
}

func (c *checker) problem(kind, file string, line int, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report.ProblemCount++
	if len(c.report.Problems) < c.opts.MaxProblems {
		c.report.Problems = append(c.report.Problems, Problem{Kind: kind, File: file, Line: line, Detail: fmt.Sprintf(format, args...)})
	}
}

// walk checks the two levels of the tree: broadcast directories holding
// manifest files, and the session log beside them. Anything else is a stray
// file.
func (c *checker) walk() error {
	broadcasts, err := c.root.ReadDir(".")
	if err != nil {
		return err
	}
	for _, b := range broadcasts {
		if b.Name() == SessionLogName && b.Type().IsRegular() {
			if err := c.checkSessionLog(); err != nil {
				return err
			}
			continue
		}
		if !b.IsDir() {
			c.problem(ProblemStrayFile, b.Name(), 0, "not a manifest file (%s)", safefs.TypeName(b.Type()))
			continue
		}
		files, err := c.root.ReadDir(b.Name())
		if safefs.IsWrongKind(err) {
			c.problem(ProblemStrayFile, b.Name(), 0, "%v", err) // swapped in since listed
			continue
		}
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			rel := b.Name() + "/" + f.Name()
			switch {
			case f.IsDir():
				c.problem(ProblemStrayFile, rel, 0, "unexpected directory")
			case !f.Type().IsRegular() || !strings.HasSuffix(f.Name(), FileExt):
				c.problem(ProblemStrayFile, rel, 0, "not a manifest file (%s)", safefs.TypeName(f.Type()))
			default:
				if err := c.checkFile(rel); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// open opens a file the walk listed and returns it limited to its size at
// open: lines appended after it are left to the next check. A nil reader
// means there is nothing to read (the file is gone, or is a stray swapped in
// since, which is reported).
func (c *checker) open(rel string) (io.Reader, io.Closer, error) {
	f, err := c.root.Open(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, nil // removed since listed
	case safefs.IsWrongKind(err):
		c.problem(ProblemStrayFile, rel, 0, "%v", err) // swapped in since listed
		return nil, nil, nil
	case err != nil:
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return io.LimitReader(f, fi.Size()), f, nil
}

func (c *checker) checkFile(rel string) error {
	r, f, err := c.open(rel)
	if r == nil {
		return err
	}
	defer f.Close()
	c.report.Files++
	type groupKey struct {
		group uint64
		id    cas.ID
	}
	seenGroups := make(map[groupKey]int) // line of first occurrence
	seenGaps := make(map[dedupKey]int)
	var namesChecked fileKey
	dec := NewDecoder(r)
	for {
		e, err := dec.Next()
		if err == io.EOF {
			return nil
		}
		line := dec.Line()
		c.report.Lines++
		if err != nil {
			if stop, err := c.lineError(rel, line, err); stop {
				return err
			}
			continue
		}
		if k := (fileKey{e.Broadcast, e.Track}); k != namesChecked {
			if want, _ := FilePath("", e.Broadcast, e.Track); want != rel {
				c.problem(ProblemWrongFile, rel, line, "entry for broadcast %q track %q belongs in %s", e.Broadcast, e.Track, filepath.Join(c.dir, want))
				continue
			}
			namesChecked = k
		}
		if e.Kind == record.KindGap {
			c.report.Gaps++
			if first, dup := seenGaps[keyOf(&e)]; dup {
				c.problem(ProblemDuplicate, rel, line, "gap %d..%d repeats line %d", e.First, e.Last, first)
			} else {
				seenGaps[keyOf(&e)] = line
			}
			continue
		}
		c.report.Groups++
		id, _ := e.ID() // Validate checked it
		if first, dup := seenGroups[groupKey{e.Group, id}]; dup {
			c.problem(ProblemDuplicate, rel, line, "group %d with object %s repeats line %d", e.Group, e.BLAKE3, first)
		} else {
			seenGroups[groupKey{e.Group, id}] = line
		}
		if c.referenced != nil {
			c.referenced[id] = struct{}{}
		}
		select {
		case c.jobs <- objectJob{file: rel, line: line, id: id, size: e.Size}:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
}

// checkSessionLog checks every line of the session log as checkFile does a
// manifest file's (a session line names no object).
func (c *checker) checkSessionLog() error {
	rel := SessionLogName
	r, f, err := c.open(rel)
	if r == nil {
		return err
	}
	defer f.Close()
	dec := NewSessionLogDecoder(r)
	for {
		_, err := dec.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if stop, err := c.lineError(rel, dec.Line(), err); stop {
				return err
			}
			continue
		}
		c.report.Sessions++
	}
}

// lineError reports a line that did not decode. stop ends the file's check: a
// torn tail, a line too long to find the next one after, or an I/O error
// (returned as err).
func (c *checker) lineError(rel string, line int, err error) (stop bool, _ error) {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.problem(ProblemTornTail, rel, line, "last line has no newline")
		return true, nil
	case errors.Is(err, record.ErrLineTooLong):
		c.problem(ProblemInvalidLine, rel, line, "%v; rest of file not checked", err)
		return true, nil
	case errors.Is(err, record.ErrMalformed):
		c.problem(ProblemInvalidLine, rel, line, "%v", errors.Unwrap(err))
		return false, nil
	}
	return true, err
}

func (c *checker) checkObject(j objectJob) {
	size, err := c.store.Stat(c.ctx, j.id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.problem(ProblemMissingObject, j.file, j.line, "object %s is missing", cas.ObjectPath(j.id))
		return
	case err != nil:
		c.problem(ProblemObjectError, j.file, j.line, "object %s: %v", cas.ObjectPath(j.id), err)
		return
	case size != j.size:
		c.problem(ProblemSizeMismatch, j.file, j.line, "object %s is %d bytes, entry says %d", cas.ObjectPath(j.id), size, j.size)
		return
	}
	if !c.opts.Rehash {
		return
	}
	r, err := c.store.Open(c.ctx, j.id)
	if err != nil {
		c.problem(ProblemObjectError, j.file, j.line, "object %s: %v", cas.ObjectPath(j.id), err)
		return
	}
	defer r.Close()
	h := blake3.New()
	if _, err := io.Copy(h, r); err != nil {
		c.problem(ProblemObjectError, j.file, j.line, "object %s: %v", cas.ObjectPath(j.id), err)
		return
	}
	var got cas.ID
	h.Sum(got[:0])
	if got != j.id {
		c.problem(ProblemHashMismatch, j.file, j.line, "object %s hashes to %s", cas.ObjectPath(j.id), got)
	}
}
