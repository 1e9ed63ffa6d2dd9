// Package manifesttest plants, in a manifest directory, what its trust
// boundary must refuse, for the tests of every reader of manifests: each
// reader is tested against the same hazards.
package manifesttest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/every-channel/ec-node/internal/safefs"
)

// hazard is one thing planted where a manifest file was.
type hazard struct {
	name string
	// plant replaces the existing track file rel (relative to the manifest
	// directory dir, as manifest.FilePath gives it) and returns the path, below
	// dir, that a reader's error must name. A link points at the real file or
	// directory, moved out of dir: a reader that followed it would find valid
	// lines and not fail.
	plant func(t testing.TB, dir, rel string) (bad string)
	// want is the error a reader's error must wrap.
	want error
}

// hazards are a linked track file, a linked broadcast directory and a FIFO
// named *.jsonl.
var hazards = []hazard{
	{"linked track file", func(t testing.TB, dir, rel string) string {
		return moveOutAndLink(t, filepath.Join(dir, filepath.FromSlash(rel)))
	}, safefs.ErrSymlink},
	{"linked broadcast directory", func(t testing.TB, dir, rel string) string {
		return moveOutAndLink(t, filepath.Join(dir, filepath.Dir(filepath.FromSlash(rel))))
	}, safefs.ErrSymlink},
	{"FIFO track file", func(t testing.TB, dir, rel string) string {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
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

// Planted is a hazard planted in a test's manifest directory.
type Planted struct {
	t    testing.TB
	want error
	// Path is the planted thing's path: a reader's error or warning names it.
	Path string
}

// Refused fails the test unless err, returned by what, wraps the error the
// hazard calls for and names its path.
func (p *Planted) Refused(what string, err error) {
	p.t.Helper()
	if !errors.Is(err, p.want) || !strings.Contains(err.Error(), p.Path) {
		p.t.Errorf("%s: %v, want %v naming %s", what, err, p.want, p.Path)
	}
}

// CheckRefused plants each hazard in turn, in a subtest, and runs a reader
// over it. setup archives a broadcast and returns its manifest directory, the
// track file to plant (relative, as manifest.FilePath gives it) and read,
// which runs the reader under test and checks what it did (Planted.Refused).
// read must return: a FIFO opened without O_NONBLOCK would block it forever
// (see Finish).
func CheckRefused(t *testing.T, setup func(t *testing.T) (dir, rel string, read func(p *Planted))) {
	for _, hz := range hazards {
		t.Run(hz.name, func(t *testing.T) {
			dir, rel, read := setup(t)
			p := &Planted{t: t, want: hz.want, Path: hz.plant(t, dir, rel)}
			Finish(t, func() { read(p) })
		})
	}
}
