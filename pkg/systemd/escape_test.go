package systemd

import (
	"errors"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// escapeSamples are names whose escaping has pitfalls: dashes, leading dots,
// slashes (also doubled), non-ASCII, backslashes, the key separator.
var escapeSamples = []string{
	"la-nbc", "live/alice", "live/alice-cam", ".hidden", "a.b", "ünï", "/a//b/",
	`a b\c`, "x|y", "cdn.moq.dev/anon|la-nbc", "../../etc/passwd", "日本語/チャンネル",
	"%i$FOO`x`\"q\"", "\\x2d", strings.Repeat("-", 70), "127.0.0.1:4443/live", ".:a", "", "a:b:",
}

// TestEscapeMatchesSystemdEscape compares Escape with the real systemd-escape
// on the samples and on random strings, and feeds every escaped form back
// through `systemd-escape -u`.
func TestEscapeMatchesSystemdEscape(t *testing.T) {
	bin, err := exec.LookPath("systemd-escape")
	if err != nil {
		t.Skip("systemd-escape not installed; the round-trip tests still run")
	}
	inputs := append(slices.Clone(escapeSamples), randomNames(rand.New(rand.NewPCG(1, 2)), 2000)...)
	// One call escapes many arguments and prints them space-separated; an
	// escaped name never holds a space, so the output splits back exactly.
	const batch = 250
	for lo := 0; lo < len(inputs); lo += batch {
		in := inputs[lo:min(lo+batch, len(inputs))]
		out, err := exec.Command(bin, append([]string{"--"}, in...)...).Output()
		if err != nil {
			t.Fatalf("systemd-escape: %v", err)
		}
		want := strings.Split(strings.TrimSuffix(string(out), "\n"), " ")
		if len(want) != len(in) {
			t.Fatalf("systemd-escape printed %d names for %d inputs", len(want), len(in))
		}
		for i, s := range in {
			if got := Escape(s); got != want[i] {
				t.Errorf("Escape(%q) = %q, systemd-escape says %q", s, got, want[i])
			}
		}
	}
	// Unescaping prints one name per call: an unescaped name may hold spaces.
	for _, s := range inputs[:len(escapeSamples)+300] {
		out, err := exec.Command(bin, "-u", "--", Escape(s)).Output()
		if err != nil {
			t.Fatalf("systemd-escape -u %q: %v", Escape(s), err)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != s {
			t.Errorf("systemd-escape -u %q = %q, want %q", Escape(s), got, s)
		}
	}
}

// randomNames returns n strings built from the pieces escaping treats
// specially: separators, dots (leading ones too), empty path components,
// control characters, multi-byte UTF-8, stray continuation bytes and the
// escape character itself. None holds a NUL, which no argv can carry.
func randomNames(r *rand.Rand, n int) []string {
	pieces := []string{
		"a", "Z", "09", "_", ".", "..", "/", "//", "-", ":", "\\", "\\x2d", "|", " ", "%", "$",
		"\t", "\n", "\x01", "\x1f", "\x7f", "é", "日本", "😀", "\u200b", "\xff", "\x80", "\xc3",
	}
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for k := r.IntN(12); k > 0; k-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		out[i] = b.String()
	}
	return out
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range append(slices.Clone(escapeSamples), randomNames(rand.New(rand.NewPCG(3, 4)), 2000)...) {
		got, err := Unescape(Escape(s))
		if err != nil || got != s {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", s, got, err)
		}
	}
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range escapeSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		for i := 0; i < len(e); i++ {
			if c := e[i]; !(isUnitNameByte(c) || c == '-' || c == '\\') {
				t.Fatalf("Escape(%q) = %q holds byte %q", s, e, c)
			}
		}
		if strings.ContainsRune(s, 0) {
			if _, err := Unescape(e); err == nil {
				t.Fatalf("Unescape accepted an escaped NUL in %q", e)
			}
			return
		}
		got, err := Unescape(e)
		if err != nil || got != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, got, err)
		}
	})
}

