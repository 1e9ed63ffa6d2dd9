package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/every-channel/ec-node/pkg/systemd"
)

// Systemd runs each worker as an instance of ec-archive@.service. Before each
// start it writes the instance's environment file, which tells the worker its
// relay, broadcast and status file.
type Systemd struct {
	Ctl       systemd.Systemctl
	EnvDir    string
	StatusDir string
	Logger    *slog.Logger

	lastActive map[string]string // instance -> ActiveState from the last List
}

var _ Runner = (*Systemd)(nil)

// Start writes the environment file and starts the unit. A unit left in the
// failed state (crashed, or stuck in start-limit failure under an operator's
// own StartLimit settings) is reset first, or systemd would refuse the start.
func (r *Systemd) Start(ctx context.Context, w Worker) error {
	env := systemd.InstanceEnv{Key: w.Key, RelayURL: w.RelayURL, Broadcast: w.Broadcast,
		StatusFile: StatusFile(r.StatusDir, w.Instance)}
	if err := systemd.WriteEnvFile(r.EnvDir, w.Instance, env); err != nil {
		return err
	}
	unit := systemd.UnitName(w.Instance)
	if r.lastActive[w.Instance] == "failed" {
		if err := r.Ctl.ResetFailed(ctx, unit); err != nil {
			return err
		}
	}
	return r.Ctl.Start(ctx, unit)
}

// Stop stops the unit and removes its environment file; a running worker has
// read it already.
func (r *Systemd) Stop(ctx context.Context, instance string) error {
	err := r.Ctl.Stop(ctx, systemd.UnitName(instance))
	if rmErr := os.Remove(systemd.EnvFilePath(r.EnvDir, instance)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}

// List lists the loaded ec-archive@ units.
func (r *Systemd) List(ctx context.Context) (map[string]WorkerState, error) {
	units, err := r.Ctl.List(ctx, systemd.InstancePrefix+"*"+systemd.InstanceSuffix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]WorkerState, len(units))
	r.lastActive = make(map[string]string, len(units))
	for _, u := range units {
		inst, ok := systemd.InstanceOfUnit(u.Unit)
		if !ok {
			continue
		}
		r.lastActive[inst] = u.Active
		out[inst] = WorkerState{
			Running: u.Active == "active" || u.Active == "activating" || u.Active == "reloading",
			Failed:  u.Active == "failed",
			Detail:  fmt.Sprintf("%s (%s)", u.Active, u.Sub),
		}
	}
	return out, nil
}

// Shutdown leaves the units running: a restarted supervisor adopts them, so a
// redeploy of the supervisor does not interrupt archiving.
func (r *Systemd) Shutdown(context.Context) error {
	if r.Logger != nil {
		r.Logger.Info("supervisor exiting; worker units keep running", "units", len(r.lastActive))
	}
	return nil
}
