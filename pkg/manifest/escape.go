package manifest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/zeebo/blake3"
)

// Escaping of broadcast and track names into single path components
// (docs/manifest.md). Bytes [A-Za-z0-9_-] and '.' (except as the first byte)
// stand for themselves; every other byte becomes %XX with upper-case hex. An
// escaped form longer than MaxEscapedName is replaced by its first
// hashedPrefixLen bytes (not splitting an escape), '~', and the first 32 hex
// characters of the BLAKE3 of the name; '~' never appears in the short form.
const (
	MaxEscapedName  = 200 // leaves room for ".jsonl" under NAME_MAX (255)
	hashedPrefixLen = 100
	hashedHexLen    = 32
	hashedMarker    = '~'
)

// ErrHashedName is returned by UnescapeName for the hashed long form, which
// cannot be reversed; the full name is in every line of the file.
var ErrHashedName = errors.New("hashed long name: the full name is in the file's lines")

const upperHex = "0123456789ABCDEF"

func passes(c byte, first bool) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.' && !first
}

// EscapeName maps a non-empty name to one safe path component: never empty, "."
// or "..", without '/' or NUL, at most MaxEscapedName bytes. Distinct names map
// to distinct components (for the hashed form, up to a 128-bit hash collision).
func EscapeName(name string) (string, error) {
	if name == "" {
		return "", errors.New("manifest: empty name")
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if passes(c, i == 0) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	esc := b.String()
	if len(esc) <= MaxEscapedName {
		return esc, nil
	}
	cut := hashedPrefixLen
	if i := strings.LastIndexByte(esc[:cut], '%'); i >= cut-2 {
		cut = i // do not split an escape
	}
	sum := blake3.Sum256([]byte(name))
	return esc[:cut] + string(hashedMarker) + hex.EncodeToString(sum[:])[:hashedHexLen], nil
}

// UnescapeName reverses EscapeName for the short form. It rejects anything
// EscapeName cannot produce, and returns ErrHashedName for the long form.
func UnescapeName(comp string) (string, error) {
	if strings.IndexByte(comp, hashedMarker) >= 0 {
		return "", ErrHashedName
	}
	if comp == "" || len(comp) > MaxEscapedName {
		return "", fmt.Errorf("manifest: escaped name %q: length %d outside 1..%d", comp, len(comp), MaxEscapedName)
	}
	var b strings.Builder
	for i := 0; i < len(comp); i++ {
		c := comp[i]
		if c != '%' {
			if !passes(c, i == 0) {
				return "", fmt.Errorf("manifest: escaped name %q: byte 0x%02x must be escaped", comp, c)
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(comp) {
			return "", fmt.Errorf("manifest: escaped name %q: truncated escape", comp)
		}
		hi, lo := strings.IndexByte(upperHex, comp[i+1]), strings.IndexByte(upperHex, comp[i+2])
		v := byte(hi<<4 | lo)
		if hi < 0 || lo < 0 || passes(v, b.Len() == 0) {
			return "", fmt.Errorf("manifest: escaped name %q: bad escape %q", comp, comp[i:i+3])
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}

// FileExt is the extension of manifest files.
const FileExt = ".jsonl"

// FilePath is the manifest file of (broadcast, track) under dir:
// dir/EscapeName(broadcast)/EscapeName(track).jsonl.
func FilePath(dir, broadcast, track string) (string, error) {
	b, err := EscapeName(broadcast)
	if err != nil {
		return "", fmt.Errorf("broadcast: %w", err)
	}
	t, err := EscapeName(track)
	if err != nil {
		return "", fmt.Errorf("track: %w", err)
	}
	return filepath.Join(dir, b, t+FileExt), nil
}
