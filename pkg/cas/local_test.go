package cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/internal/safefs"
)

func openTestStore(t *testing.T) *Local {
	t.Helper()
	s, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vectorInput is the input of the official BLAKE3 test vectors: byte i is i % 251.
func vectorInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// objectFiles lists every file under objects/blake3 except the temp directory.
func objectFiles(t *testing.T, s *Local) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(s.Root(), objectsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".tmp" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(s.Root(), p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func tempFiles(t *testing.T, s *Local) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), TempDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPutRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
		want string // BLAKE3 test vector
	}{
		{"empty", nil, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{"one byte", vectorInput(1), "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
		{"1025 bytes", vectorInput(1025), "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
		{"3 MiB", randomBytes(3<<20, 1), ""},
	}
	s := openTestStore(t)
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Put(ctx, bytes.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && res.ID.String() != tt.want {
				t.Errorf("id = %s, want test vector %s", res.ID, tt.want)
			}
			h := res.ID.String()
			wantPath := "objects/blake3/" + h[:2] + "/" + h + ".bin"
			if res.Path != wantPath || !res.New || res.Size != int64(len(tt.data)) {
				t.Errorf("result = %+v, want path %s, new, size %d", res, wantPath, len(tt.data))
			}
			onDisk, err := os.ReadFile(filepath.Join(s.Root(), wantPath))
			if err != nil || !bytes.Equal(onDisk, tt.data) {
				t.Fatalf("file at layout path: err=%v, equal=%v", err, bytes.Equal(onDisk, tt.data))
			}
			rc, err := s.Open(ctx, res.ID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Errorf("Open: err=%v, equal=%v", err, bytes.Equal(got, tt.data))
			}
			if size, err := s.Stat(ctx, res.ID); err != nil || size != int64(len(tt.data)) {
				t.Errorf("Stat = %d, %v", size, err)
			}
			if b3sum, err := exec.LookPath("b3sum"); err == nil {
				out, err := exec.Command(b3sum, "--no-names", filepath.Join(s.Root(), wantPath)).Output()
				if err != nil || strings.TrimSpace(string(out)) != h {
					t.Errorf("b3sum = %q (%v), want %s", out, err, h)
				}
			} else {
				t.Log("b3sum not installed; checked against the BLAKE3 test vectors only")
			}
		})
	}
	if names := tempFiles(t, s); len(names) != 0 {
		t.Errorf("temp files left: %v", names)
	}
	var absent ID
	if _, err := s.Stat(ctx, absent); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(absent) error = %v, want fs.ErrNotExist", err)
	}
}

func TestOpenLocalLayout(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "new", "store")
	s, err := OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "objects/blake3"))
	if err != nil || len(entries) != 1 || entries[0].Name() != ".tmp" || !entries[0].IsDir() {
		t.Errorf("objects/blake3 = %v (%v), want only the temp directory; shards come lazily", entries, err)
	}
	layout, err := os.ReadFile(filepath.Join(root, LayoutFile))
	if err != nil || !bytes.Contains(layout, []byte(`"layout":"blake3/2hex","version":1`)) {
		t.Errorf("layout.json = %s (%v)", layout, err)
	}
	res, err := s.Put(context.Background(), strings.NewReader("first object"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "objects/blake3", res.ID.String()[:2])); err != nil || !fi.IsDir() {
		t.Errorf("shard directory of the first object: %v", err)
	}
	// Reopening leaves it as it is.
	if _, err := OpenLocal(root); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(root, LayoutFile)); !bytes.Equal(again, layout) {
		t.Errorf("layout.json changed on reopen: %s", again)
	}
	// A tree of another layout is refused rather than written into.
	os.WriteFile(filepath.Join(root, LayoutFile), []byte(`{"layout":"blake3/4hex","version":1}`), 0o644)
	if _, err := OpenLocal(root); err == nil || !strings.Contains(err.Error(), "blake3/4hex") {
		t.Errorf("OpenLocal on a foreign layout: err = %v", err)
	}
}

