//go:build e2e

package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/supervise"
)

// TestArchiveAutoIETF: archive-auto --protocol ietf finds broadcasts through
// the relay's draft-14 announcements (SUBSCRIBE_NAMESPACE), archives each over
// draft-14 (the status says so), and stops the worker of one that leaves.
func TestArchiveAutoIETF(t *testing.T) {
	f := newArchiveFixture(t)
	f.publish("e2e-a")
	f.publish("e2e-b")
	auto := startArchiveAuto(t, "--directory", "", "--relay-announce", f.relay.URL("anon"), "--protocol", "ietf")
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": 2, "e2e-b": 2})

	out, _ := exec.Command(buildBinary(t, "ec-node"), "archive-status", "--status-dir", auto.statusDir, "--json", "--stale", "1h").Output()
	workers := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r supervise.Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("archive-status line %q: %v", line, err)
		}
		if r.State == "stopped" {
			continue
		}
		workers++
		if r.Version != "moq-transport-14" {
			t.Errorf("worker %s negotiated %q, want moq-transport-14", r.Broadcast, r.Version)
		}
	}
	if workers != 2 {
		t.Fatalf("%d workers in archive-status:\n%s", workers, out)
	}
	seen := map[string]bool{}
	for _, s := range checkSessionLog(t, filepath.Join(filepath.Dir(auto.statusDir), "manifests"),
		sessionWant{tool: "archive-auto", protocol: "ietf", version: "moq-transport-14"}) {
		seen[s.Broadcast] = true
	}
	if !seen["e2e-a"] || !seen["e2e-b"] {
		t.Errorf("session log names %v, want e2e-a and e2e-b", seen)
	}

	f.unpublish("e2e-b")
	archiving(t, statusView{dir: auto.statusDir}, map[string]int64{"e2e-a": 2})
}
