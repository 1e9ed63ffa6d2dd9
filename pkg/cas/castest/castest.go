// Package castest is the conformance suite for cas.Store implementations: what
// the archiver relies on, checked the same way for every store. A store's own
// test supplies a constructor and calls Run:
//
//	func TestConformance(t *testing.T) {
//		castest.Run(t, castest.Target{Open: func(t *testing.T) cas.Store { ... }})
//	}
//
// The suite uses only the Store interface, so a remote store (S3-compatible)
// runs it unchanged against a test bucket.
package castest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/zeebo/blake3"
)

// Target is the store under test.
type Target struct {
	// Open returns a new, empty store. It is called once per test.
	Open func(t *testing.T) cas.Store
	// InMemory is set for a store that keeps objects in process memory: the
	// large-object test then does not require a write to take constant memory.
	InMemory bool
}

// Run runs every conformance test against target, each as a subtest.
func Run(t *testing.T, target Target) {
	tests := []struct {
		name string
		run  func(*testing.T, cas.Store)
	}{
		{"IDsArePathsAndBLAKE3", testIDs},
		{"PutThenOpenAndStat", testPutOpen},
		{"DedupHit", testDedup},
		{"WriterLifecycle", testLifecycle},
		{"AbsentObject", testAbsent},
		{"ContextCancelled", testCancel},
		{"ReaderFails", testReaderFails},
		{"ConcurrentWritersOfOneObject", testConcurrentSame},
		{"ConcurrentWritersOfManyObjects", testConcurrentMany},
		{"LargeStreamedObject", func(t *testing.T, s cas.Store) { testLarge(t, s, target.InMemory) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, target.Open(t)) })
	}
}

// Known BLAKE3-256 digests, from b3sum 1.x.
var golden = []struct {
	name string
	data []byte
	id   string
}{
	{"empty", nil, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{"abc", []byte("abc"), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"},
	// More than one 1 KiB BLAKE3 chunk, so the tree mode is exercised.
	{"100000 zero bytes", make([]byte, 100000), "b1fc3c3bf473596bc8ac1f5c86f77c2fc0e0186a872b88adf841716fe9140a50"},
}

func testIDs(t *testing.T, s cas.Store) {
	for _, g := range golden {
		res, err := cas.Put(context.Background(), s, bytes.NewReader(g.data))
		if err != nil {
			t.Fatalf("%s: Put: %v", g.name, err)
		}
		want := "objects/blake3/" + g.id[:2] + "/" + g.id + ".bin"
		if res.ID.String() != g.id || res.Path != want || res.Size != int64(len(g.data)) || !res.New {
			t.Errorf("%s: Put = %+v (id %s), want id %s, path %s, size %d, new", g.name, res, res.ID, g.id, want, len(g.data))
		}
		checkObject(t, s, res.ID, g.data)
	}
}

func testPutOpen(t *testing.T, s cas.Store) {
	ctx := context.Background()
	data := randomBytes(1, 300<<10)
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	// Odd write sizes: the hash must not depend on how the bytes were split.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+len(rest)%7919)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	res, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if want := cas.ID(blake3.Sum256(data)); res.ID != want || res.Path != cas.ObjectPath(want) || res.Size != int64(len(data)) || !res.New {
		t.Fatalf("Commit = %+v, want id %s, %d bytes, new", res, want, len(data))
	}
	checkObject(t, s, res.ID, data)
}

func testDedup(t *testing.T, s cas.Store) {
	ctx := context.Background()
	first, err := cas.Put(ctx, s, strings.NewReader("same bytes"))
	if err != nil || !first.New {
		t.Fatalf("first Put = %+v, %v; want new", first, err)
	}
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "same ")
	io.WriteString(w, "bytes")
	second, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if second.New || second.ID != first.ID || second.Path != first.Path || second.Size != first.Size {
		t.Fatalf("second commit = %+v, want a dedup hit of %+v", second, first)
	}
	checkObject(t, s, first.ID, []byte("same bytes"))
}

func testLifecycle(t *testing.T, s cas.Store) {
	ctx := context.Background()
	aborted := []byte("aborted object")
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(aborted)
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	checkAbsent(t, s, cas.ID(blake3.Sum256(aborted)))

	w, err = s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("committed"))
	res, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	checkObject(t, s, res.ID, []byte("committed"))
}

func testAbsent(t *testing.T, s cas.Store) {
	checkAbsent(t, s, cas.ID(blake3.Sum256([]byte("never stored"))))
}

