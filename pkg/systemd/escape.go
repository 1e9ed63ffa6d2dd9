package systemd

import (
	"errors"
	"fmt"
	"strings"
)

// Escape applies systemd-escape(1)'s default (non-path) mode to s, as
// unit_name_escape does: "/" becomes "-"; ASCII letters, digits, ":", "_" and a
// non-leading "." are kept; every other byte becomes "\xNN" (lowercase hex).
// The result is a valid unit-name component for any input, equal to what
// `systemd-escape -- s` prints, and Unescape(Escape(s)) == s.
func Escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case isUnitNameByte(c) && !(c == '.' && i == 0):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// isUnitNameByte reports whether systemd keeps c as is when escaping: the
// unit-name characters (VALID_CHARS in systemd's unit-name.c) other than "-"
// and "\\", which carry the escaping itself.
func isUnitNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.'
}

// ErrBadEscape reports a string that no Escape call can have produced.
var ErrBadEscape = errors.New("systemd: invalid escaped unit-name component")

// Unescape reverses Escape. Unlike systemd-escape -u it accepts only the
// canonical form Escape produces (lowercase hex, no needless escapes, no NUL),
// so each escaped name maps back to exactly one string and vice versa.
func Unescape(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-':
			b.WriteByte('/')
		case c == '\\':
			if i+3 >= len(s) || s[i+1] != 'x' {
				return "", fmt.Errorf("%w: %q at byte %d", ErrBadEscape, s, i)
			}
			v, ok := unhex(s[i+2], s[i+3])
			if !ok || v == 0 {
				return "", fmt.Errorf("%w: %q at byte %d", ErrBadEscape, s, i)
			}
			b.WriteByte(v)
			i += 3
		case isUnitNameByte(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("%w: %q at byte %d", ErrBadEscape, s, i)
		}
	}
	out := b.String()
	if Escape(out) != s {
		return "", fmt.Errorf("%w: %q is not in canonical form", ErrBadEscape, s)
	}
	return out, nil
}

func unhex(hi, lo byte) (byte, bool) {
	h, ok1 := hexVal(hi)
	l, ok2 := hexVal(lo)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
