package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// DecodeStrict decodes one JSON line into v, a pointer to a struct. It is
// stricter than encoding/json, which silently replaces invalid UTF-8, matches
// keys case-insensitively and lets a repeated key overwrite an earlier one: here
// the line must be valid UTF-8, every top-level key must be exactly one of v's
// JSON field names, no key may repeat, and nothing may follow the object.
func DecodeStrict(line []byte, v any) error {
	if len(line) == 0 {
		return malformed("empty line")
	}
	if !utf8.Valid(line) {
		return malformed("line is not valid UTF-8")
	}
	if err := checkKeys(line, fieldNames(reflect.TypeOf(v).Elem())); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: json: %w", ErrMalformed, err)
	}
	if dec.More() {
		return malformed("trailing data after the JSON object")
	}
	return nil
}

// checkKeys walks the top-level object of line and checks its keys.
func checkKeys(line []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return malformed("line is not a JSON object")
	}
	seen := make(map[string]bool, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: json: %w", ErrMalformed, err)
		}
		key, _ := tok.(string)
		if !allowed[key] {
			return malformed("unknown field %q", key)
		}
		if seen[key] {
			return malformed("repeated field %q", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("%w: json: field %q: %w", ErrMalformed, key, err)
		}
	}
	return nil
}

var fieldNameCache sync.Map // reflect.Type -> map[string]bool

// fieldNames returns the JSON names of a struct's fields, including those of
// embedded structs, as encoding/json spells them.
func fieldNames(t reflect.Type) map[string]bool {
	if m, ok := fieldNameCache.Load(t); ok {
		return m.(map[string]bool)
	}
	names := make(map[string]bool)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			for n := range fieldNames(f.Type) {
				names[n] = true
			}
		case tag != "":
			names[tag] = true
		default:
			names[f.Name] = true
		}
	}
	fieldNameCache.Store(t, names)
	return names
}
