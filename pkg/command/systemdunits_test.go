package command

import (
	"strings"
	"testing"
)

func TestSystemdUnitsPassesFlagsOn(t *testing.T) {
	stdout, stderr, code := runStage(t, SystemdUnits(), nil,
		"--ec-node", "/opt/ec-node", "--output-dir", "/tank/archive", "--manifest-dir", "/var/lib/m",
		"--track", "video0.m4s", "--track", "audio0.m4s", "--tls-disable-verify",
		"--relay-url-override", "https://10.0.0.1:443/anon", "--include", "us/*", "--poll-interval", "45s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"### ec-archive@.service", "### ec-archive-auto.service", "### ec-archive.target", "### 50-ec-archive.rules",
		"ExecStart=/opt/ec-node archive-auto worker --env-file /run/ec-archive/env/%i.env -- --output-dir /tank/archive --manifest-dir /var/lib/m --track video0.m4s --track audio0.m4s --tls-disable-verify=true\n",
		"--relay-url-override https://10.0.0.1:443/anon --include \"us/*\" --poll-interval 45s",
		"WatchdogSec=120s",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(stdout, "--poll-interval 30s") || strings.Contains(stdout, "--grace") {
		t.Error("flags left at their defaults were passed on")
	}
	if _, _, code := runStage(t, SystemdUnits(), nil, "--output-dir", "relative", "--manifest-dir", "/m"); code != ExitConfig {
		t.Errorf("relative --output-dir: exit %d, want %d", code, ExitConfig)
	}
}
