package systemd

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Systemctl controls units by running systemctl(1). Running the client rather
// than speaking D-Bus keeps ec-node free of a D-Bus library, behaves exactly as
// an operator's own commands do (same polkit checks, same error messages in the
// log), and lets tests put a recording stand-in on the path (docs/systemd.md).
type Systemctl struct {
	// Path is the systemctl binary; "" means "systemctl" from $PATH.
	Path string
}

// UnitState is one row of `systemctl list-units`.
type UnitState struct {
	Unit   string
	Load   string // loaded, not-found, ...
	Active string // active, activating, deactivating, inactive, failed
	Sub    string // running, exited, auto-restart, failed, dead, ...
}

// Start enqueues a start job without waiting for it: a worker that takes long
// to become ready must not stall the supervisor.
func (s Systemctl) Start(ctx context.Context, unit string) error {
	_, err := s.run(ctx, "start", "--no-block", "--", unit)
	return err
}

// Stop enqueues a stop job without waiting for the worker to flush and exit.
func (s Systemctl) Stop(ctx context.Context, unit string) error {
	_, err := s.run(ctx, "stop", "--no-block", "--", unit)
	return err
}

// ResetFailed clears a unit's failed state and start-limit counter, so that a
// unit stuck in start-limit failure can be started again.
func (s Systemctl) ResetFailed(ctx context.Context, unit string) error {
	_, err := s.run(ctx, "reset-failed", "--", unit)
	return err
}

// List returns the loaded units matching a glob, e.g. "ec-archive@*.service",
// including inactive and failed ones.
func (s Systemctl) List(ctx context.Context, pattern string) ([]UnitState, error) {
	out, err := s.run(ctx, "list-units", "--all", "--plain", "--full", "--no-legend", "--no-pager", "--", pattern)
	if err != nil {
		return nil, err
	}
	var units []UnitState
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && !strings.Contains(f[0], ".") { // a status glyph such as "●" before the name
			f = f[1:]
		}
		if len(f) < 4 {
			continue
		}
		units = append(units, UnitState{Unit: f[0], Load: f[1], Active: f[2], Sub: f[3]})
	}
	return units, nil
}

func (s Systemctl) run(ctx context.Context, args ...string) ([]byte, error) {
	path := s.Path
	if path == "" {
		path = "systemctl"
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 512 {
			msg = msg[:512] + "..."
		}
		return nil, fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}
