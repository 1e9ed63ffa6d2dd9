//go:build e2e

// Package e2e holds the slow tests that run the real binaries as processes.
// Run them with `go test -tags e2e ./e2e/`.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds the binaries built for this test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ec-node-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var builtBinaries sync.Map // command name -> *builtBinary

// buildBinary builds ./cmd/<name> once per test run and returns its path.
func buildBinary(t testing.TB, name string) string {
	t.Helper()
	v, _ := builtBinaries.LoadOrStore(name, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, name)
		cmd := exec.Command("go", "build", "-o", b.path, "./cmd/"+name)
		cmd.Dir = ".." // the module root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}
