package command

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/systemd"
)

// SystemdUnits is `ec-node systemd-units`: render ec-archive@.service,
// ec-archive-auto.service and ec-archive.target (and the polkit rule) from the
// same settings archive-auto takes. The NixOS module runs it too, so the unit
// text has one source.
func SystemdUnits() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "write", Usage: "write the files into this directory instead of printing them"},
		&cli.StringFlag{Name: "ec-node", Usage: "absolute path of the ec-node binary in ExecStart= (default: this binary)"},
		&cli.StringFlag{Name: "user", Value: "ec-archive", Usage: "account the services run as"},
		&cli.StringFlag{Name: "group", Value: "ec-archive", Usage: "group the services run as"},
		&cli.StringFlag{Name: "mode", Value: systemd.ModeSystemd, Usage: "supervisor worker mode: systemd or inprocess"},
		&cli.StringFlag{Name: "systemctl", Usage: "absolute path of systemctl for the supervisor (default: from PATH)"},
		&cli.StringFlag{Name: "environment-file", Usage: "absolute path of an environment file both services read (EnvironmentFile=), e.g. AWS_* credentials for an s3:// store"},
		&cli.DurationFlag{Name: "watchdog", Value: 2 * time.Minute, Usage: "supervisor WatchdogSec= (0: no watchdog, Type=exec)"},
	}
	flags = append(flags, storeFlags()...)
	flags = append(flags, archiveAutoFlags()...)
	flags = append(flags, workerFlags()...)
	flags = append(flags, tlsFlags()...)
	return &cli.Command{
		Name:  "systemd-units",
		Usage: "print or write the systemd units for archive-auto and its per-broadcast workers",
		Description: `Takes archive-auto's discovery and worker flags and renders them into the units:
ec-archive@.service (one wt-archive worker per broadcast), ec-archive-auto.service (discovery and
supervisor) and ec-archive.target (stop it to stop everything), plus ` + systemd.PolkitRules + ` when a
non-root supervisor manages units. Output: each file preceded by a "### <name>" line, or files in
--write DIR. See docs/systemd.md.

A setting archive-auto or wt-archive would refuse at start (a bad --broadcast name, relay or
directory URL, pattern or TLS flag) is refused here with the same message and exit status 78, and
nothing is written.`,
		Flags:  flags,
		Action: runSystemdUnits,
	}
}

func runSystemdUnits(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf("unexpected arguments: %q", c.Args().Slice())
	}
	ecNode := c.String("ec-node")
	if ecNode == "" {
		exe, err := os.Executable()
		if err != nil {
			return usageErrorf("--ec-node: cannot find this binary: %v", err)
		}
		ecNode = exe
	}
	if c.Duration("watchdog") < 0 {
		return usageErrorf("--watchdog must not be negative")
	}
	// Settings go into ExecStart= only if archive-auto and the workers would
	// accept them: the same checks, before anything is rendered.
	discard := slog.New(slog.DiscardHandler)
	if _, err := superviseConfig(c, discard); err != nil {
		return err
	}
	if _, err := workerConfig(c, discard); err != nil {
		return err
	}
	autoArgs, err := flagArgs(c, archiveAutoFlags())
	if err != nil {
		return err
	}
	workerArgs, err := flagArgs(c, append(workerFlags(), tlsFlags()...))
	if err != nil {
		return err
	}
	files, err := systemd.Render(systemd.Units{
		ECNode: ecNode, User: c.String("user"), Group: c.String("group"),
		OutputDir: c.String("output-dir"), ManifestDir: c.String("manifest-dir"),
		Mode: c.String("mode"), WorkerArgs: workerArgs, AutoArgs: autoArgs,
		Systemctl: c.String("systemctl"), WatchdogSec: int(c.Duration("watchdog") / time.Second),
		EnvironmentFile: c.String("environment-file"),
	})
	if err != nil {
		return withExit(ExitConfig, err)
	}
	if dir := c.String("write"); dir != "" {
		if err := safefs.MkdirAll(dir, 0o755); err != nil {
			return withExit(ExitIOErr, err)
		}
		if err := systemd.WriteFiles(dir, files); err != nil {
			return withExit(ExitIOErr, err)
		}
		for _, f := range files {
			fmt.Fprintln(streams(c).Stdout, filepath.Join(dir, f.Name))
		}
		return nil
	}
	for _, f := range files {
		if _, err := fmt.Fprintf(streams(c).Stdout, "### %s\n%s\n", f.Name, f.Text); err != nil {
			return err
		}
	}
	return nil
}
