package manifest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestEscapeName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"live/alice", "live%2Falice"},
		{"video0", "video0"},
		{"a.b-c_D9", "a.b-c_D9"},
		{".", "%2E"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"a\x00b", "a%00b"},
		{"100%", "100%25"},
		{"x~1", "x%7E1"},
		{"\xff\xfe", "%FF%FE"},
		{"é", "%C3%A9"},
		{"a b\n", "a%20b%0A"},
	}
	for _, tt := range tests {
		got, err := EscapeName(tt.name)
		if err != nil || got != tt.want {
			t.Errorf("EscapeName(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
			continue
		}
		back, err := UnescapeName(got)
		if err != nil || back != tt.name {
			t.Errorf("UnescapeName(%q) = %q, %v; want %q", got, back, err, tt.name)
		}
	}
	if _, err := EscapeName(""); err == nil {
		t.Error("EscapeName accepted an empty name")
	}
}

func TestEscapeLongName(t *testing.T) {
	long := strings.Repeat("/", 10<<10) // 10 KiB, escapes to 30 KiB
	got, err := EscapeName(long)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > MaxEscapedName || !strings.Contains(got, "~") || !strings.HasPrefix(got, "%2F%2F") {
		t.Fatalf("EscapeName(10 KiB) = %q", got)
	}
	if prefix := got[:strings.IndexByte(got, '~')]; prefix != strings.Repeat("%2F", len(prefix)/3) {
		t.Fatalf("prefix %q splits an escape", prefix)
	}
	other, _ := EscapeName(long + "x")
	if other == got {
		t.Fatal("two long names share a component")
	}
	if _, err := UnescapeName(got); !errors.Is(err, ErrHashedName) {
		t.Fatalf("UnescapeName(long form) = %v, want ErrHashedName", err)
	}
	// Exactly at the limit stays short.
	edge := strings.Repeat("a", MaxEscapedName)
	if got, _ := EscapeName(edge); got != edge {
		t.Fatalf("a %d-byte name was hashed", MaxEscapedName)
	}
}

func TestUnescapeRejectsNonCanonical(t *testing.T) {
	for _, comp := range []string{"", "%2f", "%41", "a/b", "..", ".x", "%", "%2", "%GG", "a b", "%2E%2E/x"} {
		if got, err := UnescapeName(comp); err == nil {
			t.Errorf("UnescapeName(%q) = %q, want an error", comp, got)
		}
	}
}

func TestFilePathStaysInside(t *testing.T) {
	dir := t.TempDir()
	hostile := []string{"..", "../..", "/etc/passwd", "a/../../b", "\x00", ".", "~", strings.Repeat("../", 4000), "\xc0\xaf", "CON", "a\\b"}
	for _, b := range hostile {
		for _, tr := range hostile {
			p, err := FilePath(dir, b, tr)
			if err != nil {
				t.Fatalf("FilePath(%q, %q): %v", b, tr, err)
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil || strings.Count(rel, string(filepath.Separator)) != 1 || strings.HasPrefix(rel, "..") {
				t.Fatalf("FilePath(%q, %q) = %q escapes %q", b, tr, p, dir)
			}
		}
	}
}

func checkComponent(t *testing.T, name, comp string) {
	t.Helper()
	if comp == "" || comp == "." || comp == ".." || strings.ContainsAny(comp, "/\x00") || len(comp)+len(FileExt) > 255 {
		t.Fatalf("EscapeName(%q) = %q is not a safe component", name, comp)
	}
}

func FuzzEscapeName(f *testing.F) {
	f.Add("live/alice", "live%2Falice")
	f.Add("..", ".")
	f.Add(strings.Repeat("\xff", 300), strings.Repeat("\xff", 301))
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == "" || b == "" {
			return
		}
		ea, err := EscapeName(a)
		if err != nil {
			t.Fatal(err)
		}
		eb, _ := EscapeName(b)
		checkComponent(t, a, ea)
		if back, err := UnescapeName(ea); err == nil && back != a || err != nil && !errors.Is(err, ErrHashedName) {
			t.Fatalf("UnescapeName(EscapeName(%q)) = %q, %v", a, back, err)
		}
		if (a == b) != (ea == eb) {
			t.Fatalf("names %q and %q map to %q and %q", a, b, ea, eb)
		}
	})
}
