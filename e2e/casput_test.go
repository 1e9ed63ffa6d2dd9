//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// TestCASPutMatchesB3sum compares `cas-put FILE...` with `b3sum FILE...` (Debian
// package b3sum) on names b3sum escapes or rewrites, and checks dedup.
func TestCASPutMatchesB3sum(t *testing.T) {
	b3sum, err := exec.LookPath("b3sum")
	if err != nil {
		t.Skip("b3sum not installed (Debian: apt-get install b3sum)")
	}
	dir, root := t.TempDir(), t.TempDir()
	files := map[string]string{
		"plain": "a", "empty": "", "new\nline": "b", `back\slash`: "c", "both\\\n": "d", "cr\rx": "e",
		"bad\xffname": "f", "trunc\xe2\x82": "g", "surrogate\xed\xa0\x80": "h", "utf8-é": "i", "dup": "a",
		"big": strings.Repeat("0123456789", 200_000), " lead space": "j",
	}
	var names []string
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	names = append(names, "-")
	run := func(bin string, args ...string) string {
		cmd := exec.Command(bin, append(args, names...)...)
		cmd.Dir, cmd.Stdin = dir, strings.NewReader("from stdin")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		return string(out)
	}
	want := run(b3sum)
	got := run(buildBinary(t, "cas-put"), "--root", root)
	if got != want {
		t.Fatalf("cas-put output differs from b3sum\ncas-put: %q\nb3sum:   %q", got, want)
	}
	var objects int
	filepath.WalkDir(filepath.Join(root, "objects/blake3"), func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".bin") {
			objects++
		}
		return nil
	})
	if distinct := len(files) - 1 + 1; objects != distinct { // "dup" repeats "plain"; plus stdin
		t.Fatalf("%d objects stored, want %d", objects, distinct)
	}
}

// TestHostileNames pipes records with hostile broadcast and track names through
// cas-put and manifest-append and checks that every manifest file lands inside
// the manifest directory, one level down, and holds only its own names.
func TestHostileNames(t *testing.T) {
	work := t.TempDir()
	root, mdir := filepath.Join(work, "cas"), filepath.Join(work, "m", "manifests")
	hostile := []string{"..", ".", "../../escape", "/etc/passwd", "a/b", "nul\x00byte", "new\nline", "~", "%2F",
		"café", strings.Repeat("x/", 5000), strings.Repeat("é", 3000), ".hidden", "-rf"}
	var stream bytes.Buffer
	w := record.NewWriter(&stream)
	for i, b := range hostile {
		tr := hostile[len(hostile)-1-i]
		h := record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: b, Track: tr, Group: uint64(i),
			Frames: []int64{1}, Size: 1, ReceivedUnixMs: 1}
		if err := w.WriteGroup(h, strings.NewReader("z")); err != nil {
			t.Fatal(err)
		}
	}
	sh := exec.Command("bash", "-c", `set -eo pipefail; "$1" --root "$2" --records | "$3" --manifest-dir "$4"`,
		"bash", buildBinary(t, "cas-put"), root, buildBinary(t, "manifest-append"), mdir)
	sh.Stdin = &stream
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("pipeline: %v\n%s", err, out)
	}
	// Nothing appeared next to the manifest directory.
	if entries, _ := os.ReadDir(filepath.Dir(mdir)); len(entries) != 1 {
		t.Fatalf("%s holds %d entries, want only the manifest directory", filepath.Dir(mdir), len(entries))
	}
	files := 0
	err := filepath.WalkDir(mdir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		rel, _ := filepath.Rel(mdir, path)
		if strings.Count(rel, string(filepath.Separator)) != 1 || len(filepath.Base(path)) > 255 {
			t.Errorf("manifest file %q is not <broadcast>/<track>.jsonl", rel)
		}
		f, _ := os.Open(path)
		defer f.Close()
		e, err := manifest.NewDecoder(f).Next()
		if err != nil {
			return err
		}
		if want, _ := manifest.FilePath(mdir, e.Broadcast, e.Track); want != path {
			t.Errorf("entry for %q/%q is in %s", e.Broadcast, e.Track, rel)
		}
		if b, err := manifest.UnescapeName(filepath.Base(filepath.Dir(path))); err == nil && b != e.Broadcast {
			t.Errorf("directory %q unescapes to %q, not %q", filepath.Dir(rel), b, e.Broadcast)
		}
		return nil
	})
	if err != nil || files != len(hostile) {
		t.Fatalf("%d manifest files, want %d (%v)", files, len(hostile), err)
	}
}
