package manifest

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseSessionLogLine: any line is accepted only as a valid session that
// re-encodes within MaxSessionLine to a line parsing to the same session.
// Seeds: testdata/fuzz/FuzzParseSessionLogLine.
func FuzzParseSessionLogLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		s, err := ParseSessionLogLine(line)
		if err != nil {
			return
		}
		out, err := appendSessionLogLine(nil, s)
		if err != nil {
			t.Fatalf("accepted session does not encode: %v", err)
		}
		again, err := ParseSessionLogLine(bytes.TrimSuffix(out, []byte("\n")))
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip: %+v (%v), want %+v", again, err, s)
		}
	})
}
