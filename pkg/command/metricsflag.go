package command

import (
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/metrics"
)

// metricsListenFlag serves the archive metrics over HTTP (docs/metrics.md).
var metricsListenFlag = &cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics on http://`ADDR`/metrics (e.g. 127.0.0.1:9464; empty: none)", EnvVars: []string{"EC_METRICS_LISTEN"}}

// serveMetrics starts the --metrics-listen server for the command's lifetime
// and returns the Observer that feeds it (nil without the flag). An address
// that cannot be bound is a configuration error, reported before any work.
func serveMetrics(c *cli.Context, log *slog.Logger) (archive.Observer, error) {
	addr := c.String(metricsListenFlag.Name)
	if addr == "" {
		return nil, nil
	}
	obs := metrics.NewArchive()
	reg, err := metrics.NewRegistry(obs)
	if err != nil {
		return nil, err
	}
	ln, err := metrics.Listen(addr)
	if err != nil {
		return nil, configErrorf("--%s: %w", metricsListenFlag.Name, err)
	}
	log.Info("serving metrics", "addr", ln.Addr().String())
	go func() {
		if err := metrics.Serve(c.Context, ln, reg, log); err != nil {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return obs, nil
}
