//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/systemd"
)

// privateSystemd is a real systemd (the host's /usr/lib/systemd/systemd) booted
// as PID 1 of private PID, mount, UTS and IPC namespaces. It must not touch the
// host: /run, /tmp and /var/tmp are private tmpfs mounts, and SYSTEMD_UNIT_PATH
// limits it to the units the test writes (the rendered ones plus empty stand-in
// targets), so none of the host's units (tmpfiles, timesyncd, ...) can start.
// It shares the host's network, so units reach the test's relay.
type privateSystemd struct {
	pid     int // host PID of the namespace's PID 1
	unitDir string
	logPath string // the units' stdout and stderr
	console string // systemd's own log (bound over /dev/console)
	cmd     *exec.Cmd
}

// standInTargets are the well-known units the rendered units depend on
// (DefaultDependencies=, network-online.target), present here only as names.
var standInTargets = []string{"e2e.target", "sysinit.target", "basic.target", "shutdown.target", "network.target",
	"network-online.target", "sockets.target", "paths.target", "timers.target", "local-fs.target", "system.slice"}

func startPrivateSystemd(t *testing.T, root string) *privateSystemd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for private namespaces; pkg/supervise tests the systemd runner against a recording systemctl stand-in")
	}
	for _, tool := range []string{"unshare", "nsenter", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	const systemdBin = "/usr/lib/systemd/systemd"
	if _, err := os.Stat(systemdBin); err != nil {
		t.Skip("systemd not installed")
	}
	s := &privateSystemd{unitDir: filepath.Join(root, "units"), logPath: filepath.Join(root, "units.log"),
		console: filepath.Join(root, "console.log")}
	os.WriteFile(s.console, nil, 0o644)
	os.MkdirAll(s.unitDir, 0o755)
	for _, name := range standInTargets {
		os.WriteFile(filepath.Join(s.unitDir, name), []byte("[Unit]\nDescription=e2e stand-in for "+name+"\n"), 0o644)
	}
	script := "set -e; for d in /run /tmp /var/tmp; do mount -t tmpfs tmpfs $d; done; " +
		"mkdir /run/e2e-units; mount --bind '" + s.unitDir + "' /run/e2e-units; mount --bind '" + s.console + "' /dev/console; " +
		"SYSTEMD_UNIT_PATH=/run/e2e-units exec " + systemdBin + " --system --unit=e2e.target --log-target=console --log-color=no </dev/null"
	s.cmd = exec.Command("unshare", "--pid", "--fork", "--mount", "--mount-proc", "--uts", "--ipc",
		"--propagation", "private", "/bin/sh", "-c", script)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	waitFor(t, "systemd as PID 1 of the namespace", 20*time.Second, func() (bool, string) {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", s.cmd.Process.Pid, s.cmd.Process.Pid))
		pid, err := strconv.Atoi(strings.TrimSpace(string(children)))
		if err != nil {
			return false, "no child yet"
		}
		s.pid = pid
		out, _ := s.systemctl("is-system-running")
		return strings.HasPrefix(out, "running") || strings.HasPrefix(out, "degraded"), out
	})
	return s
}

