package systemd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func testUnits(t *testing.T, mode string) Units {
	exe, err := os.Executable() // any existing binary satisfies systemd-analyze verify
	if err != nil {
		t.Fatal(err)
	}
	return Units{
		ECNode: exe, User: "ec-archive", Group: "ec-archive",
		OutputDir: "/tank/every channel/archive", ManifestDir: "/var/lib/every-channel/manifests",
		Mode:        mode,
		WorkerArgs:  []string{"--track", "catalog.json", "--track", "100%$x"},
		AutoArgs:    []string{"--directory", "https://every.channel/api/public-streams"},
		WatchdogSec: 120,
	}
}

func renderedFile(t *testing.T, files []File, name string) string {
	t.Helper()
	for _, f := range files {
		if f.Name == name {
			return f.Text
		}
	}
	t.Fatalf("no %s among the rendered files", name)
	return ""
}

func TestRenderContent(t *testing.T) {
	files, err := Render(testUnits(t, ModeSystemd))
	if err != nil {
		t.Fatal(err)
	}
	worker := renderedFile(t, files, "ec-archive@.service")
	for _, want := range []string{
		`RequiresMountsFor="/tank/every channel/archive" /var/lib/every-channel/manifests`,
		`ReadWritePaths="/tank/every channel/archive" /var/lib/every-channel/manifests -/run/ec-archive/status`,
		" archive-auto worker --env-file /run/ec-archive/env/%i.env -- --output-dir",
		"--track 100%%$$x\n",
		"RestartPreventExitStatus=78", "StartLimitIntervalSec=0", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
		"PartOf=ec-archive.target", "User=ec-archive",
	} {
		if !strings.Contains(worker, want) {
			t.Errorf("ec-archive@.service lacks %q:\n%s", want, worker)
		}
	}
	auto := renderedFile(t, files, AutoUnit)
	for _, want := range []string{"Type=notify", "WatchdogSec=120s", "--mode systemd", "--env-dir /run/ec-archive/env",
		"RuntimeDirectoryPreserve=yes", "--directory https://every.channel/api/public-streams"} {
		if !strings.Contains(auto, want) {
			t.Errorf("%s lacks %q:\n%s", AutoUnit, want, auto)
		}
	}
	if strings.Contains(auto, "ReadWritePaths=") {
		t.Errorf("in systemd mode the supervisor must not write the archive:\n%s", auto)
	}
	if rules := renderedFile(t, files, PolkitRules); !strings.Contains(rules, `subject.user !== "ec-archive"`) {
		t.Errorf("polkit rule does not name the user:\n%s", rules)
	}
}

// TestRenderS3Store: with an s3:// store the units pass the URL through
// (escaped for ExecStart=), neither mount nor write it, and read the
// credentials from the environment file.
func TestRenderS3Store(t *testing.T) {
	u := testUnits(t, ModeInProcess)
	u.OutputDir = "s3://archive/site-a?endpoint=http://10.0.0.9:8333&region=eu-1"
	u.EnvironmentFile = "/run/secrets/ec-archive-s3.env"
	files, err := Render(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ec-archive@.service", AutoUnit} {
		text := renderedFile(t, files, name)
		for _, want := range []string{
			`--output-dir "s3://archive/site-a?endpoint=http://10.0.0.9:8333&region=eu-1"`,
			"EnvironmentFile=/run/secrets/ec-archive-s3.env\n",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, text)
			}
		}
		for _, line := range strings.Split(text, "\n") {
			if (strings.HasPrefix(line, "ReadWritePaths=") || strings.HasPrefix(line, "RequiresMountsFor=")) && strings.Contains(line, "s3:") {
				t.Errorf("%s treats the store URL as a path: %s", name, line)
			}
		}
	}
	u.OutputDir = "s3://archive?nonsense=1"
	if _, err := Render(u); err == nil {
		t.Error("Render accepted a bad store URL")
	}
}

func TestRenderRejectsBadSettings(t *testing.T) {
	for name, mutate := range map[string]func(*Units){
		"relative dir":  func(u *Units) { u.OutputDir = "archive" },
		"newline dir":   func(u *Units) { u.ManifestDir = "/x\n[Service]" },
		"bad user":      func(u *Units) { u.User = "a b" },
		"unknown mode":  func(u *Units) { u.Mode = "cron" },
		"negative wdog": func(u *Units) { u.WatchdogSec = -1 },
	} {
		u := testUnits(t, ModeSystemd)
		mutate(&u)
		if _, err := Render(u); err == nil {
			t.Errorf("%s: Render accepted %+v", name, u)
		}
	}
}

// TestRenderedUnitsVerify runs `systemd-analyze verify` on the rendered units of
// both modes; scripts/check-nix.sh does the same with the real ec-node binary.
func TestRenderedUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	for _, mode := range []string{ModeSystemd, ModeInProcess} {
		u := testUnits(t, mode)
		dir := t.TempDir()
		u.OutputDir, u.ManifestDir = filepath.Join(dir, "cas"), filepath.Join(dir, "manifests")
		files, err := Render(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFiles(dir, files); err != nil {
			t.Fatal(err)
		}
		// A template is verified through one of its instances.
		instance := filepath.Join(dir, UnitName(Instance("cdn.moq.dev/anon|la-nbc")))
		if err := os.Symlink(filepath.Join(dir, "ec-archive@.service"), instance); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(context.Background(), analyze, "verify",
			instance, filepath.Join(dir, AutoUnit), filepath.Join(dir, TargetUnit)).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("mode %s: systemd-analyze verify: %v\n%s", mode, err, out)
		}
	}
}

func TestExecQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/ec-node": "/usr/bin/ec-node",
		"a b":              `"a b"`,
		`q"\`:              `"q\"\\"`,
		"50%":              "50%%",
		"$HOME":            "$$HOME",
		"":                 `""`,
		";":                `";"`,
		"tab\there":        `"tab\there"`,
	} {
		if got := execQuote(in); got != want {
			t.Errorf("execQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestPolkitRuleAllowsEveryInstance checks the rule's unit pattern (a
// JavaScript regular expression that RE2 reads the same way) against the unit
// names Instance produces, escaped and hashed, and against names it must refuse.
func TestPolkitRuleAllowsEveryInstance(t *testing.T) {
	files, err := Render(testUnits(t, ModeSystemd))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`/(\^ec-archive@.*\$)/\.test\(unit\)`).FindStringSubmatch(renderedFile(t, files, PolkitRules))
	if m == nil {
		t.Fatal("no unit pattern in the polkit rule")
	}
	pattern := regexp.MustCompile(m[1])
	relays := []string{"https://cdn.moq.dev/anon", "https://127.0.0.1:4443", "https://[::1]:4443/a_b"}
	for _, name := range append(slices.Clone(escapeSamples), strings.Repeat("ü", 200)) {
		for _, relay := range relays {
			key, err := Key(relay, name)
			if err != nil {
				continue // the empty name
			}
			if unit := UnitName(Instance(key)); !pattern.MatchString(unit) {
				t.Errorf("polkit pattern %s refuses %q", m[1], unit)
			}
		}
	}
	for _, unit := range []string{"ec-archive-auto.service", "ec-archive@.service", "ec-archive@a/b.service", "ec-archive@a b.service", "sshd.service"} {
		if pattern.MatchString(unit) {
			t.Errorf("polkit pattern %s allows %q", m[1], unit)
		}
	}
}
