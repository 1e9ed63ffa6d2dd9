package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/systemd"
)

func TestInProcessRunner(t *testing.T) {
	started := make(chan string, 4)
	r := &InProcess{StatusDir: "/status", Work: func(ctx context.Context, w Worker, statusFile string) error {
		started <- statusFile
		if w.Broadcast == "crash" {
			return errors.New("gave up")
		}
		<-ctx.Done()
		return nil
	}}
	ctx := context.Background()
	a := Worker{Instance: "ia", Broadcast: "a"}
	if err := r.Start(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, a); err != nil { // already running: no second goroutine
		t.Fatal(err)
	}
	if got := <-started; got != "/status/ia.json" {
		t.Errorf("status file %q", got)
	}
	if err := r.Start(ctx, Worker{Instance: "ic", Broadcast: "crash"}); err != nil {
		t.Fatal(err)
	}
	<-started
	deadline := time.Now().Add(5 * time.Second)
	for {
		states, _ := r.List(ctx)
		if st := states["ic"]; st.Failed && st.Detail == "gave up" && states["ia"].Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("states %+v", states)
		}
		time.Sleep(time.Millisecond)
	}
	if len(started) != 0 {
		t.Error("Start of a running worker started another goroutine")
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if states, _ := r.List(ctx); len(states) != 0 {
		t.Errorf("after Shutdown: %+v", states)
	}
}

func TestSystemdRunnerWithRecordingSystemctl(t *testing.T) {
	dir := t.TempDir()
	envDir := filepath.Join(dir, "env")
	if err := os.Mkdir(envDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := workerFor(bc("la-nbc")[0])
	if err != nil {
		t.Fatal(err)
	}
	unit := systemd.UnitName(w.Instance)
	// Recording stand-in for systemctl: logs its arguments, lists the unit as failed.
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\n" +
		"[ \"$1\" = list-units ] && echo '" + unit + " loaded failed failed worker'\nexit 0\n"
	bin := filepath.Join(dir, "systemctl")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Systemd{Ctl: systemd.Systemctl{Path: bin}, EnvDir: envDir, StatusDir: "/run/ec-archive/status"}
	ctx := context.Background()
	states, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := states[w.Instance]; !st.Failed || st.Running {
		t.Fatalf("states %+v", states)
	}
	if err := r.Start(ctx, w); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(systemd.EnvFilePath(envDir, w.Instance))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`EC_RELAY_URL="https://relay.test/anon"`, `EC_BROADCAST="la-nbc"`,
		`EC_STATUS_FILE="/run/ec-archive/status/` + strings.ReplaceAll(w.Instance, `\`, `\\`) + `.json"`} {
		if !strings.Contains(string(env), want) {
			t.Errorf("env file lacks %s:\n%s", want, env)
		}
	}
	if err := r.Stop(ctx, w.Instance); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(systemd.EnvFilePath(envDir, w.Instance)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("env file left after Stop: %v", err)
	}
	calls, _ := os.ReadFile(log)
	want := "list-units --all --plain --full --no-legend --no-pager -- ec-archive@*.service\n" +
		"reset-failed -- " + unit + "\n" +
		"start --no-block -- " + unit + "\n" +
		"stop --no-block -- " + unit + "\n"
	if string(calls) != want {
		t.Errorf("systemctl calls:\n%s\nwant:\n%s", calls, want)
	}
}

func writeStatus(t *testing.T, dir, inst string, st archive.Status) {
	t.Helper()
	data, _ := json.Marshal(st)
	if err := os.WriteFile(StatusFile(dir, inst), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadStatusDirStaleness(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	ms := func(ago time.Duration) int64 { return now.Add(-ago).UnixMilli() }
	writeStatus(t, dir, "fresh", archive.Status{State: "archiving", LastGroupUnixMs: ms(time.Second), UpdatedUnixMs: ms(time.Second)})
	writeStatus(t, dir, "silent", archive.Status{State: "archiving", LastGroupUnixMs: ms(10 * time.Minute), UpdatedUnixMs: ms(time.Second)})
	writeStatus(t, dir, "waiting", archive.Status{State: "waiting", StartedUnixMs: ms(10 * time.Minute), UpdatedUnixMs: ms(time.Second)})
	writeStatus(t, dir, "hung", archive.Status{State: "archiving", LastGroupUnixMs: ms(time.Second), UpdatedUnixMs: ms(10 * time.Minute)})
	writeStatus(t, dir, "stopped", archive.Status{State: "stopped", LastGroupUnixMs: ms(time.Hour), UpdatedUnixMs: ms(time.Hour)})
	os.WriteFile(filepath.Join(dir, "garbage.json"), []byte("{"), 0o644)
	os.WriteFile(filepath.Join(dir, ".tmp-x.json"), []byte("{"), 0o644)
	reports, err := ReadStatusDir(dir, now, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range reports {
		got[r.Instance] = r.Stale
	}
	want := map[string]bool{"fresh": false, "silent": true, "waiting": true, "hung": true, "stopped": false, "garbage": true}
	if len(got) != len(want) {
		t.Fatalf("reports %v, want %v", got, want)
	}
	for inst, stale := range want {
		if got[inst] != stale {
			t.Errorf("%s: stale=%v, want %v", inst, got[inst], stale)
		}
	}
}
