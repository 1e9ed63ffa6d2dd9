package command

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/manifest"
)

// MoQSub is `moq-sub`: subscribe to one broadcast and write the record framing
// (docs/record-framing.md) to stdout, for `cas-put --records | manifest-append`.
func MoQSub() *cli.Command {
	return &cli.Command{
		Name:  "sub",
		Usage: "subscribe to a broadcast and write one record per received group to stdout",
		Description: `The first stage of the shell pipeline

   moq-sub --url URL --name NAME | cas-put --root CAS --records | manifest-append --manifest-dir DIR

Same subscriber as ec-node wt-archive (catalog-driven tracks, reconnects, gap records);
logs go to stderr. With --resume-manifest-dir it reads the last archived group of each
track from the manifests, so a restarted pipeline records what it missed meanwhile. With
--session-log-dir (the pipeline's manifest directory) it appends one line per session to
its session log, saying how the session was negotiated: the record stream carries only
groups and gaps, so manifest-append writes no session lines (docs/manifest.md).

EXIT STATUS
   0 stopped by a signal; 75 gave up after --max-attempts; 78 configuration error`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "url", Value: DefaultRelayURL, Usage: "relay URL: https:// (WebTransport) or moqt:// (raw QUIC); the path is the session root, ?jwt= is passed through"},
			&cli.StringFlag{Name: "name", Usage: "broadcast name"},
			&cli.StringFlag{Name: "resume-manifest-dir", Usage: "manifest root to resume gap tracking from"},
			&cli.StringFlag{Name: "session-log-dir", Usage: "manifest root whose session log (.sessions.jsonl) gets one line per session: when, relay, protocol"},
			maxAttemptsFlag,
		}, workerFlags(), tlsFlags()),
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return err
			}
			if c.String("name") == "" {
				return configErrorf("--name is required")
			}
			relay, err := relayURLFlag(c, "url")
			if err != nil {
				return err
			}
			cfg, err := workerConfig(c, log)
			if err != nil {
				return err
			}
			sink := archive.NewRecordSink(streams(c).Stdout)
			if dir := c.String("resume-manifest-dir"); dir != "" {
				sink.Resume = func(broadcast, track string) (manifest.ResumePoint, bool, error) {
					return manifest.ReadResumePoint(dir, broadcast, track)
				}
			}
			if dir := c.String("session-log-dir"); dir != "" {
				if cfg.SessionLog, err = manifest.OpenSessionLog(dir, log); err != nil {
					return configErrorf("--session-log-dir: %w", err)
				}
			}
			cfg.Tool = "moq-sub"
			cfg.RelayURL, cfg.Broadcast, cfg.MaxAttempts = relay, c.String("name"), c.Int("max-attempts")
			err = archive.Follow(c.Context, cfg, sink)
			return archiveExit(err)
		},
	}
}
