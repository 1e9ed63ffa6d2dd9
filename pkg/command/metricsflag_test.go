package command

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// TestMetricsListenInUse: an address that cannot be bound is a configuration
// error (78) reported at start, by both commands that serve metrics.
func TestMetricsListenInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	tests := []struct {
		name string
		app  func() []string
	}{
		{"wt-archive", func() []string {
			return []string{"--name", "b", "--output-dir", t.TempDir(), "--manifest-dir", t.TempDir(), "--metrics-listen", addr}
		}},
		{"archive-auto", func() []string {
			return []string{"--mode", "inprocess", "--directory", "", "--broadcast", "b", "--status-dir", t.TempDir(),
				"--output-dir", t.TempDir(), "--manifest-dir", t.TempDir(), "--metrics-listen", addr}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			app := NewApp("ec-node", "", WTArchive(), ArchiveAuto())
			app.Writer, app.ErrWriter = &out, &errOut
			err := app.RunContext(context.Background(), append([]string{"ec-node", tt.name}, tt.app()...))
			if code := ExitCode(err); code != ExitConfig || !strings.Contains(err.Error(), "--metrics-listen") {
				t.Errorf("exit %d, %v; want %d naming --metrics-listen", code, err, ExitConfig)
			}
		})
	}
}
