package record

import (
	"errors"
	"strings"
	"testing"
)

// field is one key and its JSON value in a test line.
type field struct{ key, value string }

func line(fields []field) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = `"` + f.key + `":` + f.value
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Valid lines that between them hold every Header field.
var (
	groupFields = []field{{"v", "1"}, {"kind", `"group"`}, {"broadcast", `"b"`}, {"track", `"t"`},
		{"group", "7"}, {"frames", "[1,2]"}, {"size", "3"}, {"timescale", "1000"},
		{"timestamps", "[0,40]"}, {"received_unix_ms", "1"}}
	gapFields = []field{{"v", "1"}, {"kind", `"gap"`}, {"broadcast", `"b"`}, {"track", `"t"`},
		{"group", "0"}, {"size", "0"}, {"first", "1"}, {"last", "2"}, {"reason", `"reset"`},
		{"received_unix_ms", "1"}}
)

// wrongType is a value of another JSON type than each Header field's.
var wrongType = map[string]string{
	"v": `"1"`, "kind": "1", "broadcast": "true", "track": "[]", "group": `"7"`,
	"frames": `{"a":1}`, "size": "[3]", "timescale": "-1", "timestamps": "[0,0.5]",
	"first": "1.5", "last": `"2"`, "reason": "{}", "received_unix_ms": "false",
}

// strictCases derives, from valid lines, for every field: null, null inside
// an array, a repeated key, a wrong type, a missing required field and a key
// in the wrong case; each must be rejected with an error naming the field.
func strictCases(t *testing.T, lines [][]field, wrongType map[string]string, optional map[string]bool) []struct{ name, line, want string } {
	t.Helper()
	var cases []struct{ name, line, want string }
	add := func(name, line, want string) { cases = append(cases, struct{ name, line, want string }{name, line, want}) }
	with := func(fields []field, i int, value string) []field {
		out := append([]field(nil), fields...)
		out[i].value = value
		return out
	}
	for _, fields := range lines {
		for i, f := range fields {
			q := `"` + f.key + `"`
			add(f.key+" null", line(with(fields, i, "null")), "field "+q+": null is not allowed")
			if strings.HasPrefix(f.value, "[") {
				add(f.key+" null element", line(with(fields, i, "[null]")), "field "+q+": null is not allowed")
			}
			add(f.key+" repeated", line(append(append([]field(nil), fields...), f)), "repeated field "+q)
			wrong, ok := wrongType[f.key]
			if !ok {
				t.Fatalf("no wrong-type value for %q", f.key)
			}
			add(f.key+" wrong type", line(with(fields, i, wrong)), "field "+q+": want ")
			if !optional[f.key] {
				rest := append(append([]field(nil), fields[:i]...), fields[i+1:]...)
				add(f.key+" missing", line(rest), "missing field "+q)
			}
			upper := append([]field(nil), fields...)
			upper[i].key = strings.ToUpper(f.key)
			add(f.key+" case", line(upper), `unknown field "`+upper[i].key+`"`)
		}
	}
	return cases
}

// Header's omitempty fields, which may be absent.
var optionalHeaderFields = map[string]bool{"frames": true, "timescale": true, "timestamps": true, "first": true, "last": true, "reason": true}

func TestDecodeHeaderStrict(t *testing.T) {
	for _, fields := range [][]field{groupFields, gapFields} {
		if _, err := DecodeHeader([]byte(line(fields))); err != nil {
			t.Fatalf("base line %s: %v", line(fields), err)
		}
	}
	cases := strictCases(t, [][]field{groupFields, gapFields}, wrongType, optionalHeaderFields)
	cases = append(cases, []struct{ name, line, want string }{
		{"unknown field", `{"x":1,` + line(groupFields)[1:], `unknown field "x"`},
		{"trailing data", line(groupFields) + " {}", "trailing data"},
		{"not an object", "[1]", "not a JSON object"},
		{"empty", " ", "empty line"},
		{"invalid utf-8", strings.Replace(line(groupFields), `"b"`, "\"\xff\"", 1), "not valid UTF-8"},
		{"null in a name is a string", strings.Replace(line(groupFields), `"b"`, `"null"`, 1), ""},
		{"escaped quote before n", strings.Replace(line(groupFields), `"b"`, `"\"n"`, 1), ""},
	}...)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeHeader([]byte(tt.line))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("DecodeHeader(%s) = %v, want nil", tt.line, err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeHeader(%s) = %v, want ErrMalformed and %q", tt.line, err, tt.want)
			}
		})
	}
}
