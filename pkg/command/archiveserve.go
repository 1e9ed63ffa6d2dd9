package command

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/sdnotify"
	"github.com/every-channel/ec-node/pkg/serve"
)

// ArchiveServe is `ec-node archive-serve`: the archive over HTTP (HLS, a JSON
// API and a page that plays it).
func ArchiveServe() *cli.Command {
	return &cli.Command{
		Name:      "archive-serve",
		Usage:     "serve the archive over HTTP: HLS playlists, segments by hash, a JSON API and a player page",
		ArgsUsage: " ",
		Description: `Serves the manifests under --manifest-dir and the objects under --root, read-only:

   /                                  a page listing the broadcasts, playing one (hls.js)
   /api/broadcasts[/NAME]             JSON: broadcasts, tracks, coverage and gaps
   /hls/NAME/index.m3u8[?from=&to=]   HLS multivariant playlist (EVENT; VOD with to)
   /objects/blake3/HASH.m4s           a group's object, verified on first read
   /init/HASH.mp4                     an init segment from a catalog

NAME is the broadcast name path-escaped (live%2Falice); from and to are receive times
(RFC 3339 or Unix ms). A corrupt object is answered 500 and logged with its hash and path.
See docs/serve.md.

EXIT STATUS
   0   stopped by SIGINT/SIGTERM after a clean shutdown
   2   bad flags or arguments
   75  --listen could not be bound (in use; try again later)
   78  --manifest-dir or --root missing or not an archive`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "address to listen on", EnvVars: []string{"EC_LISTEN"}},
			&cli.StringFlag{Name: "manifest-dir", Required: true, Usage: "manifest root directory", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringFlag{Name: "root", Required: true, Usage: "CAS root directory", EnvVars: []string{"EC_CAS_ROOT"}},
			&cli.IntFlag{Name: "verified-cache", Value: serve.DefaultVerified, Usage: "how many verified object ids to remember"},
		},
		Action: runArchiveServe,
	}
}

func runArchiveServe(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.Args().Present() {
		return usageErrorf("archive-serve takes no arguments, got %q", c.Args().First())
	}
	root := c.String("root")
	if fi, err := os.Stat(filepath.Join(root, "objects", "blake3")); err != nil || !fi.IsDir() {
		return configErrorf("--root %s is not a CAS root (no objects/blake3)", root)
	}
	if fi, err := os.Stat(c.String("manifest-dir")); err != nil || !fi.IsDir() {
		return configErrorf("--manifest-dir %s is not a directory", c.String("manifest-dir"))
	}
	store, err := cas.OpenLocal(root)
	if err != nil {
		return configErrorf("--root: %w", err)
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return withExit(ExitTempFail, err)
	}
	srv := &http.Server{
		Handler: serve.New(serve.Options{
			ManifestDir: c.String("manifest-dir"), Store: store, StoreRoot: root,
			Log: log, Verified: c.Int("verified-cache"),
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("archive-serve: listening", "addr", ln.Addr().String())
	if _, err := sdnotify.Ready("serving on " + ln.Addr().String()); err != nil {
		log.Warn("sd_notify", "err", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return withExit(ExitFailure, err)
	case <-c.Context.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return withExit(ExitFailure, err)
	}
	return nil
}
