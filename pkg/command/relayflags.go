package command

import (
	"log/slog"
	"regexp"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/discover"
	"github.com/every-channel/ec-node/pkg/moq"
)

// DefaultRelayURL is the public relay the deployed archiver subscribes to.
const DefaultRelayURL = "https://cdn.moq.dev/anon"

// tlsFlags are shared by every command that dials a relay.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-fingerprint", Usage: "pin the relay's certificate by the hex SHA-256 of its DER (moq-relay serves it at http://host:port/certificate.sha256)", EnvVars: []string{"EC_TLS_FINGERPRINT"}},
		&cli.BoolFlag{Name: "tls-disable-verify", Usage: "DANGER: accept any certificate (only for an IP-literal relay override)", EnvVars: []string{"EC_TLS_DISABLE_VERIFY"}},
		&cli.StringSliceFlag{Name: "moq-version", Usage: "offer only these moq-lite versions, most preferred first (default: all supported)"},
		&cli.StringFlag{Name: "protocol", Value: moq.ProtocolAuto, Usage: "protocol family: auto (moq-lite, else IETF moq-transport draft-14), moq-lite or ietf", EnvVars: []string{"EC_PROTOCOL"}},
	}
}

var fingerprintPattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// relayURLFlag returns the relay URL in flag name, checked by
// discover.ValidateRelayURL: the check every relay URL passes, wherever it
// comes from. A bad one is a configuration error.
func relayURLFlag(c *cli.Context, name string) (string, error) {
	raw := c.String(name)
	if err := discover.ValidateRelayURL(raw); err != nil {
		return "", configErrorf("--%s: %w", name, err)
	}
	return raw, nil
}

// dialOptions builds the MoQ dial options from tlsFlags.
func dialOptions(c *cli.Context, log *slog.Logger) (moq.DialOptions, error) {
	fp := c.String("tls-fingerprint")
	if fp != "" && !fingerprintPattern.MatchString(fp) {
		return moq.DialOptions{}, configErrorf("--tls-fingerprint: want 64 hex characters")
	}
	if fp != "" && c.Bool("tls-disable-verify") {
		return moq.DialOptions{}, configErrorf("--tls-fingerprint and --tls-disable-verify exclude each other")
	}
	switch c.String("protocol") {
	case moq.ProtocolAuto, moq.ProtocolLite, moq.ProtocolIETF:
	default:
		return moq.DialOptions{}, configErrorf("--protocol %q: want auto, moq-lite or ietf", c.String("protocol"))
	}
	return moq.DialOptions{
		Protocol: c.String("protocol"),
		TLS:      moq.TLSOptions{Fingerprint: fp, DisableVerify: c.Bool("tls-disable-verify")},
		Versions: c.StringSlice("moq-version"),
		Logger:   log,
	}, nil
}

// workerFlags tune the subscribe side of a worker. wt-archive and moq-sub take
// them directly; archive-auto and systemd-units pass them on to every worker.
func workerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "track", Usage: "archive exactly these tracks (repeatable) instead of following catalog.json", EnvVars: []string{"EC_TRACKS"}},
		&cli.StringSliceFlag{Name: "fallback-track", Value: cli.NewStringSlice(archive.DefaultTracks...), Usage: "tracks archived when a broadcast has no catalog.json (repeatable)"},
		&cli.DurationFlag{Name: "announce-wait", Value: archive.DefaultAnnounceWait, Usage: "how long one session waits for the broadcast to be announced before reconnecting"},
		&cli.DurationFlag{Name: "max-backoff", Value: archive.DefaultMaxBackoff, Usage: "cap of the reconnect delay"},
		&cli.DurationFlag{Name: "stall-timeout", Value: archive.DefaultStallTimeout, Usage: "reconnect when no group arrives on any track for this long"},
		&cli.DurationFlag{Name: "backfill-max-age", Value: archive.DefaultBackfillMaxAge, Usage: "take the groups missed while away from the relay's cache up to this old (0: never, record them as gaps)"},
		&cli.Int64Flag{Name: "max-group-bytes", Value: archive.DefaultMaxGroupBytes, Usage: "largest group archived; larger ones become too-large gaps"},
	}
}

// workerConfig is the archive.Config that workerFlags and tlsFlags describe.
func workerConfig(c *cli.Context, log *slog.Logger) (archive.Config, error) {
	dial, err := dialOptions(c, log)
	if err != nil {
		return archive.Config{}, err
	}
	backfill := c.Duration("backfill-max-age")
	if backfill <= 0 {
		backfill = -1 // archive.Config: negative disables
	}
	return archive.Config{
		BackfillMaxAge: backfill,
		Tracks:         c.StringSlice("track"),
		FallbackTracks: c.StringSlice("fallback-track"),
		Dial:           dial,
		AnnounceWait:   c.Duration("announce-wait"),
		MaxBackoff:     c.Duration("max-backoff"),
		StallTimeout:   c.Duration("stall-timeout"),
		MaxGroupBytes:  c.Int64("max-group-bytes"),
		Logger:         log,
	}, nil
}

// maxAttemptsFlag ends a single worker after that many failed sessions.
var maxAttemptsFlag = &cli.IntFlag{Name: "max-attempts", Usage: "exit 75 after this many consecutive failed sessions (0: retry forever)"}