// dropIn sends a rendered unit's output to the test's log file.
func (s *privateSystemd) dropIn(t *testing.T, unit string) {
	t.Helper()
	dir := filepath.Join(s.unitDir, unit+".d")
	os.MkdirAll(dir, 0o755)
	conf := "[Service]\nStandardOutput=append:" + s.logPath + "\nStandardError=inherit\n"
	if err := os.WriteFile(filepath.Join(dir, "e2e-log.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// systemctl runs systemctl inside the namespace.
func (s *privateSystemd) systemctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(s.pid), "-m", "-p", "systemctl"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (s *privateSystemd) stop() {
	if s.pid > 0 {
		syscallKill(s.pid) // PID 1 of the namespace: everything in it goes too
	}
	s.cmd.Wait()
}

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func (s *privateSystemd) unitProperty(t *testing.T, unit, prop string) string {
	t.Helper()
	out, err := s.systemctl("show", "-p", prop, "--value", "--", unit)
	if err != nil {
		t.Fatalf("systemctl show %s: %v: %s", unit, err, out)
	}
	return out
}

// TestSystemdModeWithRealSystemd runs the rendered units under a real systemd:
// ec-archive.target starts the supervisor (Type=notify, watchdog), which starts
// one ec-archive@ instance per directory entry; the instances archive from a
// real relay; a broadcast that leaves the directory loses its unit; restarting
// the supervisor leaves the workers running; stopping the target stops all and
// leaves the archive in place.
func TestSystemdModeWithRealSystemd(t *testing.T) {
	// Outside /tmp and /root: the units have PrivateTmp= and ProtectHome=.
	root, err := os.MkdirTemp("/var/lib", "ec-e2e-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	// The namespace must leave the host's /tmp alone (a host unit such as
	// systemd-tmpfiles-setup would empty it).
	canary, err := os.CreateTemp("", "ec-e2e-canary-")
	if err != nil {
		t.Fatal(err)
	}
	canary.Close()
	t.Cleanup(func() {
		if _, err := os.Stat(canary.Name()); err != nil {
			t.Errorf("the private systemd touched the host's /tmp: %v", err)
		}
		os.Remove(canary.Name())
	})
	sd := startPrivateSystemd(t, root)

	ecNode := filepath.Join(root, "bin", "ec-node")
	os.MkdirAll(filepath.Dir(ecNode), 0o755)
	data, err := os.ReadFile(buildBinary(t, "ec-node"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ecNode, data, 0o755)
	cas, manifests := filepath.Join(root, "cas"), filepath.Join(root, "manifests")
	os.MkdirAll(cas, 0o750)
	os.MkdirAll(manifests, 0o750)

	f := newArchiveFixture(t)
	dir := newDirectoryServer(t)
	url := f.relay.URL("anon")
	for _, name := range []string{"e2e-a", "e2e-b"} {
		f.publish(name)
		dir.set(name, url)
	}
	metricsAddr := freeTCPAddr(t)
	out, err := exec.Command(ecNode, "systemd-units", "--write", sd.unitDir, "--ec-node", ecNode,
		"--user", "root", "--group", "root", "--output-dir", cas, "--manifest-dir", manifests,
		"--directory", dir.URL, "--poll-interval", "1s", "--grace", "3s", "--watchdog", "30s",
		"--tls-disable-verify", "--announce-wait", "5s", "--max-backoff", "2s", "--metrics-listen", metricsAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-units: %v\n%s", err, out)
	}
	sd.dropIn(t, "ec-archive@.service")
	sd.dropIn(t, systemd.AutoUnit)
	if out, err := sd.systemctl("daemon-reload"); err != nil {
		t.Fatalf("daemon-reload: %v: %s", err, out)
	}
	if out, err := sd.systemctl("start", systemd.TargetUnit); err != nil {
		t.Fatalf("start target: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := sd.systemctl("status", "--no-pager", "--", "ec-archive*")
			logs, _ := os.ReadFile(sd.logPath)
			console, _ := os.ReadFile(sd.console)
			t.Logf("systemctl status:\n%s\nunit output:\n%s\nsystemd log:\n%s", out, logs, console)
		}
	})
	unitOf := func(name string) string {
		key, err := systemd.Key(url, name)
		if err != nil {
			t.Fatal(err)
		}
		return systemd.UnitName(systemd.Instance(key))
	}
	// The status files are in the namespace's private /run. archive-status reads
	// them there: reached from outside through /proc/PID/root, a magic link, the
	// status directory would resolve to the host's own /run (safefs resolves a
	// root's links once, and a magic link reads as "/").
	statusDir := statusView{dir: systemd.StatusDir, command: func(args ...string) *exec.Cmd {
		return exec.Command("nsenter", append([]string{"--target", strconv.Itoa(sd.pid), "--mount", "--", ecNode}, args...)...)
	}}

	// Type=notify: "active" means archive-auto sent READY=1.
	waitFor(t, "supervisor active", 30*time.Second, func() (bool, string) {
		st := sd.unitProperty(t, systemd.AutoUnit, "ActiveState")
		return st == "active", st
	})
	archiving(t, statusDir, map[string]int64{"e2e-a": 2, "e2e-b": 2})
	// The supervisor serves the worker units' metrics (their .prom files).
	waitMetrics(t, metricsAddr, "both workers' metrics at the supervisor", func(m scrape) bool {
		return m.sum("ec_archived_groups_total", `broadcast="e2e-a"`) >= 2 && m.sum("ec_archived_groups_total", `broadcast="e2e-b"`) >= 2 &&
			m.sum("ec_broadcast_announced", `broadcast="e2e-a"`) == 1 && m.sum("go_goroutines") > 0
	}, "ec_archived_groups_total", "ec_broadcast_announced")
	for _, name := range []string{"e2e-a", "e2e-b"} {
		if st := sd.unitProperty(t, unitOf(name), "ActiveState"); st != "active" {
			t.Errorf("%s: %s", unitOf(name), st)
		}
	}

	dir.set("e2e-b", "")
	f.publish("e2e-c")
	dir.set("e2e-c", url)
	archiving(t, statusDir, map[string]int64{"e2e-a": 2, "e2e-c": 2})
	waitFor(t, "e2e-b's unit stopped", 30*time.Second, func() (bool, string) {
		st := sd.unitProperty(t, unitOf("e2e-b"), "ActiveState")
		return st == "inactive", st
	})
	waitMetrics(t, metricsAddr, "e2e-b's series gone", func(m scrape) bool {
		return m.count(`broadcast="e2e-b"`) == 0 && m.sum("ec_archived_groups_total", `broadcast="e2e-c"`) >= 2
	}, "ec_archived_groups_total")

	// A supervisor restart adopts the running workers instead of restarting them.
	pid := sd.unitProperty(t, unitOf("e2e-a"), "MainPID")
	if out, err := sd.systemctl("restart", systemd.AutoUnit); err != nil {
		t.Fatalf("restart supervisor: %v: %s", err, out)
	}
	time.Sleep(5 * time.Second)
	if now := sd.unitProperty(t, unitOf("e2e-a"), "MainPID"); now != pid || pid == "0" {
		t.Errorf("worker MainPID %s before the supervisor restart, %s after", pid, now)
	}

	// Stopping the target stops every worker (PartOf=) and keeps the archive.
	if out, err := sd.systemctl("stop", systemd.TargetUnit); err != nil {
		t.Fatalf("stop target: %v: %s", err, out)
	}
	waitFor(t, "all archive units inactive", 30*time.Second, func() (bool, string) {
		out, _ := sd.systemctl("list-units", "--state=active", "--plain", "--no-legend", "--", "ec-archive*")
		return out == "", out
	})
	objects, _ := filepath.Glob(filepath.Join(cas, "objects", "blake3", "*", "*.bin"))
	if len(objects) == 0 {
		t.Error("no CAS objects left after stopping the target")
	}
	jsonl, _ := filepath.Glob(filepath.Join(manifests, "*", "*.jsonl"))
	if len(jsonl) == 0 {
		t.Error("no manifests left after stopping the target")
	}
}
