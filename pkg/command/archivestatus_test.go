package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/archive"
)

func TestArchiveStatus(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	write := func(inst string, st archive.Status) {
		data, _ := json.Marshal(st)
		os.WriteFile(filepath.Join(dir, inst+".json"), data, 0o644)
	}
	write("a", archive.Status{Broadcast: "la-nbc", State: "archiving", Groups: 12, Bytes: 3456,
		LastGroupUnixMs: now.Add(-2 * time.Second).UnixMilli(), UpdatedUnixMs: now.UnixMilli()})
	stdout, stderr, code := runStage(t, ArchiveStatus(), nil, "--status-dir", dir)
	if code != 0 || !strings.Contains(stdout, "la-nbc") || !strings.Contains(stdout, "3456") || !strings.Contains(stdout, " ok") {
		t.Errorf("healthy: code %d\n%s%s", code, stdout, stderr)
	}
	if _, _, code := runStage(t, ArchiveStatus(), nil, "--status-dir", dir, "--min-workers", "2"); code != ExitFailure {
		t.Errorf("--min-workers 2 with one worker: exit %d, want %d", code, ExitFailure)
	}
	write("b", archive.Status{Broadcast: "ny-abc", State: "waiting",
		StartedUnixMs: now.Add(-time.Hour).UnixMilli(), UpdatedUnixMs: now.UnixMilli()})
	stdout, _, code = runStage(t, ArchiveStatus(), nil, "--status-dir", dir, "--json")
	if code != ExitFailure || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"stale":true`) {
		t.Errorf("stale: code %d\n%s", code, stdout)
	}
	if _, _, code := runStage(t, ArchiveStatus(), nil, "--status-dir", filepath.Join(dir, "missing")); code != ExitIOErr {
		t.Errorf("missing dir: exit %d, want %d", code, ExitIOErr)
	}
}
