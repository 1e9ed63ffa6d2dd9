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
   75  the directory or relay could not be reached (try again later)
   78  bad relay URL or TLS settings`,
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
	src, interval, err := discoverySource(c, log, c.String("directory"), c.Duration("timeout"), c.String("relay"), c.String("prefix"))
	if err != nil {
		return err
	}
	if !c.IsSet("relay") {
		interval = c.Duration("interval")
	}
	out := streams(c).Stdout
	asJSON := c.Bool("json")
	if c.Bool("watch") {
		return watchDiscovery(ctx, src, interval, log, out, asJSON)
	}
	listCtx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()
	list, err := listOnce(listCtx, src)
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

// discoverySource builds the directory source, or, when relay is set, an
// announcement source running until ctx ends. interval is how often the
// announcement snapshot is worth reading.
func discoverySource(c *cli.Context, log *slog.Logger, directory string, timeout time.Duration, relay, prefix string) (discover.Source, time.Duration, error) {
	if relay == "" {
		return &discover.DirectorySource{URL: directory, Timeout: timeout, Logger: log}, 0, nil
	}
	if err := discover.ValidateRelayURL(relay); err != nil {
		return nil, 0, withExit(ExitConfig, err)
	}
	opts, err := dialOptions(c, log)
	if err != nil {
		return nil, 0, err
	}
	src := &discover.AnnounceSource{
		RelayURL: relay, Prefix: prefix, Logger: log,
		Dial: func(ctx context.Context, url string) (moq.Session, error) { return moq.Dial(ctx, url, opts) },
	}
	go func() {
		if err := src.Run(c.Context); err != nil {
			log.Error("relay announcements", "err", err)
		}
	}()
	return src, time.Second, nil
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