func testCancel(t *testing.T, s cas.Store) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if w, err := s.Create(cancelled); !errors.Is(err, context.Canceled) {
		if err == nil {
			w.Abort()
		}
		t.Errorf("Create with a cancelled context: %v, want context.Canceled", err)
	}

	data := []byte("cancelled while writing")
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Commit(); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit after cancel: %v, want context.Canceled", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
	checkAbsent(t, s, cas.ID(blake3.Sum256(data)))
}

func testReaderFails(t *testing.T, s cas.Store) {
	broken := errors.New("reader broke")
	data := []byte("half an object")
	r := io.MultiReader(bytes.NewReader(data), iotest.ErrReader(broken))
	if _, err := cas.Put(context.Background(), s, r); !errors.Is(err, broken) {
		t.Fatalf("Put with a failing reader: %v, want %v", err, broken)
	}
	checkAbsent(t, s, cas.ID(blake3.Sum256(data)))
}

func testConcurrentSame(t *testing.T, s cas.Store) {
	const writers = 8
	data := randomBytes(2, 256<<10)
	results := make([]cas.PutResult, writers)
	errs := make([]error, writers)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			w, err := s.Create(context.Background())
			if err != nil {
				errs[i] = err
				return
			}
			defer w.Abort()
			for chunk := range slices.Chunk(data, 16<<10) {
				if _, err := w.Write(chunk); err != nil {
					errs[i] = err
					return
				}
			}
			results[i], errs[i] = w.Commit()
		}()
	}
	start.Done()
	wg.Wait()
	news := 0
	want := cas.ID(blake3.Sum256(data))
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if results[i].ID != want || results[i].Size != int64(len(data)) {
			t.Fatalf("writer %d: %+v, want id %s", i, results[i], want)
		}
		if results[i].New {
			news++
		}
	}
	if news != 1 {
		t.Errorf("%d of %d writers report New, want exactly 1", news, writers)
	}
	checkObject(t, s, want, data)
}

func testConcurrentMany(t *testing.T, s cas.Store) {
	const objects = 64
	var wg sync.WaitGroup
	errs := make([]error, objects)
	for i := range objects {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = cas.Put(context.Background(), s, bytes.NewReader(randomBytes(uint64(100+i), 1000+i)))
		}()
	}
	wg.Wait()
	for i := range objects {
		if errs[i] != nil {
			t.Fatalf("object %d: %v", i, errs[i])
		}
		checkObject(t, s, cas.ID(blake3.Sum256(randomBytes(uint64(100+i), 1000+i))), randomBytes(uint64(100+i), 1000+i))
	}
}

// testLarge streams an object much larger than any buffer, generating its bytes
// as it goes, and checks that the writer's allocations stay far below its size.
func testLarge(t *testing.T, s cas.Store, inMemory bool) {
	const size = 24 << 20
	ctx := context.Background()
	src := rand.NewChaCha8([32]byte{3})
	chunk := make([]byte, 64<<10)
	h := blake3.New()
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for written := 0; written < size; written += len(chunk) {
		src.Read(chunk)
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	res, err := w.Commit()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	var want cas.ID
	h.Sum(want[:0])
	if res.ID != want || res.Size != size || !res.New {
		t.Fatalf("Commit = %+v, want id %s, %d bytes, new", res, want, size)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; !inMemory && allocated > size/8 {
		t.Errorf("writing %d MiB allocated %d KiB: the writer buffers the object", size>>20, allocated>>10)
	}
	if n, err := s.Stat(ctx, want); err != nil || n != size {
		t.Fatalf("Stat = %d, %v; want %d", n, err, size)
	}
	r, err := s.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	back := blake3.New()
	if n, err := io.CopyBuffer(back, r, chunk); err != nil || n != size {
		t.Fatalf("read back %d bytes, %v; want %d", n, err, size)
	}
	var got cas.ID
	back.Sum(got[:0])
	if got != want {
		t.Fatalf("read back bytes hashing to %s, want %s", got, want)
	}
}

// checkObject checks that Stat and Open of id give data.
func checkObject(t *testing.T, s cas.Store, id cas.ID, data []byte) {
	t.Helper()
	ctx := context.Background()
	if n, err := s.Stat(ctx, id); err != nil || n != int64(len(data)) {
		t.Fatalf("Stat(%s) = %d, %v; want %d bytes", id, n, err, len(data))
	}
	r, err := s.Open(ctx, id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open(%s) read %d bytes, %v; want the %d bytes stored", id, len(got), err, len(data))
	}
}

// checkAbsent checks that Stat and Open report fs.ErrNotExist for id.
func checkAbsent(t *testing.T, s cas.Store, id cas.ID) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Stat(ctx, id); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%s) = %v, want fs.ErrNotExist", id, err)
	}
	r, err := s.Open(ctx, id)
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(%s) = %v, want fs.ErrNotExist", id, err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}
