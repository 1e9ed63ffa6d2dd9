package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/every-channel/ec-node/pkg/replay"
)

// Replay is `ec-node replay`: publish an archived broadcast into a relay again.
func Replay() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "publish an archived broadcast into a MoQ relay, byte for byte",
		Description: `Reads the manifests of --from-broadcast and the objects they name (each re-hashed
on read), and publishes every archived track under --name over WebTransport (moq-lite 03/04/05/06):
each group with its original sequence number and frame boundaries, on the original timing
taken from the manifests' received times. Gaps in the archive stay gaps. See docs/moq.md.

EXIT STATUS
   0   the range was published (or SIGINT/SIGTERM stopped the replay)
   1   an archived object is missing or corrupt (without --skip-corrupt)
   65  a manifest line is invalid
   74  the store could not be opened
   75  the relay was unreachable or the session was lost
   78  configuration error (bad flags, nothing archived under that name)`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "relay URL: https:// (WebTransport) or moqt:// (raw QUIC); the path is the session root, ?jwt= is passed through", EnvVars: []string{"EC_RELAY_URL"}},
			&cli.StringFlag{Name: "name", Usage: "broadcast name to publish under (relative to the URL's root)"},
			&cli.StringFlag{Name: "from-broadcast", Usage: "archived broadcast to replay"},
			&cli.StringFlag{Name: "output-dir", Aliases: []string{"cas-root"}, Usage: "CAS root", EnvVars: []string{"EC_OUTPUT_DIR"}},
			&cli.StringFlag{Name: "manifest-dir", Usage: "manifest root", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringFlag{Name: "from", Usage: "replay groups received at or after this time (RFC 3339 or Unix ms)"},
			&cli.StringFlag{Name: "to", Usage: "replay groups received at or before this time (RFC 3339 or Unix ms)"},
			&cli.StringFlag{Name: "groups", Usage: "replay the window spanned by these groups: [TRACK:]FIRST-LAST (default track: the catalog's first media track)"},
			&cli.StringFlag{Name: "speed", Value: "1", Usage: "1: original timing; N: N times faster; max: as fast as the relay takes"},
			&cli.BoolFlag{Name: "loop", Usage: "restart at the range start, with sequence numbers and timestamps continuing, until stopped"},
			&cli.BoolFlag{Name: "skip-corrupt", Usage: "turn a missing or corrupt object into a gap (logged) instead of stopping"},
			&cli.DurationFlag{Name: "wait-subscribers", Usage: "after publishing the first catalog group, hold the clock until every track it names has a subscriber, at most this long"},
		}, tlsFlags()),
		Action: runReplay,
	}
}

