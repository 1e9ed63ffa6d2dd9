//go:build e2e

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/moq/moqtest"
)

// TestReliabilityTLSRefused: against the real moq-relay's self-signed
// certificate, wt-archive without --tls-fingerprint (system roots, verification
// on by default) and with a wrong fingerprint must refuse the connection, give
// up with exit status 75 after --max-attempts, say why in its log, and archive
// nothing.
func TestReliabilityTLSRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	relay, _ := startLive(t, ctx, dir, "tls.hang")
	wrong := []byte(relay.Fingerprint())
	if wrong[0] == '0' { // any other first digit
		wrong[0] = '1'
	} else {
		wrong[0] = '0'
	}
	cases := []struct {
		name, why string
		flags     []string
	}{
		{"no fingerprint (system roots)", "certificate signed by unknown authority", nil},
		{"wrong fingerprint", "does not match the pinned one", []string{"--tls-fingerprint", string(wrong)}},
	}
	for i, c := range cases {
		root := filepath.Join(dir, strconv.Itoa(i))
		arch := newArchiver(t, dir, "wt-archive-"+strconv.Itoa(i), relay.URL("anon"), "tls.hang", root+"/cas", root+"/manifests",
			append([]string{"--max-attempts", "2", "--max-backoff", "200ms"}, c.flags...)...)
		arch.start()
		exited, err := arch.wait(30 * time.Second)
		var ee *exec.ExitError
		if !exited || !errors.As(err, &ee) || ee.ExitCode() != 75 {
			t.Fatalf("%s: exited %v with %v, want exit status 75\n%s", c.name, exited, err, lastLines(arch.logText(), 10))
		}
		if !strings.Contains(arch.logText(), c.why) {
			t.Errorf("%s: the log does not say %q:\n%s", c.name, c.why, lastLines(arch.logText(), 10))
		}
		if n := len(readManifests(t, root+"/manifests")); n != 0 {
			t.Errorf("%s: %d tracks archived through a refused connection", c.name, n)
		}
		figure(t, "security", "%s: refused, exit 75 after 2 attempts, log: %s", c.name, c.why)
	}
}

