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

// TestDirAppendAfterRootRemoved: a file first opened after the manifest root
// was removed under a Dir lands in the recreated root.
func TestDirAppendAfterRootRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	d, err := OpenDir(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Append(testBroadcast, testTrack, groupEntry(1, "a")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	other := gapEntry(3, 4)
	other.Track = "audio"
	if _, err := d.Append(testBroadcast, "audio", other); err != nil {
		t.Fatal(err)
	}
	path, _ := FilePath(dir, testBroadcast, "audio")
	if got := readEntries(t, path); len(got) != 1 || got[0].First != 3 {
		t.Fatalf("recreated file holds %+v, want the gap", got)
	}
}
