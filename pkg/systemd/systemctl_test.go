package systemd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystemctl writes a recording stand-in for systemctl: it appends its
// arguments to a log and prints canned list-units output.
func fakeSystemctl(t *testing.T, listOutput string, exitCode int) (Systemctl, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	listing := filepath.Join(dir, "listing")
	if err := os.WriteFile(listing, []byte(listOutput), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n" +
		"echo \"$*\" >> '" + log + "'\n" +
		"if [ \"$1\" = list-units ]; then cat '" + listing + "'; fi\n" +
		"if [ " + map[bool]string{true: "1", false: "0"}[exitCode != 0] + " = 1 ]; then echo 'Failed: access denied' >&2; exit 1; fi\n"
	bin := filepath.Join(dir, "systemctl")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return Systemctl{Path: bin}, log
}

func TestSystemctlCommands(t *testing.T) {
	listing := "ec-archive@a\\x7cb.service loaded active running ec-node archive worker for a|b\n" +
		"● ec-archive@c\\x7cd.service loaded failed failed ec-node archive worker for c|d\n\n"
	sc, log := fakeSystemctl(t, listing, 0)
	ctx := context.Background()
	unit := UnitName(`a\x7cb`)
	if err := sc.Start(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if err := sc.ResetFailed(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if err := sc.Stop(ctx, unit); err != nil {
		t.Fatal(err)
	}
	units, err := sc.List(ctx, "ec-archive@*.service")
	if err != nil {
		t.Fatal(err)
	}
	want := []UnitState{
		{Unit: `ec-archive@a\x7cb.service`, Load: "loaded", Active: "active", Sub: "running"},
		{Unit: `ec-archive@c\x7cd.service`, Load: "loaded", Active: "failed", Sub: "failed"},
	}
	if len(units) != len(want) || units[0] != want[0] || units[1] != want[1] {
		t.Errorf("List = %+v, want %+v", units, want)
	}
	calls, _ := os.ReadFile(log)
	wantCalls := "start --no-block -- ec-archive@a\\x7cb.service\n" +
		"reset-failed -- ec-archive@a\\x7cb.service\n" +
		"stop --no-block -- ec-archive@a\\x7cb.service\n" +
		"list-units --all --plain --full --no-legend --no-pager -- ec-archive@*.service\n"
	if string(calls) != wantCalls {
		t.Errorf("calls:\n%s\nwant:\n%s", calls, wantCalls)
	}
}

func TestSystemctlErrorCarriesStderr(t *testing.T) {
	sc, _ := fakeSystemctl(t, "", 1)
	err := sc.Start(context.Background(), "ec-archive@x.service")
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("Start error = %v, want systemctl's stderr in it", err)
	}
}
