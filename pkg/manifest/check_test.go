package manifest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
)

// storeGroups puts payloads into a fresh store and returns entries for them.
func storeGroups(t *testing.T, store *cas.Local, payloads ...string) []Entry {
	t.Helper()
	var out []Entry
	for i, p := range payloads {
		res, err := store.Put(context.Background(), strings.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		e := groupEntry(uint64(i+1), p)
		if e.BLAKE3 != res.ID.String() {
			t.Fatal("test hash differs from the store's")
		}
		out = append(out, e)
	}
	return out
}

func appendRaw(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(text)
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	casRoot, mdir := t.TempDir(), t.TempDir()
	store, err := cas.OpenLocal(casRoot)
	if err != nil {
		t.Fatal(err)
	}
	entries := storeGroups(t, store, "one", "two", "three", "four")
	a, _ := openTest(t, mdir)
	if _, err := a.Append(append(entries, gapEntry(10, 12))...); err != nil {
		t.Fatal(err)
	}
	listed := func(ctx context.Context, fn func(cas.ID) error) error {
		for _, p := range []string{"one", "two", "three", "four", "unreferenced"} {
			e := groupEntry(0, p)
			id, _ := e.ID()
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	}
	rep, err := Check(ctx, mdir, store, CheckOptions{Rehash: true, ListObjects: listed})
	if err != nil || !rep.Clean() || rep.Groups != 4 || rep.Gaps != 1 || rep.Files != 1 || rep.Unreferenced != 1 {
		t.Fatalf("clean tree: %+v, %v", rep, err)
	}

	// Break it in every way Check must find.
	obj := func(e Entry) string { return filepath.Join(casRoot, filepath.FromSlash(e.Path)) }
	os.Remove(obj(entries[0]))
	os.Chmod(obj(entries[1]), 0o644)
	os.WriteFile(obj(entries[1]), []byte("twX"), 0o644)
	os.Chmod(obj(entries[2]), 0o644)
	os.WriteFile(obj(entries[2]), []byte("3"), 0o644)
	dup, _ := AppendLine(nil, entries[3])
	other := gapEntry(1, 1)
	other.Track = "audio"
	wrong, _ := AppendLine(nil, other)
	appendRaw(t, a.Path(), string(dup)+string(wrong)+"not json\n"+`{"v":1,"kind":`)
	os.WriteFile(filepath.Join(mdir, "stray.txt"), nil, 0o644)

	rep, err = Check(ctx, mdir, store, CheckOptions{Rehash: true})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range rep.Problems {
		kinds[p.Kind] = p.Line
	}
	want := map[string]int{ProblemMissingObject: 1, ProblemHashMismatch: 2, ProblemSizeMismatch: 3, ProblemDuplicate: 6,
		ProblemWrongFile: 7, ProblemInvalidLine: 8, ProblemTornTail: 9, ProblemStrayFile: 0}
	for k, line := range want {
		if got, ok := kinds[k]; !ok || got != line {
			t.Errorf("problem %s: line %d found=%v, want line %d", k, got, ok, line)
		}
	}
	if rep.Clean() || rep.ProblemCount != len(want) {
		t.Fatalf("report %+v, want %d problems", rep, len(want))
	}
	// Without Rehash the flipped byte goes unnoticed (same size).
	rep, _ = Check(ctx, mdir, store, CheckOptions{})
	if rep.ProblemCount != len(want)-1 {
		t.Fatalf("without rehash: %d problems, want %d", rep.ProblemCount, len(want)-1)
	}
}
