package command

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/every-channel/ec-node/pkg/cas"
)

func runVerify(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := NewApp("ec-node-cas-verify", "", CASVerify())
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.RunContext(context.Background(), append([]string{"cas-verify"}, args...))
	return out.String(), errOut.String(), ExitCode(err)
}

func TestCASVerifyCommand(t *testing.T) {
	root := t.TempDir()
	store, err := cas.OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	var objs []cas.PutResult
	for _, s := range []string{"one", "two", "three"} {
		res, err := store.Put(context.Background(), strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, res)
	}

	stdout, stderr, code := runVerify(t, "--root", root)
	if code != ExitOK || stdout != "" || !strings.Contains(stderr, "verified 3 objects") {
		t.Fatalf("clean tree: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	flipped := filepath.Join(root, objs[0].Path)
	os.Chmod(flipped, 0o644)
	os.WriteFile(flipped, []byte("onf"), 0o644)
	stray := filepath.Join(root, "objects/blake3", objs[1].ID.String()[:2], "bad\nname")
	os.WriteFile(stray, nil, 0o644)

	stdout, _, code = runVerify(t, "--root", root, "--workers", "2", "--progress", "never")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != ExitFailure || len(lines) != 2 {
		t.Fatalf("damaged tree: code %d, stdout %q", code, stdout)
	}
	for _, want := range []string{"corrupt\t" + objs[0].Path + "\tsize=3\texpected=" + objs[0].ID.String(), `stray	"objects/blake3/`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	stdout, _, code = runVerify(t, "--root", root, "--json")
	var report cas.VerifyReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil || code != ExitFailure {
		t.Fatalf("--json: code %d, %v: %q", code, err, stdout)
	}
	if report.Objects != 3 || report.Corrupt != 1 || report.Stray != 1 || len(report.Findings) != 2 {
		t.Errorf("--json report = %+v", report)
	}
}

func TestCASVerifyUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"missing root", nil, ExitUsage},
		{"stray argument", []string{"--root", ".", "extra"}, ExitUsage},
		{"bad progress", []string{"--root", ".", "--progress", "sometimes"}, ExitUsage},
		{"negative workers", []string{"--root", ".", "--workers", "-1"}, ExitUsage},
		{"not a store", []string{"--root", "/nonexistent/cas"}, ExitIOErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, code := runVerify(t, tt.args...); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
		})
	}
}

// TestCASVerifyReportsLinksAndSpecialFiles: nothing below --root is followed
// or read that the layout does not allow; each is a stray finding, exit 1.
func TestCASVerifyReportsLinksAndSpecialFiles(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, root string, obj cas.PutResult) (rel string)
	}{
		{"linked objects/blake3", func(t *testing.T, root string, obj cas.PutResult) string {
			return moveOut(t, root, "objects/blake3")
		}},
		{"linked objects", func(t *testing.T, root string, obj cas.PutResult) string {
			return moveOut(t, root, "objects")
		}},
		{"linked shard", func(t *testing.T, root string, obj cas.PutResult) string {
			return moveOut(t, root, "objects/blake3/"+obj.ID.String()[:2])
		}},
		{"FIFO object", func(t *testing.T, root string, obj cas.PutResult) string {
			p := filepath.Join(root, obj.Path)
			os.Remove(p)
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return obj.Path
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			store, err := cas.OpenLocal(root)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := store.Put(context.Background(), strings.NewReader("object"))
			if err != nil {
				t.Fatal(err)
			}
			rel := tt.plant(t, root, obj)
			stdout, stderr, code := runVerify(t, "--root", root, "--progress", "never")
			if code != ExitFailure || !strings.HasPrefix(stdout, "stray\t"+rel+"\t") || strings.Count(stdout, "\n") != 1 {
				t.Errorf("code %d, stdout %q, stderr %q; want exit 1 and one stray finding for %s", code, stdout, stderr, rel)
			}
			mdir := t.TempDir()
			_, stderr, code = runVerify(t, "--root", root, "--progress", "never", "--manifest-dir", mdir)
			if code != ExitFailure {
				t.Errorf("with --manifest-dir: code %d (%s), want 1", code, stderr)
			}
		})
	}
}

// moveOut moves root/rel out of the root and puts a symbolic link to it in its
// place; it returns rel.
func moveOut(t *testing.T, root, rel string) string {
	t.Helper()
	outside := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(filepath.Join(root, rel), outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
	return rel
}
