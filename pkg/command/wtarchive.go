package command

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/sdnotify"
)

// WTArchive is `ec-node wt-archive`: subscribe to one broadcast and archive every
// group into the CAS and the manifests, in-process.
func WTArchive() *cli.Command {
	return &cli.Command{
		Name:  "wt-archive",
		Usage: "archive one broadcast from a MoQ relay into the CAS and the manifests",
		Description: `Subscribes to a broadcast over WebTransport (moq-lite), stores each received group's
exact bytes as a BLAKE3-addressed object under --output-dir and appends one JSONL record per
group to <manifest-dir>/<broadcast>/<track>.jsonl. Without --track it follows the broadcast's
catalog.json (falling back to ` + "catalog.json, init.mp4, video0.m4s, audio0.m4s" + `).
It reconnects by itself with capped exponential backoff and records every range of groups it
could not get as a gap record.

EXIT STATUS
   0   stopped by SIGINT/SIGTERM (or the context) after a clean shutdown
   75  gave up after --max-attempts failed sessions (transient; restart later)
   78  configuration error (bad flags, unusable directories); restarting will not help
   74  the store could not be opened`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "url", Value: DefaultRelayURL, Usage: "relay URL: https:// (WebTransport) or moqt:// (raw QUIC); the path is the session root, ?jwt= is passed through", EnvVars: []string{"EC_RELAY_URL"}},
			&cli.StringFlag{Name: "name", Usage: "broadcast name (path relative to the URL's root)", EnvVars: []string{"EC_BROADCAST"}},
			&cli.StringFlag{Name: "output-dir", Aliases: []string{"store"}, Usage: storeUsage, EnvVars: []string{"EC_OUTPUT_DIR"}},
			&cli.StringFlag{Name: "manifest-dir", Usage: "manifest root", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringFlag{Name: "status-file", Usage: "write the worker's status JSON here every few seconds (read by archive-status)", EnvVars: []string{"EC_STATUS_FILE"}},
			maxAttemptsFlag,
			metricsListenFlag,
			metricsFileFlag,
			pprofListenFlag,
		}, workerFlags(), tlsFlags()),
		Action: runWTArchive,
	}
}

func runWTArchive(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usageErrorf("unexpected arguments: %q", c.Args().Slice())
	}
	for _, f := range []string{"name", "output-dir", "manifest-dir"} {
		if c.String(f) == "" {
			return configErrorf("--%s is required", f)
		}
	}
	relay, err := relayURLFlag(c, "url")
	if err != nil {
		return err
	}
	cfg, err := workerConfig(c, log)
	if err != nil {
		return err
	}
	store, err := openStore(c.Context, c.String("output-dir"))
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	// Temp files older than an hour belong to writers that crashed; a live
	// writer in another process touches its temp file within seconds.
	if local, ok := store.(*cas.Local); ok {
		if n, err := local.CleanTemp(time.Hour); err != nil {
			log.Warn("stale temp files not removed", "err", err)
		} else if n > 0 {
			log.Info("removed stale temp files", "count", n)
		}
	}
	if err := safefs.MkdirAll(c.String("manifest-dir"), 0o755); err != nil {
		return configErrorf("--manifest-dir: %w", err)
	}
	if sf := c.String("status-file"); sf != "" {
		if err := safefs.MkdirAll(filepath.Dir(sf), 0o755); err != nil {
			return configErrorf("--status-file: %w", err)
		}
	}
	cfg.RelayURL, cfg.Broadcast = relay, c.String("name")
	cfg.Store, cfg.ManifestDir, cfg.Tool = store, c.String("manifest-dir"), "wt-archive"
	cfg.StatusFile, cfg.MaxAttempts = c.String("status-file"), c.Int("max-attempts")
	cfg.OnStatus = systemdNotifier(log)
	if err := wtArchiveMetrics(c, log, &cfg); err != nil {
		return err
	}
	if err := serveProfiles(c, log); err != nil {
		return err
	}
	err = archive.Run(c.Context, cfg)
	return archiveExit(err)
}

// archiveExit maps a worker's error to the documented exit statuses.
func archiveExit(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, archive.ErrConfig):
		return withExit(ExitConfig, err)
	default:
		return withExit(ExitTempFail, err)
	}
}

// systemdNotifier reports a worker's status to systemd when it runs as a
// Type=notify unit: READY=1 with the first report (the store is open and the
// worker loop runs), then WATCHDOG=1 and a STATUS= line with every report. The
// reports come from the worker's own loop, so a wedged worker stops them; a
// worker that is alive but receives nothing is caught by --stall-timeout.
func systemdNotifier(log *slog.Logger) func(archive.Status) {
	ready := false
	return func(s archive.Status) {
		line := fmt.Sprintf("%s: %d groups, %d gaps, %d reconnects", s.State, s.Groups, s.Gaps, s.Reconnects)
		notify := sdnotify.Watchdog
		if !ready {
			notify = sdnotify.Ready
		}
		sent, err := notify(line)
		if err != nil {
			log.Warn("sd_notify", "err", err)
		}
		ready = ready || sent
	}
}
