package command

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/discover"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/sdnotify"
	"github.com/every-channel/ec-node/pkg/segment"
	"github.com/every-channel/ec-node/pkg/shard"
	"github.com/every-channel/ec-node/pkg/supervise"
	"github.com/every-channel/ec-node/pkg/systemd"
)

// ArchiveAuto is `ec-node archive-auto`: discover live broadcasts and keep one
// archive worker per broadcast.
func ArchiveAuto() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "mode", Value: systemd.ModeInProcess, Usage: "worker mode: inprocess (goroutines) or systemd (ec-archive@ units)"},
		&cli.StringFlag{Name: "status-dir", Value: systemd.StatusDir, Usage: "directory of the workers' status files (read by archive-status)"},
		&cli.StringFlag{Name: "env-dir", Value: systemd.EnvDir, Usage: "systemd mode: directory of the instances' environment files"},
		&cli.StringFlag{Name: "systemctl", Value: "systemctl", Usage: "systemd mode: systemctl binary"},
	}
	flags = append(flags, storeFlags()...)
	flags = append(flags, archiveAutoFlags()...)
	flags = append(flags, workerFlags()...)
	flags = append(flags, tlsFlags()...)
	return &cli.Command{
		Name:  "archive-auto",
		Usage: "archive every live broadcast: discover, start one worker each, stop the ones that end",
		Description: `Polls discovery (the web directory, or a relay's announcements with --relay-announce),
keeps exactly one archive worker per live broadcast that passes --include/--exclude (at most
--max-broadcasts), always archives the --broadcast names from --relay-url, stops a worker once its
broadcast has been missing for --grace, and restarts crashed workers with capped exponential
backoff. A failed discovery poll changes nothing.

--mode inprocess runs the workers as goroutines of this process. --mode systemd starts and stops
ec-archive@<instance>.service units (see ec-node systemd-units and docs/systemd.md); they keep
running when this process exits, and a new archive-auto adopts them.

Workers write status files to --status-dir; stalls are logged, and archive-status shows them.

EXIT STATUS
   0   stopped by SIGINT/SIGTERM
   2   bad flags
   78  configuration error (restarting will not help)`,
		Flags:       flags,
		Action:      runArchiveAuto,
		Subcommands: []*cli.Command{archiveWorker()},
	}
}

// archiveWorker is `ec-node archive-auto worker`, the ExecStart= of
// ec-archive@.service: it reads the instance's environment file and execs
// `ec-node wt-archive` for it. (EnvironmentFile= cannot be used: it globs its
// path, and the backslashes of an escaped instance name are glob escapes.)
func archiveWorker() *cli.Command {
	return &cli.Command{
		Name:      "worker",
		Usage:     "systemd mode: exec wt-archive for the broadcast named in an instance's environment file",
		ArgsUsage: "--env-file FILE -- [wt-archive flags]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "env-file", Required: true, Usage: "the instance's environment file, written by archive-auto"},
		},
		Action: runArchiveWorker,
	}
}

func runArchiveWorker(c *cli.Context) error {
	env, err := systemd.ReadEnvFile(c.String("env-file"))
	if err != nil {
		return withExit(ExitConfig, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return withExit(ExitConfig, fmt.Errorf("locating ec-node: %w", err))
	}
	argv := append([]string{exe, "wt-archive", "--url", env.RelayURL, "--name", env.Broadcast,
		"--status-file", env.StatusFile, "--metrics-file", supervise.MetricsFile(env.StatusFile)}, c.Args().Slice()...)
	// Exec keeps the PID, so systemd supervises wt-archive itself.
	return withExit(ExitConfig, fmt.Errorf("exec wt-archive: %w", syscall.Exec(exe, argv, os.Environ())))
}

// storeFlags name the archive's two roots.
func storeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output-dir", Aliases: []string{"store"}, Usage: storeUsage, EnvVars: []string{"EC_OUTPUT_DIR"}},
		&cli.StringFlag{Name: "manifest-dir", Usage: "manifest root", EnvVars: []string{"EC_MANIFEST_DIR"}},
	}
}

