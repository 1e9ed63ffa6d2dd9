package command

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/cas"
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
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "url", Value: DefaultRelayURL, Usage: "relay URL; the path is the session root, ?jwt= is passed through", EnvVars: []string{"EC_RELAY_URL"}},
			&cli.StringFlag{Name: "name", Usage: "broadcast name (path relative to the URL's root)", EnvVars: []string{"EC_BROADCAST"}},
			&cli.StringFlag{Name: "output-dir", Usage: "CAS root", EnvVars: []string{"EC_OUTPUT_DIR"}},
			&cli.StringFlag{Name: "manifest-dir", Usage: "manifest root", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringSliceFlag{Name: "track", Usage: "archive exactly these tracks (repeatable); default: follow catalog.json", EnvVars: []string{"EC_TRACKS"}},
			&cli.DurationFlag{Name: "announce-wait", Value: archive.DefaultAnnounceWait, Usage: "how long one session waits for the broadcast to be announced before reconnecting"},
			&cli.IntFlag{Name: "max-attempts", Usage: "exit 75 after this many consecutive failed sessions (0: retry forever)"},
			&cli.DurationFlag{Name: "max-backoff", Value: archive.DefaultMaxBackoff, Usage: "cap of the reconnect delay"},
			&cli.DurationFlag{Name: "stall-timeout", Value: archive.DefaultStallTimeout, Usage: "reconnect when no group arrives on any track for this long"},
			&cli.Int64Flag{Name: "max-group-bytes", Value: archive.DefaultMaxGroupBytes, Usage: "largest group archived; larger ones become too-large gaps"},
			&cli.StringFlag{Name: "status-file", Usage: "write the worker's status JSON here every few seconds (read by archive-status)", EnvVars: []string{"EC_STATUS_FILE"}},
		}, tlsFlags()...),
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
	dial, err := dialOptions(c, log)
	if err != nil {
		return err
	}
	store, err := cas.OpenLocal(c.String("output-dir"))
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	// Temp files older than an hour belong to writers that crashed; a live
	// writer in another process touches its temp file within seconds.
	if n, err := store.CleanTemp(time.Hour); err != nil {
		log.Warn("stale temp files not removed", "err", err)
	} else if n > 0 {
		log.Info("removed stale temp files", "count", n)
	}
	if err := os.MkdirAll(c.String("manifest-dir"), 0o755); err != nil {
		return configErrorf("--manifest-dir: %w", err)
	}
	if sf := c.String("status-file"); sf != "" {
		if err := os.MkdirAll(filepath.Dir(sf), 0o755); err != nil {
			return configErrorf("--status-file: %w", err)
		}
	}
	err = archive.Run(c.Context, archive.Config{
		RelayURL:      c.String("url"),
		Broadcast:     c.String("name"),
		Tracks:        c.StringSlice("track"),
		Store:         store,
		ManifestDir:   c.String("manifest-dir"),
		Dial:          dial,
		AnnounceWait:  c.Duration("announce-wait"),
		MaxAttempts:   c.Int("max-attempts"),
		MaxBackoff:    c.Duration("max-backoff"),
		MaxGroupBytes: c.Int64("max-group-bytes"),
		StallTimeout:  c.Duration("stall-timeout"),
		StatusFile:    c.String("status-file"),
		Logger:        log,
	})
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
