package command

import (
	"bufio"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/export"
)

// ManifestSessions is `ec-node manifest sessions`: the publisher sessions of a
// broadcast's tracks, to choose `export --session`.
func ManifestSessions() *cli.Command {
	return &cli.Command{
		Name:      "sessions",
		Usage:     "list the publisher sessions of a broadcast's tracks",
		ArgsUsage: " ",
		Description: `Prints one tab-separated line per publisher session of each track export would
write (--track, or every rendition of the latest catalog; the lead track first):

   track  session  first-line  first-group  last-group  groups  gaps  first-received  last-received

Sessions are derived from the manifests (docs/manifest.md, "Publisher sessions"); the
session number is what 'ec-node export --session' takes. Reads the catalogs' objects
from --root, re-hashed.

EXIT STATUS
   0   listed
   1   the broadcast could not be read (no catalog, corrupt catalog object)
   2   bad flags or arguments
   65  a manifest line is malformed
   78  --manifest-dir, --root or --broadcast missing`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "manifest-dir", Required: true, Usage: "manifest root directory", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringFlag{Name: "root", Required: true, Usage: "CAS root directory", EnvVars: []string{"EC_CAS_ROOT"}},
			&cli.StringFlag{Name: "broadcast", Required: true, Usage: "broadcast name, as archived"},
			&cli.StringSliceFlag{Name: "track", Usage: "only these tracks (repeatable)"},
		},
		Action: runManifestSessions,
	}
}

func runManifestSessions(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf("sessions takes no arguments, got %q", c.Args().First())
	}
	store, err := openExportStore(c.Context, c.String("root"))
	if err != nil {
		return err
	}
	list, err := export.Sessions(c.Context, export.Options{
		ManifestDir: c.String("manifest-dir"), Store: store, StoreRoot: c.String("root"),
		Broadcast: c.String("broadcast"), Tracks: c.StringSlice("track"),
	})
	if err != nil {
		return exportError(err, false)
	}
	out := bufio.NewWriter(streams(c).Stdout)
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
	for _, s := range list {
		fmt.Fprintf(out, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Track, s.Number, s.Line, s.First, s.Last, s.Groups, s.Gaps,
			stamp(s.Received[0]), stamp(s.Received[1]))
	}
	if err := out.Flush(); err != nil {
		return withExit(ExitIOErr, fmt.Errorf("write: %w", err))
	}
	return nil
}
