// Package supervise keeps exactly one archive worker running per live
// broadcast: it reconciles the discovered set against the workers a Runner
// reports, starts what is missing, stops what is gone (after a grace period)
// and restarts crashed workers with capped exponential backoff.
package supervise

import (
	"context"
	"path/filepath"
	"strings"
)

// Worker is one archive worker.
type Worker struct {
	// Instance names the worker: its ec-archive@ unit instance and its status
	// file (systemd.Instance of Key).
	Instance  string
	Key       string // systemd.Key(RelayURL, Broadcast)
	RelayURL  string
	Broadcast string
}

// WorkerState is what a Runner knows about one worker.
type WorkerState struct {
	Running bool   // running or starting
	Failed  bool   // ended with an error (systemd: unit in failed state)
	Detail  string // why it ended, or the unit's active/sub state
}

// Runner starts and stops workers. The supervisor calls it from one goroutine.
type Runner interface {
	// Start starts w, or does nothing if it is already running. The worker must
	// write its status to StatusFile(statusDir, w.Instance).
	Start(ctx context.Context, w Worker) error
	// Stop stops the worker of instance (a no-op for an unknown one).
	Stop(ctx context.Context, instance string) error
	// List reports the workers the runner knows, by instance, including ones
	// started before this supervisor process (systemd units survive it).
	List(ctx context.Context) (map[string]WorkerState, error)
	// Shutdown is called when the supervisor exits: in-process workers stop,
	// systemd units keep running until a new supervisor adopts them.
	Shutdown(ctx context.Context) error
}

// StatusFile is where the worker of instance writes its archive.Status.
func StatusFile(statusDir, instance string) string {
	return filepath.Join(statusDir, instance+".json")
}

// MetricsFile is where a worker in another process writes its metrics for the
// supervisor to serve (docs/metrics.md): beside its status file.
func MetricsFile(statusFile string) string {
	return strings.TrimSuffix(statusFile, ".json") + ".prom"
}
