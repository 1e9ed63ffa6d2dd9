package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAppendAfterRootRemoved: lines appended after the manifest root (or the
// file) was removed while open land in a recreated file, not in the unlinked
// one (found by e2e TestReliabilityDiskFaults).
func TestAppendAfterRootRemoved(t *testing.T) {
	for _, remove := range []string{"root", "file", "replaced"} {
		t.Run(remove, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "manifests")
			a, _ := openTest(t, dir)
			if _, err := a.Append(groupEntry(1, "a")); err != nil {
				t.Fatal(err)
			}
			switch remove {
			case "root":
				os.RemoveAll(dir)
			case "file":
				os.Remove(a.Path())
			case "replaced":
				os.Rename(a.Path(), a.Path()+".old")
				os.WriteFile(a.Path(), nil, 0o644)
			}
			if _, err := a.Append(groupEntry(1, "a"), groupEntry(2, "b")); err != nil {
				t.Fatal(err)
			}
			got := readEntries(t, a.Path())
			if len(got) != 2 || got[0].Group != 1 || got[1].Group != 2 {
				t.Fatalf("after the %s was removed the file holds %+v, want groups 1 and 2", remove, got)
			}
		})
	}
}
