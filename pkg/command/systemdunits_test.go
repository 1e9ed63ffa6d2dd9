package command

import (
	"slices"
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

// TestSystemdUnitsChecksLikeArchiveAuto: every setting archive-auto refuses at
// start, systemd-units refuses to render, with the same exit status.
func TestSystemdUnitsChecksLikeArchiveAuto(t *testing.T) {
	unitArgs := []string{"--ec-node", "/opt/ec-node", "--output-dir", "/tank/archive", "--manifest-dir", "/var/lib/m"}
	for _, args := range [][]string{
		{"--broadcast", "../x"},
		{"--broadcast", "live/../x"},
		{"--broadcast", "new\nline"},
		{"--broadcast", "tab\there"},
		{"--broadcast", "/abs"},
		{"--broadcast", "a//b"},
		{"--broadcast", ""},
		{"--broadcast", "bad\xffutf8"},
		{"--broadcast", strings.Repeat("x", 1025)},
		{"--relay-url", "http://r.example/anon", "--broadcast", "a"},
		{"--relay-url", "https://r.example:0/anon"},
		{"--relay-url", "https://r.example/anon?token=x"},
		{"--relay-url-override", "https://r.example:99999"},
		{"--relay-url-override", "https://r.example/a/../b"},
		{"--relay-announce", "https://u:p@r.example/anon"},
		{"--relay-announce", "not a url"},
		{"--directory", "not a url"},
		{"--directory", "", "--broadcast", "ok", "--relay-url", "https://r.example//anon"},
		{"--directory", ""},
		{"--include", "["},
		{"--max-broadcasts", "-1"},
	} {
		_, unitsErr, code := runStage(t, SystemdUnits(), nil, append(slices.Clone(unitArgs), args...)...)
		if code != ExitConfig {
			t.Errorf("systemd-units %q: exit %d, want %d (%s)", args, code, ExitConfig, unitsErr)
		}
		_, autoErr, code := runStage(t, ArchiveAuto(), nil, append([]string{"archive-auto", "--status-dir", t.TempDir()}, args...)...)
		if code != ExitConfig {
			t.Errorf("archive-auto %q: exit %d, want %d (%s)", args, code, ExitConfig, autoErr)
		}
		if unitsErr != autoErr {
			t.Errorf("%q: systemd-units says %q, archive-auto %q; want one check", args, unitsErr, autoErr)
		}
	}
	// The workers' flags are checked as wt-archive checks them.
	for _, args := range [][]string{{"--tls-fingerprint", "xyz"}, {"--tls-fingerprint", strings.Repeat("a", 64), "--tls-disable-verify"}} {
		if _, stderr, code := runStage(t, SystemdUnits(), nil, append(slices.Clone(unitArgs), args...)...); code != ExitConfig {
			t.Errorf("systemd-units %q: exit %d, want %d (%s)", args, code, ExitConfig, stderr)
		}
	}
	stdout, stderr, code := runStage(t, SystemdUnits(), nil, append(unitArgs,
		"--relay-url", "https://127.0.0.1:4443/anon", "--broadcast", "la-nbc", "--broadcast", "live/alice:cam")...)
	if code != 0 || !strings.Contains(stdout, "--broadcast la-nbc --broadcast live/alice:cam") {
		t.Errorf("valid broadcasts: exit %d (%s)\n%s", code, stderr, stdout)
	}
}
