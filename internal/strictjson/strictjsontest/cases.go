// Package strictjsontest derives the cases that strictjson.Decode must reject
// from a valid line, so that each format's tests cover every field alike.
package strictjsontest

import (
	"strings"
	"testing"
)

// Field is one key of a line and its JSON value.
type Field struct{ Key, Value string }

// Fields pairs keys and JSON values: Fields("v", "1", "kind", `"gap"`).
func Fields(kv ...string) []Field {
	if len(kv)%2 != 0 {
		panic("strictjsontest.Fields: odd number of arguments")
	}
	fields := make([]Field, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		fields = append(fields, Field{Key: kv[i], Value: kv[i+1]})
	}
	return fields
}

// Line is the JSON object of fields, in order.
func Line(fields []Field) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = `"` + f.Key + `":` + f.Value
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Case is a line to reject and a part of the error it must get.
type Case struct{ Name, Line, Want string }

// Cases derives, from valid lines, for every field: null, null inside an
// array, the key repeated, a value of a wrong type (wrongType[key]), the key
// in upper case and, unless optional[key], the field missing. Each error names
// the field.
func Cases(tb testing.TB, lines [][]Field, wrongType map[string]string, optional map[string]bool) []Case {
	tb.Helper()
	var cases []Case
	add := func(name, line, want string) { cases = append(cases, Case{name, line, want}) }
	with := func(fields []Field, i int, f Field) string {
		out := append([]Field(nil), fields...)
		out[i] = f
		return Line(out)
	}
	for _, fields := range lines {
		for i, f := range fields {
			q := `"` + f.Key + `"`
			add(f.Key+" null", with(fields, i, Field{f.Key, "null"}), "field "+q+": null is not allowed")
			if strings.HasPrefix(f.Value, "[") {
				add(f.Key+" null element", with(fields, i, Field{f.Key, "[null]"}), "field "+q+": null is not allowed")
			}
			add(f.Key+" repeated", Line(append(append([]Field(nil), fields...), f)), "repeated field "+q)
			wrong, ok := wrongType[f.Key]
			if !ok {
				tb.Fatalf("no wrong-type value for %q", f.Key)
			}
			add(f.Key+" wrong type", with(fields, i, Field{f.Key, wrong}), "field "+q+": want ")
			upper := strings.ToUpper(f.Key)
			add(f.Key+" upper case", with(fields, i, Field{upper, f.Value}), `unknown field "`+upper+`"`)
			if !optional[f.Key] {
				rest := append(append([]Field(nil), fields[:i]...), fields[i+1:]...)
				add(f.Key+" missing", Line(rest), "missing field "+q)
			}
		}
	}
	return cases
}
