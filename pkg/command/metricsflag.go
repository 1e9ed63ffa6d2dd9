package command

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/metrics"
	"github.com/every-channel/ec-node/pkg/systemd"
)

// metricsListenFlag serves the archive metrics over HTTP (docs/metrics.md).
var metricsListenFlag = &cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics on http://`ADDR`/metrics (e.g. 127.0.0.1:9464; empty: none)", EnvVars: []string{"EC_METRICS_LISTEN"}}

// pprofListenFlag serves Go's runtime profiles, to find where the archiver's
// CPU goes under load (BENCHMARKS.md); off by default.
var pprofListenFlag = &cli.StringFlag{Name: "pprof-listen", Usage: "serve Go's pprof profiles on http://`ADDR`/debug/pprof/ (a loopback address, e.g. 127.0.0.1:6060; empty: none)", EnvVars: []string{"EC_PPROF_LISTEN"}}

// metricsFileFlag is how a worker of archive-auto --mode systemd hands its
// metrics to the supervisor's --metrics-listen.
var metricsFileFlag = &cli.StringFlag{Name: "metrics-file", Usage: "write the Prometheus metrics to `FILE` with every status report (archive-auto --mode systemd sets it)"}

// wtArchiveMetrics sets up wt-archive's metrics, when asked for: served on
// --metrics-listen, written to --metrics-file with every status report, or both.
func wtArchiveMetrics(c *cli.Context, log *slog.Logger, cfg *archive.Config) error {
	listen, file := c.String(metricsListenFlag.Name), c.String(metricsFileFlag.Name)
	if listen == "" && file == "" {
		return nil
	}
	a := metrics.NewArchive()
	cfg.Observer = a
	if listen != "" {
		reg, err := metrics.NewRegistry(a)
		if err != nil {
			return err
		}
		if err := serveMetrics(c, log, reg); err != nil {
			return err
		}
	}
	if file == "" {
		return nil
	}
	reg, err := metrics.NewWorkerRegistry(a)
	if err != nil {
		return err
	}
	notify, failing := cfg.OnStatus, false
	cfg.OnStatus = func(s archive.Status) {
		if notify != nil {
			notify(s)
		}
		err := metrics.WriteFile(file, reg)
		if err != nil && !failing {
			log.Warn("metrics file not written", "path", file, "err", err)
		}
		failing = err != nil
	}
	return nil
}

// archiveAutoMetrics serves archive-auto's metrics on --metrics-listen and
// returns the Observer of its in-process workers (nil without the flag). In
// --mode systemd the workers are other processes: their metrics files in
// statusDir are served instead.
func archiveAutoMetrics(c *cli.Context, log *slog.Logger, statusDir string) (archive.Observer, error) {
	if c.String(metricsListenFlag.Name) == "" {
		return nil, nil
	}
	if c.String("mode") == systemd.ModeSystemd {
		reg, err := metrics.NewRegistry()
		if err != nil {
			return nil, err
		}
		return nil, serveMetrics(c, log, prometheus.Gatherers{reg, metrics.Files(statusDir)})
	}
	a := metrics.NewArchive()
	reg, err := metrics.NewRegistry(a)
	if err != nil {
		return nil, err
	}
	return a, serveMetrics(c, log, reg)
}

// serveMetrics serves g on --metrics-listen for the command's lifetime. An
// address that cannot be bound is a configuration error, reported before any
// work.
func serveMetrics(c *cli.Context, log *slog.Logger, g prometheus.Gatherer) error {
	ln, err := metrics.Listen(c.String(metricsListenFlag.Name))
	if err != nil {
		return configErrorf("--%s: %w", metricsListenFlag.Name, err)
	}
	log.Info("serving metrics", "addr", ln.Addr().String())
	go func() {
		if err := metrics.Serve(c.Context, ln, g, log); err != nil {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// serveProfiles serves the runtime profiles on --pprof-listen, when set, for
// the command's lifetime. An address that cannot be bound or is not loopback is
// a configuration error, reported before any work.
func serveProfiles(c *cli.Context, log *slog.Logger) error {
	addr := c.String(pprofListenFlag.Name)
	if addr == "" {
		return nil
	}
	ln, err := metrics.ListenProfiles(addr)
	if err != nil {
		return configErrorf("--%s: %w", pprofListenFlag.Name, err)
	}
	log.Info("serving profiles", "addr", ln.Addr().String())
	go func() {
		if err := metrics.ServeProfiles(c.Context, ln); err != nil {
			log.Error("profile server stopped", "err", err)
		}
	}()
	return nil
}
