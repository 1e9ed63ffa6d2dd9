package command

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/supervise"
	"github.com/every-channel/ec-node/pkg/systemd"
)

// ArchiveStatus is `ec-node archive-status`: show every worker's liveness and
// fail when one has stalled, for use as a monitoring check.
func ArchiveStatus() *cli.Command {
	return &cli.Command{
		Name:  "archive-status",
		Usage: "show each archive worker's progress; exit 1 if one has stalled",
		Description: `Reads the status files the workers write to --status-dir and prints, per broadcast: state,
age of the last archived group, groups, bytes, gaps and reconnects. A worker that is not stopped
and has archived nothing (or not refreshed its status) for --stale is marked STALE.

EXIT STATUS
   0   every worker is live (and at least --min-workers run)
   1   a worker is stale, or fewer than --min-workers are running
   2   bad flags or arguments
   74  the status directory cannot be read`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "status-dir", Value: systemd.StatusDir, Usage: "directory of the workers' status files"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per worker"},
			&cli.DurationFlag{Name: "stale", Value: supervise.DefaultStaleAfter, Usage: "a worker without a group for this long is stale"},
			&cli.IntFlag{Name: "min-workers", Usage: "fail when fewer workers than this are running (catches 'nothing is archiving at all')"},
		},
		Action: runArchiveStatus,
	}
}

func runArchiveStatus(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf("unexpected arguments: %q", c.Args().Slice())
	}
	if c.Duration("stale") <= 0 {
		return usageErrorf("--stale must be positive")
	}
	reports, err := supervise.ReadStatusDir(c.String("status-dir"), time.Now(), c.Duration("stale"))
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	out := streams(c).Stdout
	stale, running := 0, 0
	for _, r := range reports {
		if r.Stale {
			stale++
		}
		if r.State != "stopped" && r.Err == "" {
			running++
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		for _, r := range reports {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	} else {
		tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "BROADCAST\tSTATE\tLAST GROUP\tGROUPS\tBYTES\tGAPS\tRECONNECTS\tHEALTH")
		for _, r := range reports {
			name, health := r.Broadcast, "ok"
			if name == "" {
				name = r.Instance
			}
			if r.Stale {
				health = "STALE"
			}
			if r.Err != "" {
				health = "STALE: " + r.Err
			}
			fmt.Fprintf(tw, "%s\t%s\t%s ago\t%d\t%d\t%d\t%d\t%s\n", name, r.State, r.LastGroupAge.Round(time.Second),
				r.Groups, r.Bytes, r.Gaps, r.Reconnects, health)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch {
	case stale > 0:
		return withExit(ExitFailure, fmt.Errorf("%d of %d workers stale (no group for %v)", stale, len(reports), c.Duration("stale")))
	case running < c.Int("min-workers"):
		return withExit(ExitFailure, fmt.Errorf("%d workers running, want at least %d", running, c.Int("min-workers")))
	}
	return nil
}
