package systemd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// Variables of an instance's environment file, read by ec-archive@.service
// through EnvironmentFile= and used in its ExecStart= as ${EC_RELAY_URL} etc.
// (each expands to exactly one argument, uninterpreted). The status file path
// travels here too rather than as %i in ExecStart=, so the escaped instance name
// never goes through systemd's command-line unquoting.
const (
	EnvKey        = "EC_ARCHIVE_KEY"
	EnvRelayURL   = "EC_RELAY_URL"
	EnvBroadcast  = "EC_BROADCAST"
	EnvStatusFile = "EC_STATUS_FILE"
)

// InstanceEnv is what one worker instance needs to know.
type InstanceEnv struct {
	Key        string // see Key
	RelayURL   string // full relay URL, including any ?jwt= token
	Broadcast  string
	StatusFile string // where the worker writes its archive.Status
}

// EnvFilePath is where the environment file of instance lives in dir. Instance
// names never contain "/" and never start with ".", so the path stays in dir.
func EnvFilePath(dir, instance string) string { return filepath.Join(dir, instance+".env") }

// WriteEnvFile writes env atomically (temp file, fsync, rename) as
// EnvFilePath(dir, instance), readable by the owner and group only because the
// relay URL may carry a token.
func WriteEnvFile(dir, instance string, env InstanceEnv) (err error) {
	var b strings.Builder
	b.WriteString("# Written by ec-node archive-auto for " + UnitName(instance) + "; rewritten on every start.\n")
	for _, kv := range [][2]string{{EnvKey, env.Key}, {EnvRelayURL, env.RelayURL}, {EnvBroadcast, env.Broadcast}, {EnvStatusFile, env.StatusFile}} {
		if strings.ContainsFunc(kv[1], unicode.IsControl) {
			return fmt.Errorf("environment value %s=%q contains a control character", kv[0], kv[1])
		}
		b.WriteString(kv[0] + "=" + quoteEnvValue(kv[1]) + "\n")
	}
	f, err := os.CreateTemp(dir, ".tmp-env-")
	if err != nil {
		return fmt.Errorf("environment file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o640); err != nil {
		return fmt.Errorf("environment file: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return fmt.Errorf("environment file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("environment file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("environment file: %w", err)
	}
	if err := os.Rename(f.Name(), EnvFilePath(dir, instance)); err != nil {
		return fmt.Errorf("environment file: %w", err)
	}
	return nil
}

// quoteEnvValue double-quotes v for systemd's environment-file parser, which
// inside double quotes takes the character after a backslash literally when it
// is one of " \ ` $.
func quoteEnvValue(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		if strings.ContainsRune("\"\\`$", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
