package command

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestManifestCheckTrustBoundary: a --manifest-dir given as a symbolic link is
// resolved once and its files are checked; links and special files below it
// are problems (exit 1).
func TestManifestCheckTrustBoundary(t *testing.T) {
	root, real := t.TempDir(), t.TempDir()
	entries, stderr, code := runStage(t, CASPut(), bytes.NewReader(recordStream(t, "a", "b")), "--root", root, "--records")
	if code != ExitOK {
		t.Fatal(stderr)
	}
	if _, stderr, code := runStage(t, ManifestAppend(), strings.NewReader(entries), "--manifest-dir", real); code != ExitOK {
		t.Fatalf("code %d: %s", code, stderr)
	}
	link := filepath.Join(t.TempDir(), "manifests")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runStage(t, ManifestCheck(), nil, "--manifest-dir", link, "--root", root, "--rehash")
	if code != ExitOK || !strings.Contains(stdout, "1 files, 3 lines (2 groups, 1 gaps), 0 sessions: 0 problems") {
		t.Fatalf("linked manifest dir: code %d\n%s%s", code, stdout, stderr)
	}

	broadcast := filepath.Join(real, "live%2Fx")
	if err := unix.Mkfifo(filepath.Join(broadcast, "fifo.jsonl"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(broadcast, "passwd.jsonl")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runStage(t, ManifestCheck(), nil, "--manifest-dir", link, "--root", root)
	for _, want := range []string{"stray-file\tlive%2Fx/fifo.jsonl:0\tnot a manifest file (named pipe)",
		"stray-file\tlive%2Fx/passwd.jsonl:0\tnot a manifest file (symbolic link)", "1 files"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if code != ExitFailure {
		t.Errorf("code %d, want 1\n%s%s", code, stdout, stderr)
	}
}
