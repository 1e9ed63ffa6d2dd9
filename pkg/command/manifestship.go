package command

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/s3cas"
	"github.com/every-channel/ec-node/pkg/segment"
)

// ManifestShip is `ec-node manifest ship`: seal new manifest lines into
// immutable segments in the bucket, once or every --interval.
func ManifestShip() *cli.Command {
	return &cli.Command{
		Name:  "ship",
		Usage: "seal the manifest lines appended since the last segment into the bucket",
		Description: `Every --interval (or once with --once), seals the complete lines appended to each
manifest file under --manifest-dir since its last segment into the next immutable segment in the
--store bucket, each naming its predecessor's hash (docs/manifest.md, "Shipping"). A host lost
between two runs loses at most the lines of one interval (the RPO). Run it beside the archiver;
a second shipper of the same files only finds the segments already there.

EXIT STATUS
   0   shipped (or stopped by a signal)
   2   bad flags
   74  with --once: some file could not be shipped
   78  --store is not an s3:// store or cannot be opened`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "manifest-dir", Required: true, Usage: "manifest root directory", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringFlag{Name: "store", Required: true, Usage: "s3://BUCKET[/PREFIX][?endpoint=URL] (docs/cas-layout.md)", EnvVars: []string{"EC_OUTPUT_DIR"}},
			originFlag,
			&cli.DurationFlag{Name: "interval", Value: time.Minute, Usage: "seal new lines this often"},
			&cli.BoolFlag{Name: "once", Usage: "ship once and exit"},
		},
		Action: runManifestShip,
	}
}

func runManifestShip(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() > 0 || c.Duration("interval") <= 0 {
		return usageErrorf("usage: ship --manifest-dir DIR --store s3://BUCKET/PREFIX [--interval D] [--once]")
	}
	bucket, err := openBucket(c, c.String("store"))
	if err != nil {
		return err
	}
	origin, err := originName(c.String("origin"))
	if err != nil {
		return err
	}
	s := &segment.Shipper{Bucket: bucket, ManifestDir: c.String("manifest-dir"), Origin: origin}
	if c.Bool("once") {
		n, err := s.Ship(c.Context)
		log.Info("manifest segments shipped", "segments", n)
		return withExit(ExitIOErr, err)
	}
	shipEvery(c.Context, log, s, c.Duration("interval"))
	return nil
}

// shipEvery ships now and then every interval until ctx is done. A failed
// ship is logged and retried at the next tick: the lines wait on disk.
func shipEvery(ctx context.Context, log *slog.Logger, s *segment.Shipper, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := s.Ship(ctx)
		if err != nil {
			log.Warn("manifest segments not all shipped; retrying next interval", "segments", n, "err", err)
		} else if n > 0 {
			log.Info("manifest segments shipped", "segments", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ManifestFetch is `ec-node manifest fetch`: rebuild manifest files from the
// bucket's segments, checking each chain.
func ManifestFetch() *cli.Command {
	return &cli.Command{
		Name:  "fetch",
		Usage: "rebuild the manifests from their sealed segments in the bucket",
		Description: `Reads every track's segments from the --store bucket, checks the chain (numbered
from 0 without a hole, each starting where its predecessor ended and naming its hash) and writes
the manifest files as they were at the last seal under --out, in the usual layout, for manifest
check, export and the archiver's resume.

EXIT STATUS
   0   every chain intact, every file written
   1   a chain is broken (its file is not written)
   2   bad flags
   74  --out could not be written or the bucket read`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "store", Required: true, Usage: "s3://BUCKET[/PREFIX][?endpoint=URL]"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "manifest root to write (files there are replaced)"},
			originFlag,
		},
		Action: runManifestFetch,
	}
}

func runManifestFetch(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf("unexpected arguments: %q", c.Args().Slice())
	}
	bucket, err := openBucket(c, c.String("store"))
	if err != nil {
		return err
	}
	origin, err := originName(c.String("origin"))
	if err != nil {
		return err
	}
	tracks, err := segment.Tracks(c.Context, bucket, origin)
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	broken := 0
	for _, bt := range tracks {
		path, err := manifest.FilePath(c.String("out"), bt[0], bt[1])
		if err != nil {
			return withExit(ExitIOErr, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return withExit(ExitIOErr, err)
		}
		f, err := os.CreateTemp(filepath.Dir(path), ".fetch-")
		if err != nil {
			return withExit(ExitIOErr, err)
		}
		n, err := segment.Fetch(c.Context, bucket, origin, bt[0], bt[1], f)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		if err != nil {
			os.Remove(f.Name())
			fmt.Fprintf(streams(c).Stderr, "%s/%s: %v\n", bt[0], bt[1], err)
			broken++
			continue
		}
		fmt.Fprintf(streams(c).Stdout, "%s\t%d segments\n", path, n)
	}
	if broken > 0 {
		return withExit(ExitFailure, fmt.Errorf("%d of %d tracks not rebuilt", broken, len(tracks)))
	}
	return nil
}

var originFlag = &cli.StringFlag{Name: "origin", Usage: "the host whose manifests these are, in the segment keys (default: this host's name)"}

// originName is the --origin of manifest segments: the flag, else the hostname.
func originName(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", configErrorf("--origin not given and no hostname: %w", err)
	}
	return h, nil
}

// openBucket opens the --store of the manifest segment commands: only a
// bucket has segments.
func openBucket(c *cli.Context, spec string) (*s3cas.Store, error) {
	store, err := openStore(c.Context, spec)
	if err != nil {
		return nil, withExit(ExitConfig, err)
	}
	bucket, ok := store.(*s3cas.Store)
	if !ok {
		return nil, configErrorf("--store %s: manifest segments need an s3:// store", spec)
	}
	return bucket, nil
}
