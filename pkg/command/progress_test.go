package command

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/every-channel/ec-node/pkg/cas"
)

func TestBarLine(t *testing.T) {
	tests := []struct {
		done    float64
		caption string
		columns int
		want    string
	}{
		{0, "x", 80, "[>                   ]   0%  x"},
		{0.5, "x", 80, "[==========>         ]  50%  x"},
		{1, "x", 80, "[====================] 100%  x"},
		{1.7, "x", 80, "[====================] 100%  x"},
		{-1, "x", 80, "[>                   ]   0%  x"},
		// A narrow terminal cuts the caption, never the bar, and never fills the last column.
		{0.5, "1234 objects  5.0 MiB", 30, "[=====>    ]  50%  1234 objec"},
	}
	for _, tt := range tests {
		got := barLine(tt.done, tt.caption, tt.columns)
		if got != tt.want {
			t.Errorf("barLine(%v, %q, %d) = %q, want %q", tt.done, tt.caption, tt.columns, got, tt.want)
		}
		if n := utf8.RuneCountInString(got); n >= tt.columns {
			t.Errorf("barLine(%v, %q, %d) is %d runes: it would wrap", tt.done, tt.caption, tt.columns, n)
		}
	}
	if got := eta(10*time.Second, 0.25); got != "  ETA 30s" {
		t.Errorf("eta = %q", got)
	}
}

// TestCASVerifyProgressNotTerminal: with stderr a plain file (a log, a pipe),
// --progress auto draws nothing: stderr holds the summary line and nothing
// else, and always draws the bar.
func TestCASVerifyProgressNotTerminal(t *testing.T) {
	root := t.TempDir()
	store, err := cas.OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(context.Background(), strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	run := func(mode string) string {
		stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		defer stderr.Close()
		app := NewApp("ec-node-cas-verify", "", CASVerify())
		app.Writer, app.ErrWriter = new(strings.Builder), stderr
		if err := app.RunContext(context.Background(), []string{"cas-verify", "--root", root, "--progress", mode}); err != nil {
			t.Fatalf("--progress %s: %v", mode, err)
		}
		data, err := os.ReadFile(stderr.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	got := run("auto")
	if strings.ContainsAny(got, "\r\033") || strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "verified 1 objects") {
		t.Errorf("--progress auto, stderr not a terminal: %q, want the summary line only", got)
	}
	if got := run("always"); !strings.Contains(got, "] 100%  1 objects") {
		t.Errorf("--progress always: %q lacks the full bar", got)
	}
}
