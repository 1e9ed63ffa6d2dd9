package cas

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/every-channel/ec-node/internal/safefs"
)

// storeWith opens a store holding n distinct objects and returns their results.
func storeWith(t *testing.T, n int) (*Local, []PutResult) {
	t.Helper()
	s := openTestStore(t)
	var results []PutResult
	for i := range n {
		res, err := s.Put(context.Background(), bytes.NewReader(randomBytes(1000+i*5000, uint64(i+10))))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	return s, results
}

func TestVerifyCleanTree(t *testing.T) {
	t.Parallel()
	s, results := storeWith(t, 5)
	var wantBytes int64
	for _, r := range results {
		wantBytes += r.Size
	}
	var checked atomic.Int64
	var last VerifyProgress
	report, err := s.Verify(context.Background(), VerifyOptions{
		Workers:  3,
		OnObject: func(c ObjectCheck) { checked.Add(1) },
		Progress: func(p VerifyProgress) { last = p },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !report.Clean() || len(report.Findings) != 0 || report.Objects != 5 || report.Bytes != wantBytes {
		t.Errorf("report = %+v, want clean with 5 objects, %d bytes", report, wantBytes)
	}
	if checked.Load() != 5 {
		t.Errorf("OnObject called %d times, want 5", checked.Load())
	}
	if last.Objects != 5 || last.Bytes != wantBytes || last.ShardsWalked != last.ShardsTotal || last.ShardsTotal == 0 {
		t.Errorf("final progress = %+v", last)
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(t *testing.T, root string, obj PutResult) (path string)
		kind   FindingKind
		detail string
	}{
		{"flipped byte", func(t *testing.T, root string, obj PutResult) string {
			p := filepath.Join(root, obj.Path)
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 0x01
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return obj.Path
		}, Corrupt, ""},
		{"truncated", func(t *testing.T, root string, obj PutResult) string {
			p := filepath.Join(root, obj.Path)
			os.Chmod(p, 0o644)
			if err := os.Truncate(p, obj.Size/3); err != nil {
				t.Fatal(err)
			}
			return obj.Path
		}, Corrupt, ""},
		{"stray file in a shard", func(t *testing.T, root string, obj PutResult) string {
			rel := "objects/blake3/" + obj.ID.String()[:2] + "/notes.txt"
			os.WriteFile(filepath.Join(root, rel), []byte("hi"), 0o644)
			return rel
		}, Stray, "not an object name"},
		{"upper-case object name", func(t *testing.T, root string, obj PutResult) string {
			h := obj.ID.String()
			rel := "objects/blake3/" + h[:2] + "/" + strings.ToUpper(h) + ".bin"
			os.WriteFile(filepath.Join(root, rel), []byte("hi"), 0o644)
			return rel
		}, Stray, "not an object name"},
		{"stray at top level", func(t *testing.T, root string, obj PutResult) string {
			os.WriteFile(filepath.Join(root, "objects/blake3/README"), nil, 0o644)
			return "objects/blake3/README"
		}, Stray, "not a shard directory"},
		{"misplaced object", func(t *testing.T, root string, obj PutResult) string {
			h := obj.ID.String()
			other := "00"
			if h[:2] == "00" {
				other = "01"
			}
			rel := "objects/blake3/" + other + "/" + h + ".bin"
			data, _ := os.ReadFile(filepath.Join(root, obj.Path))
			os.MkdirAll(filepath.Join(root, "objects/blake3", other), 0o755)
			os.WriteFile(filepath.Join(root, rel), data, 0o644)
			return rel
		}, Stray, "wrong shard"},
		{"symlink", func(t *testing.T, root string, obj PutResult) string {
			h := obj.ID.String()
			rel := "objects/blake3/" + h[:2] + "/" + strings.Repeat("0", 62) + h[:2] + ".bin"
			os.Symlink("/etc/passwd", filepath.Join(root, rel))
			return rel
		}, Stray, "not a regular file"},
		{"linked objects/blake3", func(t *testing.T, root string, obj PutResult) string {
			linkOut(t, root, "objects/blake3")
			return "objects/blake3"
		}, Stray, "symbolic link"},
		{"linked objects", func(t *testing.T, root string, obj PutResult) string {
			linkOut(t, root, "objects")
			return "objects"
		}, Stray, "symbolic link"},
		{"linked shard directory", func(t *testing.T, root string, obj PutResult) string {
			rel := "objects/blake3/" + obj.ID.String()[:2]
			linkOut(t, root, rel)
			return rel
		}, Stray, "symbolic link"},
		{"linked temp directory", func(t *testing.T, root string, obj PutResult) string {
			linkOut(t, root, TempDir)
			return TempDir
		}, Stray, "symbolic link"},
		{"linked layout.json", func(t *testing.T, root string, obj PutResult) string {
			p := filepath.Join(root, LayoutFile)
			copy := filepath.Join(t.TempDir(), LayoutFile)
			os.Rename(p, copy)
			os.Symlink(copy, p)
			return LayoutFile
		}, Stray, "symbolic link"},
		{"FIFO in a shard", func(t *testing.T, root string, obj PutResult) string {
			h := obj.ID.String()
			rel := "objects/blake3/" + h[:2] + "/" + strings.Repeat("1", 62) + h[:2] + ".bin"
			if err := unix.Mkfifo(filepath.Join(root, rel), 0o644); err != nil {
				t.Fatal(err)
			}
			return rel
		}, Stray, "named pipe"},
		{"socket in the root", func(t *testing.T, root string, obj PutResult) string {
			l, err := net.Listen("unix", filepath.Join(root, "sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return "sock"
		}, Stray, "socket"},
		{"temp file", func(t *testing.T, root string, obj PutResult) string {
			rel := TempDir + "/" + TempPrefix + "leftover"
			p := filepath.Join(root, rel)
			os.WriteFile(p, []byte("partial"), 0o644)
			old := time.Now().Add(-90 * time.Minute)
			os.Chtimes(p, old, old)
			return rel
		}, Temp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, results := storeWith(t, 3)
			path := tt.damage(t, s.Root(), results[1])
			report, err := Verify(context.Background(), s.Root(), VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(report.Findings) != 1 {
				t.Fatalf("findings = %+v, want exactly one", report.Findings)
			}
			f := report.Findings[0]
			if f.Kind != tt.kind || f.Path != path || !strings.Contains(f.Detail, tt.detail) {
				t.Errorf("finding = %+v, want %s at %s (%q)", f, tt.kind, path, tt.detail)
			}
			if wantClean := tt.kind == Temp; report.Clean() != wantClean {
				t.Errorf("Clean() = %v, want %v", report.Clean(), wantClean)
			}
			switch tt.kind {
			case Corrupt:
				if f.Expected != results[1].ID.String() || f.Actual == f.Expected || f.Actual == "" {
					t.Errorf("expected/actual = %s/%s", f.Expected, f.Actual)
				}
			case Temp:
				if f.Age < 89*time.Minute || f.Size != int64(len("partial")) {
					t.Errorf("temp age %v size %d", f.Age, f.Size)
				}
			}
		})
	}
}

func TestVerifyReportIsSorted(t *testing.T) {
	t.Parallel()
	s, results := storeWith(t, 1)
	for _, name := range []string{"ff/zz", "00/zz", "7a/zz", "00/aa"} {
		p := filepath.Join(s.Root(), objectsDir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	p := filepath.Join(s.Root(), results[0].Path)
	os.Chmod(p, 0o644)
	os.WriteFile(p, []byte("not the original"), 0o644)
	report, err := s.Verify(context.Background(), VerifyOptions{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range report.Findings {
		got = append(got, f.Path)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] > got[i] {
			t.Fatalf("findings out of order: %v", got)
		}
	}
	if report.Stray != 4 || report.Corrupt != 1 {
		t.Errorf("stray %d corrupt %d, want 4 and 1", report.Stray, report.Corrupt)
	}
}

func TestVerifyRejectsNonStore(t *testing.T) {
	t.Parallel()
	if _, err := Verify(context.Background(), t.TempDir(), VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "not a CAS root") {
		t.Errorf("Verify on an empty directory: %v", err)
	}
}

func TestVerifyCancelled(t *testing.T) {
	t.Parallel()
	s, _ := storeWith(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Verify(ctx, VerifyOptions{}); err == nil {
		t.Error("Verify with a cancelled context succeeded")
	}
}

// TestVerifySwappedFiles swaps an object for something else between the walk
// and the open. Verify must neither block (a FIFO opened without O_NONBLOCK
// waits for a writer forever) nor read without end (/dev/zero), and must
// report it. (Reads bounded by the size at open: internal/safefs tests.)
func TestVerifySwappedFiles(t *testing.T) {
	tests := []struct {
		name   string
		swap   func(t *testing.T, path string)
		kind   FindingKind
		detail string
	}{
		{"FIFO", func(t *testing.T, p string) {
			os.Remove(p)
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, Stray, "named pipe"},
		{"link to /dev/zero", func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}, Stray, "symbolic link"},
	}
	saved := openObject
	t.Cleanup(func() { openObject = saved })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, results := storeWith(t, 3)
			victim := results[1].Path
			openObject = func(r *safefs.Root, rel string) (*os.File, error) {
				if rel != victim {
					return saved(r, rel)
				}
				tt.swap(t, r.Join(rel))
				return saved(r, rel)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			type result struct {
				report VerifyReport
				err    error
			}
			done := make(chan result, 1)
			go func() {
				report, err := s.Verify(ctx, VerifyOptions{Workers: 2})
				done <- result{report, err}
			}()
			var res result
			select {
			case res = <-done:
			case <-ctx.Done():
				t.Fatal("Verify did not finish: blocked on the swapped file")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			if len(res.report.Findings) != 1 || res.report.Clean() {
				t.Fatalf("findings = %+v, want exactly one", res.report.Findings)
			}
			f := res.report.Findings[0]
			if f.Kind != tt.kind || f.Path != victim || !strings.Contains(f.Detail, tt.detail) {
				t.Errorf("finding = %+v, want %s at %s (%q)", f, tt.kind, victim, tt.detail)
			}
		})
	}
}