func TestDedupStoresOnce(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	data := []byte("the same group payload")
	first, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil || !first.New {
		t.Fatalf("first put: %+v %v", first, err)
	}
	second, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil || second.New || second.ID != first.ID || second.Size != first.Size {
		t.Fatalf("second put: %+v %v, want a dedup hit of %+v", second, err, first)
	}
	if files := objectFiles(t, s); len(files) != 1 {
		t.Errorf("object files = %v, want exactly one", files)
	}
	if names := tempFiles(t, s); len(names) != 0 {
		t.Errorf("temp files left: %v", names)
	}
}

func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	const writers, perWriter, shared = 16, 12, 4
	// Every writer stores the `shared` common payloads and its own distinct ones.
	payload := func(w, i int) []byte {
		if i < shared {
			return []byte(fmt.Sprintf("common %d", i))
		}
		return []byte(fmt.Sprintf("writer %d object %d", w, i))
	}
	var mu sync.Mutex
	newCount := map[ID]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				res, err := s.Put(ctx, bytes.NewReader(payload(w, i)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if _, ok := newCount[res.ID]; !ok {
					newCount[res.ID] = 0
				}
				if res.New {
					newCount[res.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wantObjects := shared + writers*(perWriter-shared)
	if len(newCount) != wantObjects {
		t.Errorf("%d distinct ids, want %d", len(newCount), wantObjects)
	}
	for id, n := range newCount {
		if n != 1 {
			t.Errorf("object %s reported New %d times, want once", id, n)
		}
	}
	if files := objectFiles(t, s); len(files) != wantObjects {
		t.Errorf("%d object files, want %d", len(files), wantObjects)
	}
	if names := tempFiles(t, s); len(names) != 0 {
		t.Errorf("temp files left: %v", names)
	}
	report, err := s.Verify(ctx, VerifyOptions{})
	if err != nil || !report.Clean() || report.Objects != int64(wantObjects) {
		t.Errorf("verify after concurrent puts: %+v %v", report, err)
	}
}

// failAfter returns a write seam that writes limit bytes, then fails with errno.
func failAfter(limit int, errno error) func(*os.File, []byte) (int, error) {
	written := 0
	return func(f *os.File, p []byte) (int, error) {
		if written+len(p) <= limit {
			written += len(p)
			return f.Write(p)
		}
		n, _ := f.Write(p[:limit-written])
		written += n
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: errno}
	}
}

func TestInjectedFailuresPublishNothing(t *testing.T) {
	tests := []struct {
		name    string
		inject  func()
		wantErr error
	}{
		{"disk full mid-write", func() { writeFile = failAfter(100<<10, syscall.ENOSPC) }, syscall.ENOSPC},
		{"read-only at the first write", func() { writeFile = failAfter(0, syscall.EROFS) }, syscall.EROFS},
		{"fsync fails", func() {
			syncFile = func(*os.File) error { return &os.PathError{Op: "fsync", Err: syscall.EIO} }
		}, syscall.EIO},
		{"publish fails", func() {
			renameNoReplace = func(*safefs.Root, string, string) error { return &os.LinkError{Op: "renameat2", Err: syscall.ENOSPC} }
		}, syscall.ENOSPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := [...]any{writeFile, syncFile, renameNoReplace}
			t.Cleanup(func() {
				writeFile = saved[0].(func(*os.File, []byte) (int, error))
				syncFile = saved[1].(func(*os.File) error)
				renameNoReplace = saved[2].(func(*safefs.Root, string, string) error)
			})
			s := openTestStore(t)
			tt.inject()
			res, err := s.Put(context.Background(), bytes.NewReader(randomBytes(300<<10, 2)))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put error = %v, want errors.Is %v", err, tt.wantErr)
			}
			if res != (PutResult{}) {
				t.Errorf("result on error = %+v, want zero", res)
			}
			if files := objectFiles(t, s); len(files) != 0 {
				t.Errorf("published after failure: %v", files)
			}
			if names := tempFiles(t, s); len(names) != 0 {
				t.Errorf("temp files left: %v", names)
			}
		})
	}
}

