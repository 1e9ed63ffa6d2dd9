// Package strictjson decodes the project's own JSON line formats (record
// headers, manifest lines) strictly. encoding/json is lenient in ways that
// would let a damaged or hand-edited line pass as a different value: it
// replaces invalid UTF-8, matches keys case-insensitively, ignores unknown keys,
// lets a repeated key overwrite the first, and takes null as "leave the zero
// value". Here each of those is an error naming the field.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Decode decodes data, exactly one JSON object, into v, a pointer to a struct.
// Beyond what encoding/json checks, it requires:
//   - data is valid UTF-8;
//   - every key is exactly (case-sensitively) the JSON name of one of v's
//     fields, fields of embedded structs included, and no key repeats;
//   - no value holds null, at any depth;
//   - every field whose tag lacks omitempty is present: the encoder always
//     writes it, so its absence means a damaged or foreign line;
//   - only white space follows the object.
func Decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty line")
	}
	if !utf8.Valid(data) {
		return errors.New("line is not valid UTF-8")
	}
	fields := fieldsOf(reflect.TypeOf(v).Elem())
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("line is not a JSON object")
	}
	seen := make(map[string]bool, len(fields.required))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		key, _ := tok.(string)
		if _, ok := fields.required[key]; !ok {
			return fmt.Errorf("unknown field %q", key)
		}
		if seen[key] {
			return fmt.Errorf("repeated field %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("field %q: json: %w", key, err)
		}
		if hasNull(raw) {
			return fmt.Errorf("field %q: null is not allowed", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if rest := data[dec.InputOffset():]; len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("trailing data after the JSON object")
	}
	for _, name := range fields.mustHave {
		if !seen[name] {
			return fmt.Errorf("missing field %q", name)
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %q: want %s, got %s", fieldName(te.Field), te.Type, te.Value)
		}
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// hasNull reports whether raw, one valid JSON value, holds a null. Outside
// strings, the only letters valid JSON has are those of true, false, null and
// a number's exponent, so an 'n' there is a null.
func hasNull(raw []byte) bool {
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == 'n':
			return true
		}
	}
	return false
}

// fieldName is the JSON key of a json.UnmarshalTypeError's Field, which is a
// path that starts with the names of embedded structs ("Header.group").
func fieldName(path string) string {
	return path[strings.LastIndexByte(path, '.')+1:]
}

// structFields are the JSON keys of a struct type.
type structFields struct {
	required map[string]bool // every key, and whether it must be present
	mustHave []string        // the keys that must be present, sorted
}

var fieldCache sync.Map // reflect.Type -> structFields

// fieldsOf returns the JSON keys of a struct's fields, including those of
// embedded structs; a field is required when its tag lacks omitempty.
func fieldsOf(t reflect.Type) structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(structFields)
	}
	fields := structFields{required: make(map[string]bool)}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		required := !slices.Contains(strings.Split(opts, ","), "omitempty")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for n, req := range fieldsOf(f.Type).required {
				fields.required[n] = req
			}
		case name != "":
			fields.required[name] = required
		default:
			fields.required[f.Name] = required
		}
	}
	for n, req := range fields.required {
		if req {
			fields.mustHave = append(fields.mustHave, n)
		}
	}
	slices.Sort(fields.mustHave)
	fieldCache.Store(t, fields)
	return fields
}