func TestUnescapeRejectsNonCanonical(t *testing.T) {
	for _, s := range []string{`\x2D`, `\X2d`, `\x61`, `\x2`, `\x`, `a\`, `\x00`, "a b", "a/b", ".x"} {
		if got, err := Unescape(s); !errors.Is(err, ErrBadEscape) {
			t.Errorf("Unescape(%q) = %q, %v; want ErrBadEscape", s, got, err)
		}
	}
}

func TestInstanceNames(t *testing.T) {
	long := strings.Repeat("ü", 200) // 400 bytes, 1600 escaped characters
	tests := []struct {
		relay, broadcast string
		wantInstance     string // "" = hashed
	}{
		{"https://cdn.moq.dev/anon", "la-nbc", `cdn.moq.dev-anon\x7cla\x2dnbc`},
		{"https://cdn.moq.dev/anon/?jwt=secret", "la-nbc", `cdn.moq.dev-anon\x7cla\x2dnbc`},
		{"https://127.0.0.1:4443", "live/alice", `127.0.0.1:4443\x7clive-alice`},
		{"https://relay.example/a|b", "x", `relay.example-a\x257Cb\x7cx`},
		{"https://cdn.moq.dev/anon", long, ""},
		{"https://cdn.moq.dev/anon", strings.Repeat("a", 255), ""},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		key, err := Key(tt.relay, tt.broadcast)
		if err != nil {
			t.Fatalf("Key(%q, %q): %v", tt.relay, tt.broadcast, err)
		}
		inst := Instance(key)
		if n := len(UnitName(inst)); n > MaxUnitNameLen {
			t.Errorf("unit name for %q is %d characters", key, n)
		}
		if strings.ContainsAny(inst, "/\x00") || strings.HasPrefix(inst, ".") {
			t.Errorf("instance %q is not a safe file name", inst)
		}
		if prev, dup := seen[inst]; dup && prev != key {
			t.Errorf("instance %q shared by keys %q and %q", inst, prev, key)
		}
		seen[inst] = key
		back, hashed, err := ParseInstance(inst)
		if err != nil {
			t.Fatalf("ParseInstance(%q): %v", inst, err)
		}
		if tt.wantInstance == "" {
			if !hashed || !strings.HasPrefix(inst, hashedPrefix) {
				t.Errorf("key %q: instance %q, want a hashed one", key, inst)
			}
			continue
		}
		if inst != tt.wantInstance {
			t.Errorf("Instance(%q) = %q, want %q", key, inst, tt.wantInstance)
		}
		if hashed || back != key {
			t.Errorf("ParseInstance(%q) = %q, %v; want %q", inst, back, hashed, key)
		}
		if u, ok := InstanceOfUnit(UnitName(inst)); !ok || u != inst {
			t.Errorf("InstanceOfUnit(UnitName(%q)) = %q, %v", inst, u, ok)
		}
	}
}

// TestInstanceLimitBoundary walks broadcast lengths across the point where the
// escaped name stops fitting.
func TestInstanceLimitBoundary(t *testing.T) {
	for n := 180; n < 300; n++ {
		key, err := Key("https://r.example", strings.Repeat("-", n%7)+strings.Repeat("b", n))
		if err != nil {
			t.Fatal(err)
		}
		inst := Instance(key)
		if len(UnitName(inst)) > MaxUnitNameLen || !utf8.ValidString(inst) {
			t.Fatalf("n=%d: bad instance %q", n, inst)
		}
		if got, hashed, err := ParseInstance(inst); err != nil || !hashed && got != key {
			t.Fatalf("n=%d: ParseInstance = %q, %v, %v", n, got, hashed, err)
		}
	}
}

func TestParseInstanceRejectsForeignNames(t *testing.T) {
	for _, inst := range []string{"foo", `no\x7c`, `\x7cbroadcast`, "hash-xyz", `a\x2D`} {
		if key, _, err := ParseInstance(inst); err == nil {
			t.Errorf("ParseInstance(%q) = %q, want an error", inst, key)
		}
	}
}

// TestUnitNameMatchesSystemd asks `systemd-escape --template` for the unit of
// each key: where systemd builds one, it must be UnitName(Instance(key));
// where systemd refuses it as too long, Instance must fall back to a hash.
func TestUnitNameMatchesSystemd(t *testing.T) {
	bin, err := exec.LookPath("systemd-escape")
	if err != nil {
		t.Skip("systemd-escape not installed")
	}
	var keys []string
	for n := 225; n < 245; n++ { // across the 255-character limit
		keys = append(keys, "r.example|"+strings.Repeat("b", n), "127.0.0.1:4443|"+strings.Repeat("-", n/4)+strings.Repeat("c", n-n/4*4))
	}
	for _, s := range randomNames(rand.New(rand.NewPCG(5, 6)), 200) {
		if s != "" {
			keys = append(keys, "127.0.0.1:4443/anon|"+s)
		}
	}
	var nHashed int
	for _, key := range keys {
		out, err := exec.Command(bin, "--template="+InstancePrefix+InstanceSuffix, "--", key).Output()
		inst := Instance(key)
		_, hashed, perr := ParseInstance(inst)
		if hashed {
			nHashed++
		}
		switch {
		case perr != nil:
			t.Errorf("ParseInstance(Instance(%q)): %v", key, perr)
		case err != nil && !hashed:
			t.Errorf("systemd refuses a unit for %q (%v), but Instance gave %q", key, err, inst)
		case err == nil && hashed:
			t.Errorf("systemd names %q %s, but Instance hashed it", key, out)
		case err == nil && strings.TrimSuffix(string(out), "\n") != UnitName(inst):
			t.Errorf("systemd names %q %s, UnitName(Instance) gives %q", key, out, UnitName(inst))
		}
	}
	if nHashed == 0 || nHashed == len(keys) {
		t.Errorf("%d of %d keys hashed; the test must cover both sides of the limit", nHashed, len(keys))
	}
}
