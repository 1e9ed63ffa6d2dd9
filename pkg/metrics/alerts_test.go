package metrics

import (
	"os"
	"os/exec"
	"testing"
)

// TestAlertRules checks alerts.yml with Prometheus's own tool, and runs its
// unit tests (testdata/alerts_test.yml): each alert fires on the series it is
// about and not on the others. promtool comes with Debian's prometheus package.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		// CI installs it (.ci/run), so there a missing promtool is a failure.
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed (Debian package prometheus)")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "testdata/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