func runReplay(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usageErrorf("unexpected arguments: %q", c.Args().Slice())
	}
	for _, f := range []string{"url", "name", "from-broadcast", "output-dir", "manifest-dir"} {
		if c.String(f) == "" {
			return configErrorf("--%s is required", f)
		}
	}
	speed, err := parseSpeed(c.String("speed"))
	if err != nil {
		return configErrorf("--speed: %w", err)
	}
	dial, err := dialOptions(c, log)
	if err != nil {
		return err
	}
	store, err := cas.OpenLocal(c.String("output-dir"))
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	archive, err := replay.Load(c.String("manifest-dir"), c.String("from-broadcast"))
	var lineErr *manifest.LineError
	switch {
	case errors.As(err, &lineErr):
		return withExit(ExitDataErr, err)
	case err != nil:
		return configErrorf("%w", err)
	}
	r, err := replayRange(c, archive, store)
	if err != nil {
		return err
	}
	plan, err := archive.PlanRange(r)
	if err != nil {
		return configErrorf("%w", err)
	}
	log.Info("replay: plan", "from_broadcast", archive.Broadcast, "tracks", plan.Tracks, "groups", plan.Groups,
		"archive_gaps", plan.Gaps, "start", time.UnixMilli(plan.Start).UTC(), "end", time.UnixMilli(plan.End).UTC())

	pub, err := moq.DialPublisher(c.Context, c.String("url"), c.String("name"), dial)
	if err != nil {
		return withExit(ExitTempFail, err)
	}
	// The replay stops when the session does.
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	go func() {
		select {
		case <-pub.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	stats, runErr := replay.Run(ctx, store, plan, replay.PublisherSink(pub), replay.Options{
		Speed: speed, Loop: c.Bool("loop"), SkipCorrupt: c.Bool("skip-corrupt"),
		WaitSubscribers: c.Duration("wait-subscribers"), StoreRoot: c.String("output-dir"), Logger: log,
	})
	sessionErr := pub.Err()
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer closeCancel()
	if err := pub.Close(closeCtx); err != nil {
		log.Warn("replay: closing the session", "err", err)
	}
	secs := stats.Elapsed.Seconds()
	log.Info("replay: done", "groups", stats.Groups, "bytes", stats.Bytes, "skipped_corrupt", stats.Skipped,
		"passes", stats.Passes, "elapsed", stats.Elapsed.Round(time.Millisecond),
		"groups_per_s", fmt.Sprintf("%.1f", float64(stats.Groups)/secs),
		"mb_per_s", fmt.Sprintf("%.2f", float64(stats.Bytes)/1e6/secs))
	var corrupt *replay.CorruptError
	switch {
	case sessionErr != nil:
		return withExit(ExitTempFail, sessionErr)
	case errors.As(runErr, &corrupt):
		return withExit(ExitFailure, runErr)
	case errors.Is(runErr, context.Canceled) && c.Context.Err() != nil:
		return nil // SIGINT/SIGTERM
	case errors.Is(runErr, fs.ErrNotExist):
		return withExit(ExitIOErr, runErr)
	case runErr != nil:
		return withExit(ExitFailure, runErr)
	}
	return nil
}

// parseSpeed maps --speed to replay.Options.Speed (0 is max).
func parseSpeed(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1e6 {
		return 0, fmt.Errorf("%q: want a positive factor (1 is real time) or max", s)
	}
	return v, nil
}

// replayRange builds the range from --from/--to or --groups.
func replayRange(c *cli.Context, a *replay.Archive, store cas.Store) (replay.Range, error) {
	var r replay.Range
	if g := c.String("groups"); g != "" {
		if c.String("from") != "" || c.String("to") != "" {
			return r, configErrorf("--groups excludes --from and --to")
		}
		track, span, named := strings.Cut(g, ":")
		if !named {
			track, span = "", g
		}
		first, last, ok := strings.Cut(span, "-")
		var err1, err2 error
		r.First, err1 = strconv.ParseUint(first, 10, 64)
		r.Last, err2 = strconv.ParseUint(last, 10, 64)
		if !ok || err1 != nil || err2 != nil || r.First > r.Last {
			return r, configErrorf("--groups %q: want [TRACK:]FIRST-LAST", g)
		}
		if track == "" {
			track = a.DefaultGroupsTrack(firstCatalog(c.Context, a, store, c.String("output-dir")))
		}
		r.ByGroups, r.Track = true, track
		return r, nil
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &r.From}, {"to", &r.To}} {
		s := c.String(f.name)
		if s == "" {
			continue
		}
		t, err := parseTime(s)
		if err != nil {
			return r, configErrorf("--%s %q: want RFC 3339 or Unix milliseconds", f.name, s)
		}
		*f.dst = t
	}
	return r, nil
}

// firstCatalog reads the archive's first catalog, or nil.
func firstCatalog(ctx context.Context, a *replay.Archive, store cas.Store, root string) *catalog.Catalog {
	for _, e := range a.Tracks[catalog.TrackName] {
		if e.Kind != record.KindGroup {
			continue
		}
		frames, err := replay.ReadGroup(ctx, store, root, e)
		if err != nil || len(frames) == 0 {
			return nil
		}
		cat, err := catalog.Parse(frames[0])
		if err != nil {
			return nil
		}
		return cat
	}
	return nil
}
