package manifest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/internal/strictjson/strictjsontest"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/record"
)

const (
	testID   = "c7ca57f304c53e0ad54e4fc7fb433202a5dc5becc53f60668943d650cb4da2ee"
	testPath = `"objects/blake3/c7/` + testID + `.bin"`
)

// Valid lines that between them hold every Entry field.
var (
	groupLine = strictjsontest.Fields("v", "1", "kind", `"group"`, "broadcast", `"b"`, "track", `"t"`,
		"group", "7", "frames", "[1,2]", "size", "3", "timescale", "1000",
		"timestamps", "[0,40]", "received_unix_ms", "1",
		"blake3", `"`+testID+`"`, "path", testPath, "new", "true")
	gapLine = strictjsontest.Fields("v", "1", "kind", `"gap"`, "broadcast", `"b"`, "track", `"t"`,
		"group", "0", "size", "0", "first", "1", "last", "2", "reason", `"reset"`,
		"received_unix_ms", "1")
)

// entryWrongType holds, for each Entry field, a value of another type.
var entryWrongType = map[string]string{
	"v": `"1"`, "kind": "1", "broadcast": "true", "track": "[]", "group": `"7"`,
	"frames": `{"a":1}`, "size": "[3]", "timescale": "-1", "timestamps": "[0,0.5]",
	"first": "1.5", "last": `"2"`, "reason": "{}", "received_unix_ms": "false",
	"blake3": "1", "path": "false", "new": `"true"`,
}

// Entry's omitempty fields, which may be absent from a line.
var optionalEntryFields = map[string]bool{"frames": true, "timescale": true, "timestamps": true,
	"first": true, "last": true, "reason": true, "blake3": true, "path": true, "new": true}

func TestParseLineStrict(t *testing.T) {
	line := strictjsontest.Line
	for _, fields := range [][]strictjsontest.Field{groupLine, gapLine} {
		if _, err := ParseLine([]byte(line(fields))); err != nil {
			t.Fatalf("base line %s: %v", line(fields), err)
		}
	}
	cases := strictjsontest.Cases(t, [][]strictjsontest.Field{groupLine, gapLine}, entryWrongType, optionalEntryFields)
	cases = append(cases, []strictjsontest.Case{
		{Name: "unknown field", Line: `{"x":1,` + line(gapLine)[1:], Want: `unknown field "x"`},
		{Name: "group null (the review's case)", Line: strings.Replace(line(groupLine), `"group":7`, `"group":null`, 1), Want: `field "group": null`},
		{Name: "group without blake3", Line: line(groupLine[:10]), Want: "blake3"},
		{Name: "gap with new", Line: line(append(strictjsontest.Fields("new", "false"), gapLine...)), Want: "object fields"},
	}...)
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			_, err := ParseLine([]byte(tt.Line))
			if !errors.Is(err, record.ErrMalformed) || !strings.Contains(err.Error(), tt.Want) {
				t.Fatalf("ParseLine(%s) = %v, want ErrMalformed and %q", tt.Line, err, tt.Want)
			}
		})
	}
}

// TestObjectFieldsLen checks the constant MaxLine is derived from against the
// encoder: a cas-put line is its header's line plus at most objectFieldsLen bytes.
func TestObjectFieldsLen(t *testing.T) {
	h := record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: "b", Track: "t", Size: 0}
	header, err := AppendLine(nil, Entry{Header: h})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []cas.ID{{}, {0xff, 0x01}} {
		for _, isNew := range []bool{false, true} {
			e := Entry{Header: h, BLAKE3: id.String(), Path: cas.ObjectPath(id), New: &isNew}
			out, err := AppendLine(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			added := len(out) - len(header)
			if !bytes.HasPrefix(out, header[:len(header)-2]) || added > objectFieldsLen || !isNew && added != objectFieldsLen {
				t.Fatalf("new=%v: cas-put line adds %d bytes to the header line, objectFieldsLen is %d:\n%s", isNew, added, objectFieldsLen, out)
			}
		}
	}
}
