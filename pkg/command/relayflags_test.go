package command

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestRelayURLFlags: a bad --url is a configuration error in every command
// that dials a relay, before anything is opened or dialed.
func TestRelayURLFlags(t *testing.T) {
	dir := t.TempDir()
	bad := []string{
		"not a url", "", "http://r.example/anon", "https://r.example:0/anon", "https://r.example:99999/anon",
		"https://r.example/anon/../x", "https://r.example//anon", "https://u:p@r.example/anon",
		"https://r.example/anon?token=x", "https://r.example/anon#f", "https://r.example/a\nb",
	}
	for _, url := range bad {
		for _, tt := range []struct {
			cmd  *cli.Command
			args []string
		}{
			{MoQSub(), []string{"--url", url, "--name", "b"}},
			{WTArchive(), []string{"--url", url, "--name", "b", "--output-dir", filepath.Join(dir, "cas"), "--manifest-dir", filepath.Join(dir, "m")}},
		} {
			_, stderr, code := runStage(t, tt.cmd, nil, tt.args...)
			if code != ExitConfig || !strings.Contains(stderr, "--url") {
				t.Errorf("%s --url %q: exit %d, want %d naming --url (%s)", tt.cmd.Name, url, code, ExitConfig, stderr)
			}
		}
	}
}