func TestLinkFallback(t *testing.T) {
	savedRename := renameNoReplace
	t.Cleanup(func() { renameNoReplace = savedRename; linkOnly.Store(false) })
	renameNoReplace = func(_ *safefs.Root, o, n string) error {
		return &os.LinkError{Op: "renameat2", Old: o, New: n, Err: syscall.EINVAL}
	}
	s := openTestStore(t)
	ctx := context.Background()
	data := []byte("on a filesystem without RENAME_NOREPLACE")
	first, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil || !first.New || !linkOnly.Load() {
		t.Fatalf("first put: %+v %v (link fallback on: %v)", first, err, linkOnly.Load())
	}
	second, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil || second.New {
		t.Fatalf("second put: %+v %v, want a dedup hit", second, err)
	}
	if files := objectFiles(t, s); len(files) != 1 {
		t.Errorf("object files = %v", files)
	}
	if names := tempFiles(t, s); len(names) != 0 {
		t.Errorf("temp files left: %v", names)
	}
}

func TestDamagedObjectIsReplaced(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	data := randomBytes(10_000, 3)
	res, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Root(), res.Path)
	os.Chmod(path, 0o644)
	if err := os.Truncate(path, 123); err != nil {
		t.Fatal(err)
	}
	again, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil || !again.New {
		t.Fatalf("put over a truncated object: %+v %v, want New", again, err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Errorf("object not repaired: %d bytes", len(got))
	}
}

func TestWriterLifecycle(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())

	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abandoned"))
	if len(tempFiles(t, s)) != 1 {
		t.Fatal("no temp file while writing")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}

	w, err = s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("cancelled"))
	cancel()
	if _, err := w.Commit(); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit after cancel: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after failed Commit: %v", err)
	}
	if names, files := tempFiles(t, s), objectFiles(t, s); len(names)+len(files) != 0 {
		t.Errorf("left behind: temp %v, objects %v", names, files)
	}
}

func TestCleanTemp(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	old := time.Now().Add(-2 * time.Hour)
	write := func(name string, mtime time.Time) {
		p := filepath.Join(s.Root(), TempDir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	write(TempPrefix+"crashed", old)
	write(TempPrefix+"recent", time.Now())
	write("not-ours", old)
	live, err := s.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	live.Write([]byte("still writing"))

	removed, err := s.CleanTemp(time.Hour)
	if err != nil || removed != 1 {
		t.Fatalf("CleanTemp = %d, %v; want 1 removed", removed, err)
	}
	left := strings.Join(tempFiles(t, s), " ")
	for _, want := range []string{TempPrefix + "recent", "not-ours", filepath.Base(live.(*ObjectWriter).tmp)} {
		if !strings.Contains(left, want) {
			t.Errorf("%s removed; left: %s", want, left)
		}
	}
	if strings.Contains(left, "crashed") {
		t.Errorf("stale temp kept: %s", left)
	}
	if _, err := live.Commit(); err != nil {
		t.Errorf("live writer broken by CleanTemp: %v", err)
	}
}

func TestDirSyncerCoalesces(t *testing.T) {
	saved := syncDir
	t.Cleanup(func() { syncDir = saved })
	var mu sync.Mutex
	calls := 0
	release := make(chan struct{})
	syncDir = func(*safefs.Root, string) error {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			<-release // hold the first fsync while others queue up
		}
		return nil
	}
	var d dirSyncer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.sync() }()
	for !func() bool { mu.Lock(); defer mu.Unlock(); return calls == 1 }() {
		time.Sleep(time.Millisecond)
	}
	const waiters = 20
	for range waiters {
		wg.Add(1)
		go func() { defer wg.Done(); d.sync() }()
	}
	// Let the waiters register behind the running fsync, then release it.
	for !func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.next != nil }() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if calls > 3 {
		t.Errorf("%d fsyncs for 1+%d concurrent syncs, want them coalesced (2 expected)", calls, waiters)
	}
	if calls < 2 {
		t.Errorf("%d fsyncs: callers that arrived during an fsync must get a later one", calls)
	}
}

