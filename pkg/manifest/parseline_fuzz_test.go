package manifest

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseLine: any line is accepted only as a valid entry that re-encodes to
// a line of at most MaxLine bytes parsing to the same entry, and whose names
// map to a file inside the manifest root. Seeds: testdata/fuzz/FuzzParseLine.
func FuzzParseLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid entry: %v", err)
		}
		out, err := AppendLine(nil, e)
		if err != nil {
			t.Fatalf("accepted entry does not encode: %v", err)
		}
		if len(out)-1 > MaxLine {
			t.Fatalf("accepted entry encodes to %d bytes, MaxLine %d", len(out)-1, MaxLine)
		}
		again, err := ParseLine(bytes.TrimSuffix(out, []byte("\n")))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip: %+v (%v), want %+v", again, err, e)
		}
		const root = "/manifests"
		path, err := FilePath(root, e.Broadcast, e.Track)
		if err != nil {
			return // names too long to escape are refused, not written
		}
		if !strings.HasPrefix(filepath.Clean(path), root+"/") || strings.ContainsRune(path, 0) {
			t.Fatalf("names %q/%q escape the root: %q", e.Broadcast, e.Track, path)
		}
	})
}
