package cas

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEachListsWellNamedObjectsOnly(t *testing.T) {
	root := t.TempDir()
	l, err := OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	var want []ID
	for _, s := range []string{"a", "b", "c"} {
		res, err := l.Put(context.Background(), strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res.ID)
	}
	// A stray file and a misplaced object are not objects.
	shard := filepath.Dir(filepath.Join(root, ObjectPath(want[0])))
	if err := os.WriteFile(filepath.Join(shard, "stray.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	misplaced := strings.Repeat("f", 64) + ".bin"
	if err := os.WriteFile(filepath.Join(shard, misplaced), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var got []ID
	if err := l.Each(context.Background(), func(id ID) error { got = append(got, id); return nil }); err != nil {
		t.Fatal(err)
	}
	cmp := func(a, b ID) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Errorf("Each = %v, want %v", got, want)
	}
}
