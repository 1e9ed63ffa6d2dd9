package command

import (
	"log/slog"
	"regexp"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/moq"
)

// DefaultRelayURL is the public relay the deployed archiver subscribes to.
const DefaultRelayURL = "https://cdn.moq.dev/anon"

// tlsFlags are shared by every command that dials a relay.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-fingerprint", Usage: "pin the relay's certificate by the hex SHA-256 of its DER (moq-relay serves it at http://host:port/certificate.sha256)", EnvVars: []string{"EC_TLS_FINGERPRINT"}},
		&cli.BoolFlag{Name: "tls-disable-verify", Usage: "DANGER: accept any certificate (only for an IP-literal relay override)", EnvVars: []string{"EC_TLS_DISABLE_VERIFY"}},
		&cli.StringSliceFlag{Name: "moq-version", Usage: "offer only these protocol versions, most preferred first (default: all supported)"},
	}
}

var fingerprintPattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// dialOptions builds the MoQ dial options from tlsFlags.
func dialOptions(c *cli.Context, log *slog.Logger) (moq.DialOptions, error) {
	fp := c.String("tls-fingerprint")
	if fp != "" && !fingerprintPattern.MatchString(fp) {
		return moq.DialOptions{}, configErrorf("--tls-fingerprint: want 64 hex characters")
	}
	if fp != "" && c.Bool("tls-disable-verify") {
		return moq.DialOptions{}, configErrorf("--tls-fingerprint and --tls-disable-verify exclude each other")
	}
	return moq.DialOptions{
		TLS:      moq.TLSOptions{Fingerprint: fp, DisableVerify: c.Bool("tls-disable-verify")},
		Versions: c.StringSlice("moq-version"),
		Logger:   log,
	}, nil
}