// archiveAutoFlags configure discovery and supervision; systemd-units passes
// the ones set on to the supervisor unit.
func archiveAutoFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "directory", Value: discover.DefaultDirectoryURL, Usage: `web directory to poll ("" for none)`},
		&cli.StringFlag{Name: "relay-announce", Usage: "discover through this relay's announcements instead of the directory"},
		&cli.StringFlag{Name: "announce-prefix", Usage: "with --relay-announce: only broadcasts under this prefix"},
		&cli.StringFlag{Name: "relay-url", Value: DefaultRelayURL, Usage: "relay of the --broadcast names"},
		&cli.StringSliceFlag{Name: "broadcast", Usage: "archive this broadcast from --relay-url whatever discovery says (repeatable)"},
		&cli.StringFlag{Name: "relay-url-override", Usage: "subscribe every discovered broadcast through this relay instead of its listed one"},
		&cli.StringSliceFlag{Name: "include", Usage: `archive only discovered names matching one of these patterns ("*" stops at "/"; repeatable)`},
		&cli.StringSliceFlag{Name: "exclude", Usage: "skip discovered names matching one of these patterns (repeatable; wins over --include)"},
		&cli.StringSliceFlag{Name: "shard-hosts", Usage: "share discovered broadcasts among these archive hosts by rendezvous hashing (repeatable or comma-separated; docs/discovery.md)"},
		&cli.StringFlag{Name: "shard-self", Usage: "with --shard-hosts: this host's name in the list"},
		&cli.IntFlag{Name: "shard-replicas", Value: 1, Usage: "with --shard-hosts: hosts archiving each broadcast"},
		&cli.DurationFlag{Name: "ship-interval", Usage: "with an s3:// --store: seal new manifest lines into the bucket this often, as `manifest ship` does, with --shard-self or the hostname as origin (0: off; docs/manifest.md)"},
		&cli.IntFlag{Name: "max-broadcasts", Usage: "archive at most this many discovered broadcasts (0: no limit)"},
		&cli.DurationFlag{Name: "poll-interval", Value: supervise.DefaultPollInterval, Usage: "discovery poll interval"},
		&cli.DurationFlag{Name: "grace", Value: supervise.DefaultGrace, Usage: "stop a worker once its broadcast has been missing this long"},
		&cli.DurationFlag{Name: "stale", Value: supervise.DefaultStaleAfter, Usage: "log a worker as stalled after this long without a group"},
		&cli.DurationFlag{Name: "timeout", Value: discover.DefaultFetchTimeout, Usage: "give up on one directory fetch after this long"},
		metricsListenFlag,
		pprofListenFlag,
	}
}

func runArchiveAuto(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usageErrorf("unexpected arguments: %q", c.Args().Slice())
	}
	cfg, err := superviseConfig(c, log)
	if err != nil {
		return err
	}
	obs, err := archiveAutoMetrics(c, log, c.String("status-dir"))
	if err != nil {
		return err
	}
	if err := serveProfiles(c, log); err != nil {
		return err
	}
	runner, err := archiveRunner(c, log, obs)
	if err != nil {
		return err
	}
	if err := safefs.MkdirAll(c.String("status-dir"), 0o750); err != nil {
		return configErrorf("--status-dir: %w", err)
	}
	ready := false
	cfg.Runner, cfg.StatusDir = runner, c.String("status-dir")
	cfg.Notify = func(summary string) {
		notify := sdnotify.Watchdog
		if !ready {
			notify, ready = sdnotify.Ready, true
		}
		if _, err := notify(summary); err != nil {
			log.Warn("sd_notify", "err", err)
		}
	}
	sup, err := supervise.New(cfg)
	if err != nil {
		return withExit(ExitConfig, err)
	}
	if d := c.Duration("ship-interval"); d > 0 {
		bucket, err := openBucket(c, c.String("output-dir"))
		if err != nil {
			return err
		}
		origin, err := originName(c.String("shard-self"))
		if err != nil {
			return err
		}
		go shipEvery(c.Context, log, &segment.Shipper{Bucket: bucket, ManifestDir: c.String("manifest-dir"), Origin: origin}, d)
	}
	startSource(c.Context, cfg.Source, log)
	log.Info("archive-auto running", "mode", c.String("mode"), "directory", c.String("directory"),
		"relay_announce", c.String("relay-announce"), "static", len(cfg.Static))
	return sup.Run(c.Context)
}

// superviseConfig is the supervise.Config that archiveAutoFlags describe, checked
// by supervise.Config.Check but without its runner, and with no discovery
// started yet. It is the one check of these flags: systemd-units runs it
// before rendering them into ec-archive-auto.service, so a unit never carries a
// setting (a bad --broadcast name, a bad URL, ...) that archive-auto would
// refuse when it starts. Every error is a configuration error.
func superviseConfig(c *cli.Context, log *slog.Logger) (supervise.Config, error) {
	cfg := supervise.Config{
		RelayOverride: c.String("relay-url-override"),
		Include:       c.StringSlice("include"), Exclude: c.StringSlice("exclude"),
		MaxWorkers:   c.Int("max-broadcasts"),
		PollInterval: c.Duration("poll-interval"), Grace: c.Duration("grace"), StaleAfter: c.Duration("stale"),
		Logger: log,
	}
	if hosts := c.StringSlice("shard-hosts"); len(hosts) > 0 {
		ring, err := shard.New(hosts, c.String("shard-self"), c.Int("shard-replicas"))
		if err != nil {
			return cfg, configErrorf("--shard-hosts: %w", err)
		}
		cfg.Mine = ring.Mine
	} else if c.IsSet("shard-self") || c.IsSet("shard-replicas") {
		return cfg, configErrorf("--shard-self and --shard-replicas need --shard-hosts")
	}
	if d := c.Duration("ship-interval"); d < 0 || d > 0 && (!strings.HasPrefix(c.String("output-dir"), "s3://") || c.String("manifest-dir") == "") {
		return cfg, configErrorf("--ship-interval needs an s3:// --store and --manifest-dir")
	}
	if c.String("directory") != "" || c.String("relay-announce") != "" {
		src, err := discoverySource(c, log, "directory", "relay-announce", "announce-prefix")
		if err != nil {
			return cfg, err
		}
		cfg.Source = src
	}
	if cfg.RelayOverride != "" {
		if _, err := relayURLFlag(c, "relay-url-override"); err != nil {
			return cfg, err
		}
	}
	relay, err := relayURLFlag(c, "relay-url")
	if err != nil {
		return cfg, err
	}
	for _, name := range c.StringSlice("broadcast") {
		cfg.Static = append(cfg.Static, discover.Broadcast{RelayURL: relay, Name: name})
	}
	if err := cfg.Check(); err != nil {
		return cfg, withExit(ExitConfig, err)
	}
	return cfg, nil
}

