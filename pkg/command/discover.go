package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/discover"
	"github.com/every-channel/ec-node/pkg/moq"
)

// Discover is `ec-discover`: list the live broadcasts of the web directory or of
// a relay's announcements.
func Discover() *cli.Command {
	return &cli.Command{
		Name:      "ec-discover",
		Usage:     "list live broadcasts from the web directory or a relay's announcements",
		UsageText: "ec-discover [--directory URL | --relay URL [--prefix P]] [--json] [--watch [--interval D]]",
		Description: `Prints one live broadcast per line: relay URL, a tab, the broadcast name. With --json each
line is {"relay_url":...,"broadcast_name":...}. With --watch it keeps running and prints changes:
"+" or "-", a tab, then the line (--json: an "event" field of "add" or "remove").

The directory (default ` + discover.DefaultDirectoryURL + `) is parsed leniently;
bad entries are skipped with a warning. --relay lists what the relay announces under --prefix,
with no web directory involved.

EXIT STATUS
   0   listed (or --watch stopped by a signal)
   2   bad flags
   65  the directory sent a document that cannot be used (not JSON, repeated keys, no entry list)
   75  the directory or relay could not be reached (try again later)
   78  bad directory or relay URL, or TLS settings`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "directory", Value: discover.DefaultDirectoryURL, Usage: "web directory URL"},
			&cli.StringFlag{Name: "relay", Usage: "list the announcements of this relay instead of the directory"},
			&cli.StringFlag{Name: "prefix", Usage: "with --relay: only broadcasts whose name starts with this"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
			&cli.BoolFlag{Name: "watch", Usage: "keep running and print add/remove events"},
			&cli.DurationFlag{Name: "interval", Value: 30 * time.Second, Usage: "with --watch: how often to poll the directory (relay announcements are checked every second)"},
			&cli.DurationFlag{Name: "timeout", Value: discover.DefaultFetchTimeout, Usage: "give up on one listing after this long"},
		}, tlsFlags()...),
		Action: runDiscover,
	}
}

func runDiscover(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usageErrorf("unexpected arguments: %q", c.Args().Slice())
	}
	if c.IsSet("directory") && c.IsSet("relay") {
		return usageErrorf("--directory and --relay exclude each other")
	}
	if c.IsSet("prefix") && !c.IsSet("relay") {
		return usageErrorf("--prefix needs --relay")
	}
	if c.Duration("interval") <= 0 || c.Duration("timeout") <= 0 {
		return usageErrorf("--interval and --timeout must be positive")
	}
	ctx := c.Context
	src, err := discoverySource(c, log, "directory", "relay", "prefix")
	if err != nil {
		return err
	}
	interval := c.Duration("interval")
	if startSource(ctx, src, log) {
		interval = time.Second // an announcement snapshot is cheap to read
	}
	out := streams(c).Stdout
	asJSON := c.Bool("json")
	if c.Bool("watch") {
		return watchDiscovery(ctx, src, interval, log, out, asJSON)
	}
	listCtx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()
	list, err := listOnce(listCtx, src)
	if errors.Is(err, discover.ErrMalformedDirectory) {
		return withExit(ExitDataErr, err)
	}
	if err != nil {
		return withExit(ExitTempFail, err)
	}
	discover.Sort(list)
	for _, b := range list {
		if err := writeBroadcast(out, asJSON, "", b); err != nil {
			return err
		}
	}
	return nil
}

// discoverySource builds the source the flags describe: the announcements of
// the relay in relayFlag when it is set, otherwise the web directory in
// directoryFlag. A bad URL is a configuration error. Nothing is fetched or
// dialed yet (see startSource), so systemd-units can check the flags too.
func discoverySource(c *cli.Context, log *slog.Logger, directoryFlag, relayFlag, prefixFlag string) (discover.Source, error) {
	if c.String(relayFlag) == "" {
		directory := c.String(directoryFlag)
		if err := discover.ValidateDirectoryURL(directory); err != nil {
			return nil, configErrorf("--%s: %w", directoryFlag, err)
		}
		return &discover.DirectorySource{URL: directory, Timeout: c.Duration("timeout"), Logger: log}, nil
	}
	relay, err := relayURLFlag(c, relayFlag)
	if err != nil {
		return nil, err
	}
	opts, err := dialOptions(c, log)
	if err != nil {
		return nil, err
	}
	return &discover.AnnounceSource{
		RelayURL: relay, Prefix: c.String(prefixFlag), Logger: log,
		Dial: func(ctx context.Context, url string) (moq.Session, error) { return moq.Dial(ctx, url, opts) },
	}, nil
}

// startSource runs an announcement source's sessions in the background until
// ctx ends and reports whether it did; a directory needs nothing started.
func startSource(ctx context.Context, src discover.Source, log *slog.Logger) bool {
	a, ok := src.(*discover.AnnounceSource)
	if !ok {
		return false
	}
	go func() {
		if err := a.Run(ctx); err != nil {
			log.Error("relay announcements", "err", err)
		}
	}()
	return true
}

// listOnce lists src, waiting for an announcement source to settle.
func listOnce(ctx context.Context, src discover.Source) ([]discover.Broadcast, error) {
	for {
		list, err := src.List(ctx)
		if !errors.Is(err, discover.ErrNotReady) {
			return list, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("relay announcements: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchDiscovery prints discovery changes until ctx ends.
func watchDiscovery(ctx context.Context, src discover.Source, interval time.Duration, log *slog.Logger, out io.Writer, asJSON bool) error {
	return discover.Watch(ctx, src, interval, log, func(ev discover.Event) error {
		return writeBroadcast(out, asJSON, ev.Kind, ev.Broadcast)
	})
}

// writeBroadcast prints one listing line, or one event line when kind is set.
// Names are validated to hold no tab or newline, so the text form is unambiguous.
func writeBroadcast(w io.Writer, asJSON bool, kind string, b discover.Broadcast) error {
	var err error
	switch {
	case asJSON && kind != "":
		err = json.NewEncoder(w).Encode(discover.Event{Kind: kind, Broadcast: b})
	case asJSON:
		err = json.NewEncoder(w).Encode(b)
	case kind == discover.Added:
		_, err = fmt.Fprintf(w, "+\t%s\t%s\n", b.RelayURL, b.Name)
	case kind == discover.Removed:
		_, err = fmt.Fprintf(w, "-\t%s\t%s\n", b.RelayURL, b.Name)
	default:
		_, err = fmt.Fprintf(w, "%s\t%s\n", b.RelayURL, b.Name)
	}
	return err
}
