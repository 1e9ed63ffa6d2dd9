package command

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
)

func runExportCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := NewApp("export", "", Export())
	setStreams(app, Streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	code = run(context.Background(), app, append([]string{"export"}, args...))
	return out.String(), errOut.String(), code
}

// TestExportFlags: bad ranges are usage errors, found before any file is read;
// a directory that is no store is a configuration error.
func TestExportFlags(t *testing.T) {
	root := t.TempDir()
	if _, err := cas.OpenLocal(root); err != nil {
		t.Fatal(err)
	}
	base := []string{"--root", root, "--manifest-dir", t.TempDir(), "--broadcast", "b", "-o", "-"}
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"bad time", []string{"--from", "yesterday"}, ExitUsage, "RFC 3339"},
		{"to before from", []string{"--from", "2000", "--to", "1000"}, ExitUsage, "before --from"},
		{"bad group range", []string{"--groups", "9-3"}, ExitUsage, "A <= B"},
		{"groups and times", []string{"--groups", "3", "--from", "1000"}, ExitUsage, "one kind of range"},
		{"media and groups", []string{"--groups", "3", "--media-to", "10s"}, ExitUsage, "one kind of range"},
		{"bad media time", []string{"--media-from", "soon"}, ExitUsage, "duration"},
		{"media to before from", []string{"--media-from", "20", "--media-to", "10s"}, ExitUsage, "before --media-from"},
		{"session without groups", []string{"--session", "2"}, ExitUsage, "needs --groups"},
		{"per track to stdout", []string{"--per-track"}, ExitUsage, "--per-track"},
		{"argument", []string{"extra"}, ExitUsage, "no arguments"},
		{"no catalog", nil, ExitFailure, "no archived catalog.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runExportCmd(t, append(append([]string(nil), base...), tt.args...)...)
			if code != tt.code || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
	if _, stderr, code := runExportCmd(t, "--root", t.TempDir(), "--manifest-dir", ".", "--broadcast", "b", "-o", "-"); code != ExitConfig {
		t.Errorf("a root that is no store: exit %d (%s), want %d", code, stderr, ExitConfig)
	}
}

// TestExportOutputNames: later files and tracks are named predictably.
func TestExportOutputNames(t *testing.T) {
	o := &outputFiles{base: "dir/out.mp4"}
	for _, tt := range []struct {
		n     int
		track string
		want  string
	}{
		{0, "", "dir/out.mp4"},
		{1, "", "dir/out-2.mp4"},
		{0, "0.m4s", "dir/out.0.m4s.mp4"},
		{2, "audio/data", "dir/out-3.audio%2Fdata.mp4"},
	} {
		if got := o.name(tt.n, tt.track); got != tt.want {
			t.Errorf("name(%d, %q) = %q, want %q", tt.n, tt.track, got, tt.want)
		}
	}
}
