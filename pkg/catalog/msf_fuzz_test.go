package catalog

import (
	"slices"
	"testing"
)

// FuzzParseMSF: an MSF catalog from the network yields at most MaxTracks
// unique, sorted, valid track names in the broadcast's namespace, or an
// error. Seeds: testdata/fuzz/FuzzParseMSF.
func FuzzParseMSF(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := ParseMSF(doc, "live/alice")
		if err != nil {
			return
		}
		if len(c.Tracks) > MaxTracks || !slices.IsSorted(c.Tracks) || len(slices.Compact(slices.Clone(c.Tracks))) != len(c.Tracks) {
			t.Fatalf("tracks %q: over the limit, unsorted or repeated", c.Tracks)
		}
		for _, name := range c.Tracks {
			if !validName(name) {
				t.Fatalf("invalid track name %q returned", name)
			}
		}
	})
}
