package record

import (
	"errors"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/internal/strictjson/strictjsontest"
)

// Valid header lines that between them hold every Header field.
var (
	groupFields = strictjsontest.Fields("v", "1", "kind", `"group"`, "broadcast", `"b"`, "track", `"t"`,
		"group", "7", "frames", "[1,2]", "size", "3", "timescale", "1000",
		"timestamps", "[0,40]", "received_unix_ms", "1")
	gapFields = strictjsontest.Fields("v", "1", "kind", `"gap"`, "broadcast", `"b"`, "track", `"t"`,
		"group", "0", "size", "0", "first", "1", "last", "2", "reason", `"reset"`,
		"received_unix_ms", "1")
)

// headerWrongType holds, for each Header field, a value of another type.
var headerWrongType = map[string]string{
	"v": `"1"`, "kind": "1", "broadcast": "true", "track": "[]", "group": `"7"`,
	"frames": `{"a":1}`, "size": "[3]", "timescale": "-1", "timestamps": "[0,0.5]",
	"first": "1.5", "last": `"2"`, "reason": "{}", "received_unix_ms": "false",
}

// Header's omitempty fields, which may be absent.
var optionalHeaderFields = map[string]bool{"frames": true, "timescale": true, "timestamps": true, "first": true, "last": true, "reason": true}

func TestDecodeHeaderStrict(t *testing.T) {
	line := strictjsontest.Line
	for _, fields := range [][]strictjsontest.Field{groupFields, gapFields} {
		if _, err := DecodeHeader([]byte(line(fields))); err != nil {
			t.Fatalf("base line %s: %v", line(fields), err)
		}
	}
	cases := strictjsontest.Cases(t, [][]strictjsontest.Field{groupFields, gapFields}, headerWrongType, optionalHeaderFields)
	cases = append(cases, []strictjsontest.Case{
		{Name: "unknown field", Line: `{"x":1,` + line(groupFields)[1:], Want: `unknown field "x"`},
		{Name: "trailing data", Line: line(groupFields) + " {}", Want: "trailing data"},
		{Name: "not an object", Line: "[1]", Want: "not a JSON object"},
		{Name: "empty", Line: " ", Want: "empty line"},
		{Name: "invalid utf-8", Line: strings.Replace(line(groupFields), `"b"`, "\"\xff\"", 1), Want: "not valid UTF-8"},
		{Name: "null as a name", Line: strings.Replace(line(groupFields), `"b"`, `"null"`, 1)},
		{Name: "escaped quote before n", Line: strings.Replace(line(groupFields), `"b"`, `"\"n\\"`, 1)},
	}...)
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			_, err := DecodeHeader([]byte(tt.Line))
			if tt.Want == "" {
				if err != nil {
					t.Fatalf("DecodeHeader(%s) = %v, want nil", tt.Line, err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.Want) {
				t.Fatalf("DecodeHeader(%s) = %v, want ErrMalformed and %q", tt.Line, err, tt.Want)
			}
		})
	}
}
