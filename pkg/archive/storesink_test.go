package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// manifestHeaders reads a manifest file (absent: none).
func manifestHeaders(t *testing.T, dir, broadcast, track string) []record.Header {
	t.Helper()
	path, err := manifest.FilePath(dir, broadcast, track)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hs []record.Header
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, manifest.MaxLine+1)
	for sc.Scan() {
		e, err := manifest.ParseLine(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		hs = append(hs, e.Header)
	}
	return hs
}

// runUntil runs Run against relay until the video0.m4s manifest holds n lines.
func runUntil(t *testing.T, relay *fakeRelay, store cas.Store, manifests string, n int) {
	t.Helper()
	old := dialSession
	dialSession = relay.dial
	defer func() { dialSession = old }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			RelayURL: "https://relay.test/anon?jwt=secret", Broadcast: "bbb", Tracks: []string{"video0.m4s"},
			Store: store, ManifestDir: manifests, MinBackoff: time.Millisecond,
			StatusFile: manifests + "/../status.json",
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(manifestHeaders(t, manifests, "bbb", "video0.m4s")) < n {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("timed out with %+v", manifestHeaders(t, manifests, "bbb", "video0.m4s"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunStoresAndResumesWithoutDuplicates(t *testing.T) {
	root := t.TempDir()
	store, err := cas.OpenLocal(root + "/cas")
	if err != nil {
		t.Fatal(err)
	}
	manifests := root + "/manifests"
	payload := func(seq uint64) [][]byte { return [][]byte{[]byte("moof"), {byte(seq)}} }

	relay := newFakeRelay("video0.m4s")
	for seq := uint64(0); seq < 4; seq++ {
		relay.tracks["video0.m4s"] <- fakeGroup{seq: seq, frames: payload(seq)}
	}
	runUntil(t, relay, store, manifests, 4)

	// A restarted worker: the relay re-sends its cached latest group (3),
	// which is already archived, then 4.
	relay = newFakeRelay("video0.m4s")
	for _, seq := range []uint64{3, 4} {
		relay.tracks["video0.m4s"] <- fakeGroup{seq: seq, frames: payload(seq)}
	}
	runUntil(t, relay, store, manifests, 5)

	// Restarted again while the broadcast moved on to 7: 5 and 6 were missed.
	relay = newFakeRelay("video0.m4s")
	relay.tracks["video0.m4s"] <- fakeGroup{seq: 7, frames: payload(7)}
	runUntil(t, relay, store, manifests, 7)

	got := summary(manifestHeaders(t, manifests, "bbb", "video0.m4s"))
	want := []string{"video0.m4s:0", "video0.m4s:1", "video0.m4s:2", "video0.m4s:3", "video0.m4s:4",
		"video0.m4s:gap:5-6:disconnected", "video0.m4s:7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("manifest = %q\nwant       %q", got, want)
	}
	report, err := store.Verify(context.Background(), cas.VerifyOptions{})
	if err != nil || !report.Clean() {
		t.Fatalf("verify: %+v, %v", report, err)
	}
	check, err := manifest.Check(context.Background(), manifests, store, manifest.CheckOptions{Rehash: true})
	if err != nil || !check.Clean() {
		t.Fatalf("manifest check: %+v, %v", check, err)
	}
	st, err := ReadStatus(root + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	if st.Broadcast != "bbb" || st.State != "stopped" || st.Groups != 1 || strings.Contains(st.Relay, "secret") {
		t.Errorf("status = %+v; want 1 group, stopped, relay without the token", st)
	}
}

// failingStore fails the first commit of an object holding poison or, with
// inWrite, the write that completes it.
type failingStore struct {
	*cas.Memory
	poison  []byte
	inWrite bool
	mu      sync.Mutex
	failed  bool
}

var errDiskFull = errors.New("disk full")

func (s *failingStore) Create(ctx context.Context) (cas.Writer, error) {
	w, err := s.Memory.Create(ctx)
	return &failingWriter{Writer: w, s: s}, err
}

type failingWriter struct {
	cas.Writer
	s   *failingStore
	buf bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.s.inWrite && w.poisoned() {
		return 0, errDiskFull
	}
	return w.Writer.Write(p)
}

func (w *failingWriter) Commit() (cas.PutResult, error) {
	if !w.s.inWrite && w.poisoned() {
		w.Writer.Abort()
		return cas.PutResult{}, errDiskFull
	}
	return w.Writer.Commit()
}

// poisoned reports whether the bytes so far are the store's poison, the first
// time only.
func (w *failingWriter) poisoned() bool {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	fail := !w.s.failed && bytes.Equal(w.buf.Bytes(), w.s.poison)
	w.s.failed = w.s.failed || fail
	return fail
}

// A group whose write or commit fails becomes a store-failed gap, the session
// ends, and the worker resumes storing (through a fresh commit queue) once it
// reconnects.
func TestRunRecordsStoreFailureAndResumes(t *testing.T) {
	for _, inWrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("inWrite=%v", inWrite), func(t *testing.T) { testStoreFailure(t, inWrite) })
	}
}

func testStoreFailure(t *testing.T, inWrite bool) {
	root := t.TempDir()
	manifests := root + "/manifests"
	payload := func(seq uint64) [][]byte { return [][]byte{[]byte("moof"), {byte(seq)}} }
	store := &failingStore{Memory: cas.NewMemory(), poison: []byte{'m', 'o', 'o', 'f', 2}, inWrite: inWrite}

	old := dialSession
	relay := newFakeRelay("video0.m4s")
	dialSession = relay.dial
	defer func() { dialSession = old }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			RelayURL: "https://relay.test/anon", Broadcast: "bbb", Tracks: []string{"video0.m4s"},
			Store: store, ManifestDir: manifests, MinBackoff: time.Millisecond,
		})
	}()
	waitLines := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(manifestHeaders(t, manifests, "bbb", "video0.m4s")) < n {
			if time.Now().After(deadline) {
				t.Fatalf("timed out with %v", summary(manifestHeaders(t, manifests, "bbb", "video0.m4s")))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// One group at a time, so that no other group is queued behind the failure.
	for seq, lines := range []int{1, 2, 3, 4} {
		if seq == 3 {
			// The failed store ends the session; group 3 goes to the next one
			// (sent earlier, the ending session could still take it).
			waitSessions(t, relay, 2)
		}
		relay.tracks["video0.m4s"] <- fakeGroup{seq: uint64(seq), frames: payload(uint64(seq))}
		waitLines(lines)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := summary(manifestHeaders(t, manifests, "bbb", "video0.m4s"))
	want := []string{"video0.m4s:0", "video0.m4s:1", "video0.m4s:gap:2-2:store-failed", "video0.m4s:3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("manifest = %q\nwant       %q", got, want)
	}
	if relay.sessions < 2 {
		t.Errorf("%d sessions: the store failure did not end the session", relay.sessions)
	}
	if n := store.Len(); n != 3 {
		t.Errorf("%d objects stored, want 3", n)
	}
}

// waitSessions waits until the relay has been dialled n times.
func waitSessions(t *testing.T, relay *fakeRelay, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		relay.mu.Lock()
		got := relay.sessions
		relay.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions after 10 s, want %d: the store failure did not end the session", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