// TestReliabilityTokenNotLeaked passes ?jwt=SECRET in --url, with debug
// logging and a status file, and requires the secret to appear in no log,
// status file or manifest. The archive is made from the Go stand-in relay
// (pkg/moq/moqtest), which accepts any token and shows that the token did
// reach the relay; the real moq-relay, which has no key configured here,
// refuses the token, which exercises the error paths (wt-archive and moq-sub
// give up after --max-attempts).
func TestReliabilityTokenNotLeaked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const secret = "eyJSECRET.tok3n-must-not-leak"
	dir := t.TempDir()

	paths := make(chan string, 16)
	pub := moqtest.Publisher{Broadcast: "jwt.hang", Tracks: map[string]moqtest.Track{
		videoTrack: {Groups: [][][]byte{{[]byte("g0")}, {[]byte("g1")}, {[]byte("g2")}}},
	}}
	standIn, err := moqtest.Start([]string{"moq-lite-05"}, func(p *moqtest.Peer) {
		select {
		case paths <- p.Path:
		default:
		}
		pub.Serve(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standIn.Close() })
	root := filepath.Join(dir, "archive")
	status := filepath.Join(root, "status", "jwt.json")
	arch := newArchiver(t, dir, "wt-archive", standIn.URL+"anon?jwt="+secret, "jwt.hang", root+"/cas", root+"/manifests",
		"--tls-fingerprint", standIn.Fingerprint, "--track", videoTrack, "--log-level", "debug", "--status-file", status)
	arch.start()
	waitFor(t, "3 groups archived", 30*time.Second, func() (bool, string) {
		return groupCount(readManifests(t, root+"/manifests")[trackKey{"jwt.hang", videoTrack}]) >= 3, ""
	})
	waitFor(t, "the status file", 10*time.Second, func() (bool, string) { _, err := os.Stat(status); return err == nil, "" })
	if err := arch.stop(); err != nil {
		t.Fatalf("wt-archive: %v\n%s", err, lastLines(arch.logText(), 10))
	}
	if p := <-paths; !strings.Contains(p, "jwt="+secret) {
		t.Fatalf("the stand-in relay saw the path %q, without the token", p)
	}
	// The session log names the relay, so the search below covers it.
	checkSessionLog(t, root+"/manifests", sessionWant{broadcast: "jwt.hang", tool: "wt-archive", protocol: "moq-lite", version: "moq-lite-05"})

	relay, _ := startLive(t, ctx, dir, "jwt.hang")
	url := relay.URL("anon") + "?jwt=" + secret
	refused := newArchiver(t, dir, "wt-archive-refused", url, "jwt.hang", root+"/cas", root+"/manifests",
		"--tls-fingerprint", relay.Fingerprint(), "--log-level", "debug", "--max-attempts", "2", "--max-backoff", "200ms")
	refused.start()
	if exited, err := refused.wait(30 * time.Second); !exited || err == nil {
		t.Fatalf("wt-archive with a token the relay refuses: exited %v, %v", exited, err)
	}
	sub := exec.Command(buildBinary(t, "moq-sub"), "--log-level", "debug", "--url", url, "--name", "jwt.hang",
		"--tls-fingerprint", relay.Fingerprint(), "--max-attempts", "2", "--max-backoff", "200ms")
	sub.Stderr = logFile(t, dir, "moq-sub.log")
	if err := sub.Run(); err == nil {
		t.Fatal("moq-sub with a token the relay refuses exited 0")
	}

	files := 0
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, "/cas/") || !regexp.MustCompile(`\.(log|json|jsonl)$`).MatchString(path) {
			return err
		}
		switch filepath.Base(path) {
		case "publisher.log", "relay.log", "ffmpeg.log":
			return nil // the peers' logs, not ours
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if strings.Contains(string(data), "SECRET") {
			t.Errorf("%s contains the token", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d files searched; expected 3 logs, the status file, the manifest and the session log", files)
	}
	for _, log := range []string{arch.logText(), refused.logText(), readFile(dir, "moq-sub.log")} {
		if !strings.Contains(log, "jwt=REDACTED") {
			t.Errorf("a log does not name the relay with its token redacted, so the check proves nothing:\n%s", lastLines(log, 5))
		}
	}
	figure(t, "security", "?jwt= token absent from %d files (debug logs of an archiving wt-archive, of a refused wt-archive and a refused moq-sub, the status file, the manifest, the session log)", files)
}

// TestReliabilitySystemdExposure renders the systemd units and records
// `systemd-analyze security --offline=true` exposure of the worker and the
// supervisor; both must stay at or below 2.0 ("OK").
func TestReliabilitySystemdExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	ecNode := buildBinary(t, "ec-node")
	out, err := exec.Command(ecNode, "systemd-units", "--write", dir, "--output-dir", "/var/lib/ec-archive/cas",
		"--manifest-dir", "/var/lib/ec-archive/manifests", "--ec-node", ecNode, "--systemctl", "/usr/bin/systemctl").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-units: %v\n%s", err, out)
	}
	// A template is analysed through an instance; this one has a dash and a "|".
	instance := `ec-archive@cdn.moq.dev-anon\x7cla\x2dnbc.service`
	if err := os.Symlink("ec-archive@.service", filepath.Join(dir, instance)); err != nil {
		t.Fatal(err)
	}
	level := regexp.MustCompile(`Overall exposure level for .*: ([0-9.]+) (\S+)`)
	for _, unit := range []string{instance, "ec-archive-auto.service"} {
		cmd := exec.Command("systemd-analyze", "security", "--offline=true", "./"+unit)
		cmd.Dir = dir
		out, _ := cmd.CombinedOutput()
		m := level.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("systemd-analyze security %s: no exposure level in:\n%s", unit, out)
		}
		score, _ := strconv.ParseFloat(m[1], 64)
		figure(t, "security", "systemd-analyze security exposure of %s: %s %s", unit, m[1], m[2])
		if score > 2.0 {
			t.Errorf("%s: exposure %s, want at most 2.0", unit, m[1])
		}
	}
}