// archiveRunner builds the worker runner of --mode. In-process workers report
// to obs (may be nil); in --mode systemd they are other processes.
func archiveRunner(c *cli.Context, log *slog.Logger, obs archive.Observer) (supervise.Runner, error) {
	switch c.String("mode") {
	case systemd.ModeSystemd:
		if err := safefs.MkdirAll(c.String("env-dir"), 0o750); err != nil {
			return nil, configErrorf("--env-dir: %w", err)
		}
		return &supervise.Systemd{Ctl: systemd.Systemctl{Path: c.String("systemctl")},
			EnvDir: c.String("env-dir"), StatusDir: c.String("status-dir"), Logger: log}, nil
	case systemd.ModeInProcess:
		work, err := inProcessWork(c, log, obs)
		if err != nil {
			return nil, err
		}
		return &supervise.InProcess{Work: work, StatusDir: c.String("status-dir"), Logger: log}, nil
	default:
		return nil, usageErrorf("--mode: want %s or %s, got %q", systemd.ModeInProcess, systemd.ModeSystemd, c.String("mode"))
	}
}

// inProcessWork opens the store once and returns the worker body: archive.Run
// with the worker flags.
func inProcessWork(c *cli.Context, log *slog.Logger, obs archive.Observer) (supervise.WorkFunc, error) {
	for _, f := range []string{"output-dir", "manifest-dir"} {
		if c.String(f) == "" {
			return nil, configErrorf("--%s is required in --mode %s", f, systemd.ModeInProcess)
		}
	}
	base, err := workerConfig(c, log)
	if err != nil {
		return nil, err
	}
	store, err := openStore(c.Context, c.String("output-dir"))
	if err != nil {
		return nil, withExit(ExitIOErr, err)
	}
	if err := safefs.MkdirAll(c.String("manifest-dir"), 0o755); err != nil {
		return nil, configErrorf("--manifest-dir: %w", err)
	}
	base.Store, base.ManifestDir, base.Observer = store, c.String("manifest-dir"), obs
	// One session log for all workers: one descriptor of the directory, not one each.
	if base.SessionLog, err = manifest.OpenSessionLog(base.ManifestDir, log); err != nil {
		return nil, withExit(ExitIOErr, err)
	}
	base.Tool = "archive-auto"
	return func(ctx context.Context, w supervise.Worker, statusFile string) error {
		cfg := base
		cfg.RelayURL, cfg.Broadcast, cfg.StatusFile = w.RelayURL, w.Broadcast, statusFile
		cfg.Logger = log.With("broadcast", w.Broadcast)
		return archive.Run(ctx, cfg)
	}, nil
}

// flagArgs turns the flags among flags that were set on c back into arguments,
// so that systemd-units can hand them on to the rendered units.
func flagArgs(c *cli.Context, flags []cli.Flag) ([]string, error) {
	var args []string
	for _, f := range flags {
		name := f.Names()[0]
		if !c.IsSet(name) {
			continue
		}
		switch f.(type) {
		case *cli.StringFlag:
			args = append(args, "--"+name, c.String(name))
		case *cli.StringSliceFlag:
			for _, v := range c.StringSlice(name) {
				args = append(args, "--"+name, v)
			}
		case *cli.BoolFlag:
			args = append(args, "--"+name+"="+strconv.FormatBool(c.Bool(name)))
		case *cli.DurationFlag:
			args = append(args, "--"+name, c.Duration(name).String())
		case *cli.IntFlag:
			args = append(args, "--"+name, strconv.Itoa(c.Int(name)))
		case *cli.Int64Flag:
			args = append(args, "--"+name, strconv.FormatInt(c.Int64(name), 10))
		default:
			return nil, fmt.Errorf("flag --%s: type %T cannot be passed on", name, f)
		}
	}
	return args, nil
}
