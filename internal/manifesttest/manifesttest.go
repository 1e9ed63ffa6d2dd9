// Package manifesttest plants, in a manifest directory, what its trust
// boundary must refuse, for the tests of every reader of manifests: each
// reader is tested against the same hazards.
package manifesttest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/every-channel/ec-node/internal/safefs"
)

// Hazard is one thing planted where a manifest file was.
type Hazard struct {
	Name string
	// Plant replaces the existing track file rel (relative to the manifest
	// directory dir, as manifest.FilePath gives it) and returns the path, below
	// dir, that a reader's error must name. A link points at the real file or
	// directory, moved out of dir: a reader that followed it would find valid
	// lines and not fail.
	Plant func(t testing.TB, dir, rel string) (bad string)
	// Want is the error a reader's error must wrap.
	Want error
}

// Hazards are a linked track file, a linked broadcast directory and a FIFO
// named *.jsonl.
var Hazards = []Hazard{
	{"linked track file", func(t testing.TB, dir, rel string) string {
		return moveOutAndLink(t, filepath.Join(dir, filepath.FromSlash(rel)))
	}, safefs.ErrSymlink},
	{"linked broadcast directory", func(t testing.TB, dir, rel string) string {
		return moveOutAndLink(t, filepath.Join(dir, filepath.FromSlash(strings.Split(rel, "/")[0])))
	}, safefs.ErrSymlink},
	{"FIFO track file", func(t testing.TB, dir, rel string) string {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}, safefs.ErrNotRegular},
}

// moveOutAndLink moves p out of its directory tree and puts a link to it in
// its place.
func moveOutAndLink(t testing.TB, p string) string {
	outside := filepath.Join(t.TempDir(), filepath.Base(p))
	if err := os.Rename(p, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Finish runs fn and fails the test if it has not returned after a long while
// rather than hang: a FIFO opened without O_NONBLOCK blocks its reader
// forever. It asserts no timing.
func Finish(t testing.TB, fn func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("blocked: a reader opened a FIFO")
	}
}