// TestDirSyncerEveryCallerCovered hammers one dirSyncer: every caller must
// return only after an fsync that started after it was called (after its
// rename, in a real commit) has finished, and fsyncs of the directory never
// overlap.
func TestDirSyncerEveryCallerCovered(t *testing.T) {
	saved := syncDir
	t.Cleanup(func() { syncDir = saved })
	var started, finished, inFlight atomic.Int64
	syncDir = func(*safefs.Root, string) error {
		if inFlight.Add(1) != 1 {
			t.Error("two fsyncs of one directory at once")
		}
		started.Add(1)
		time.Sleep(100 * time.Microsecond)
		finished.Add(1)
		inFlight.Add(-1)
		return nil
	}
	var d dirSyncer
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				before := started.Load() // fsyncs numbered above this start after now
				if err := d.sync(); err != nil {
					t.Error(err)
					return
				}
				if finished.Load() <= before {
					t.Errorf("sync returned with %d fsyncs finished, none of them started after the call (%d had started)", finished.Load(), before)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := started.Load(); n >= 32*50 {
		t.Errorf("%d fsyncs for %d syncs: none shared", n, 32*50)
	}
}

// listTree lists every path under dir with its size, to show it was not touched.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		fmt.Fprintf(&b, "%s %d\n", p, fi.Size())
		return nil
	})
	return b.String()
}

// linkOut replaces root/rel (moving it out if it exists) with a symbolic link
// to a directory outside root, and returns that directory.
func linkOut(t *testing.T, root, rel string) string {
	t.Helper()
	outside := filepath.Join(t.TempDir(), "moved")
	err := os.Rename(filepath.Join(root, rel), outside)
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Mkdir(outside, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
	return outside
}

func TestPutRefusesLinkedDirectories(t *testing.T) {
	t.Parallel()
	data := []byte("an object that must not leave the store")
	shard := ID(blake3.Sum256(data)).String()[:2]
	tests := []struct {
		name      string
		link      string // replaced by a link to a directory outside the root
		openFails bool   // OpenLocal refuses the tree too
	}{
		{"shard directory", "objects/blake3/" + shard, false},
		{"objects/blake3", "objects/blake3", true},
		{"objects", "objects", true},
		{"temp directory", TempDir, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := openTestStore(t)
			outside := linkOut(t, s.Root(), tt.link)
			before := listTree(t, outside)
			_, err := s.Put(context.Background(), bytes.NewReader(data))
			if !errors.Is(err, safefs.ErrSymlink) || !strings.Contains(err.Error(), filepath.Join(s.Root(), tt.link)+":") {
				t.Fatalf("Put through a linked %s: %v, want a symbolic-link error naming %s", tt.link, err, tt.link)
			}
			if after := listTree(t, outside); after != before {
				t.Errorf("outside the root changed:\n%s\nwas\n%s", after, before)
			}
			_, err = OpenLocal(s.Root())
			if tt.openFails != (err != nil) || err != nil && !errors.Is(err, safefs.ErrSymlink) {
				t.Errorf("OpenLocal: %v, want failure %v", err, tt.openFails)
			}
		})
	}
}

func TestReadsDoNotFollowALinkedShard(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	res, err := s.Put(ctx, strings.NewReader("object"))
	if err != nil {
		t.Fatal(err)
	}
	linkOut(t, s.Root(), path.Dir(res.Path))
	if _, err := s.Stat(ctx, res.ID); !errors.Is(err, safefs.ErrSymlink) {
		t.Errorf("Stat through a linked shard: %v", err)
	}
	if _, err := s.Open(ctx, res.ID); !errors.Is(err, safefs.ErrSymlink) {
		t.Errorf("Open through a linked shard: %v", err)
	}
	seen := 0
	if err := s.Each(ctx, func(ID) error { seen++; return nil }); err != nil || seen != 0 {
		t.Errorf("Each listed %d objects (%v) through a linked shard", seen, err)
	}
}
