package command

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
)

func TestManifestAppendAndCheck(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	entries, stderr, code := runStage(t, CASPut(), bytes.NewReader(recordStream(t, "a", "b", "c")), "--root", root, "--records")
	if code != ExitOK {
		t.Fatal(stderr)
	}
	for range 2 { // the second run appends nothing: every line is a duplicate
		if _, stderr, code := runStage(t, ManifestAppend(), strings.NewReader(entries), "--manifest-dir", mdir, "--batch", "2"); code != ExitOK {
			t.Fatalf("code %d: %s", code, stderr)
		}
	}
	path, _ := manifest.FilePath(mdir, "live/x", "video")
	data, err := os.ReadFile(path)
	if err != nil || strings.Count(string(data), "\n") != 4 || strings.Contains(string(data), `"new"`) {
		t.Fatalf("manifest %s: %q, %v", path, data, err)
	}
	stdout, stderr, code := runStage(t, ManifestCheck(), nil, "--manifest-dir", mdir, "--root", root, "--rehash", "--unreferenced")
	if code != ExitOK || !strings.Contains(stdout, "1 files, 4 lines (3 groups, 1 gaps), 0 sessions: 0 problems, 0 unreferenced objects") {
		t.Fatalf("check: code %d\n%s%s", code, stdout, stderr)
	}

	// A bad line stops manifest-append with its number; lines before it stay.
	extra, _, _ := runStage(t, CASPut(), bytes.NewReader(recordStream(t, "d")), "--root", root, "--records")
	extra = strings.Replace(extra, `"group":1`, `"group":7`, 1)
	_, stderr, code = runStage(t, ManifestAppend(), strings.NewReader(extra+"{not json}\n"), "--manifest-dir", mdir)
	if code != ExitDataErr || !strings.Contains(stderr, "line 3") {
		t.Fatalf("bad line: code %d, stderr %q", code, stderr)
	}
	// Entry lines are not edited by hand in real life; here group 7 names d's object.
	data, _ = os.ReadFile(path)
	if !strings.Contains(string(data), `"group":7`) {
		t.Fatal("the line before the bad one was not appended")
	}

	os.Remove(root + "/" + firstPath(t, entries))
	stdout, _, code = runStage(t, ManifestCheck(), nil, "--manifest-dir", mdir, "--root", root, "--json")
	if code != ExitFailure || !strings.Contains(stdout, `"kind": "missing-object"`) {
		t.Fatalf("check after removing an object: code %d\n%s", code, stdout)
	}
}

func firstPath(t *testing.T, lines string) string {
	t.Helper()
	e, err := manifest.ParseLine([]byte(lines[:strings.IndexByte(lines, '\n')]))
	if err != nil {
		t.Fatal(err)
	}
	return e.Path
}
