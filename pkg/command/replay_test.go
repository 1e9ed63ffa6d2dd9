package command

import (
	"testing"
	"time"
)

func TestParseSpeed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true}, {"8", 8, true}, {"0.5", 0.5, true}, {"max", 0, true},
		{"0", 0, false}, {"-2", 0, false}, {"fast", 0, false}, {"", 0, false}, {"1e9", 0, false},
	} {
		got, err := parseSpeed(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseSpeed(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC)
	for _, in := range []string{"1767225600123", "2026-01-01T00:00:00.123Z", "2026-01-01T01:00:00.123+01:00"} {
		got, err := parseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseTime("yesterday"); err == nil {
		t.Error("parseTime(yesterday) succeeded")
	}
}
