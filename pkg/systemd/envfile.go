package systemd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/every-channel/ec-node/internal/safefs"
)

// Variables of an instance's environment file. ec-archive@.service does not
// read it with EnvironmentFile=: that setting treats its path as a glob, in
// which the backslashes of an escaped instance name (%i) are escapes, so the
// file would never match. The worker launcher (`ec-node archive-auto worker
// --env-file`) reads it instead, with ReadEnvFile. The format is the one
// systemd's environment-file parser reads, so an operator can still source it.
const (
	EnvKey        = "EC_ARCHIVE_KEY"
	EnvRelayURL   = "EC_RELAY_URL"
	EnvBroadcast  = "EC_BROADCAST"
	EnvStatusFile = "EC_STATUS_FILE"
)

// maxEnvFileSize bounds what ReadEnvFile reads; real files are under 4 KiB.
const maxEnvFileSize = 64 << 10

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

// WriteEnvFile writes env atomically (temp file, fsync, rename, fsync dir) as
// EnvFilePath(dir, instance), readable by the owner and group only because the
// relay URL may carry a token.
func WriteEnvFile(dir, instance string, env InstanceEnv) error {
	var b strings.Builder
	b.WriteString("# Written by ec-node archive-auto for " + UnitName(instance) + "; rewritten on every start.\n")
	for _, kv := range [][2]string{{EnvKey, env.Key}, {EnvRelayURL, env.RelayURL}, {EnvBroadcast, env.Broadcast}, {EnvStatusFile, env.StatusFile}} {
		if strings.ContainsFunc(kv[1], unicode.IsControl) {
			return fmt.Errorf("environment value %s=%q contains a control character", kv[0], kv[1])
		}
		b.WriteString(kv[0] + "=" + quoteEnvValue(kv[1]) + "\n")
	}
	if err := safefs.WriteFileAtomic(EnvFilePath(dir, instance), []byte(b.String()), 0o640); err != nil {
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

// ReadEnvFile reads an environment file written by WriteEnvFile.
func ReadEnvFile(path string) (InstanceEnv, error) {
	f, err := os.Open(path)
	if err != nil {
		return InstanceEnv{}, fmt.Errorf("environment file: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(f, maxEnvFileSize))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, quoted, ok := strings.Cut(line, "=")
		if !ok {
			return InstanceEnv{}, fmt.Errorf("environment file %s: line %q has no '='", path, line)
		}
		v, err := unquoteEnvValue(quoted)
		if err != nil {
			return InstanceEnv{}, fmt.Errorf("environment file %s: %s: %w", path, name, err)
		}
		vals[name] = v
	}
	if err := sc.Err(); err != nil {
		return InstanceEnv{}, fmt.Errorf("environment file %s: %w", path, err)
	}
	env := InstanceEnv{Key: vals[EnvKey], RelayURL: vals[EnvRelayURL], Broadcast: vals[EnvBroadcast], StatusFile: vals[EnvStatusFile]}
	if env.Key == "" || env.RelayURL == "" || env.Broadcast == "" || env.StatusFile == "" {
		return InstanceEnv{}, fmt.Errorf("environment file %s: want %s, %s, %s and %s", path, EnvKey, EnvRelayURL, EnvBroadcast, EnvStatusFile)
	}
	return env, nil
}

func unquoteEnvValue(q string) (string, error) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", errors.New("value is not double-quoted")
	}
	var b strings.Builder
	body := q[1 : len(q)-1]
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\' && i+1 < len(body):
			i++
			if !strings.ContainsRune("\"\\`$", rune(body[i])) {
				b.WriteByte('\\')
			}
			b.WriteByte(body[i])
		case c == '"' || c == '\\':
			return "", errors.New("unescaped quote or trailing backslash")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
