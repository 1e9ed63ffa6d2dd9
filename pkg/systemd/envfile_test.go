package systemd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	env := InstanceEnv{
		Key:        `r.example/a|we"ird $name\with` + "`ticks`",
		RelayURL:   "https://r.example/a?jwt=tok$en",
		Broadcast:  `we"ird $name\with` + "`ticks` ünï",
		StatusFile: "/run/ec-archive/status/x.json",
	}
	inst := Instance(env.Key)
	if err := WriteEnvFile(dir, inst, env); err != nil {
		t.Fatal(err)
	}
	path := EnvFilePath(dir, inst)
	if filepath.Dir(path) != dir {
		t.Fatalf("env file %q escapes %q", path, dir)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("env file mode %v, want 0640 (the URL may carry a token)", fi.Mode().Perm())
	}
	got, err := readEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != env {
		t.Errorf("ReadEnvFile = %+v, want %+v", got, env)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left temp files behind: %v", entries)
	}
}

func TestEnvFileRejectsControlCharacters(t *testing.T) {
	env := InstanceEnv{Key: "k", RelayURL: "https://r", Broadcast: "a\nEC_RELAY_URL=https://evil", StatusFile: "/s"}
	if err := WriteEnvFile(t.TempDir(), "x", env); err == nil {
		t.Fatal("WriteEnvFile accepted a newline, which would inject a variable")
	}
}

func TestReadEnvFileRejectsMalformed(t *testing.T) {
	for name, text := range map[string]string{
		"missing var": "EC_ARCHIVE_KEY=\"k\"\n",
		"unquoted":    "EC_ARCHIVE_KEY=k\nEC_RELAY_URL=\"u\"\nEC_BROADCAST=\"b\"\nEC_STATUS_FILE=\"s\"\n",
		"stray quote": "EC_ARCHIVE_KEY=\"k\"x\"\n",
		"no equals":   "EC_ARCHIVE_KEY\n",
		"huge":        "EC_ARCHIVE_KEY=\"" + strings.Repeat("a", 1<<20) + "\"\n",
	} {
		path := filepath.Join(t.TempDir(), "x.env")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if env, err := readEnvFile(path); err == nil {
			t.Errorf("%s: ReadEnvFile = %+v, want an error", name, env)
		}
	}
}

// readEnvFile parses what WriteEnvFile wrote, the way systemd's
// environment-file parser reads double-quoted values.
func readEnvFile(path string) (InstanceEnv, error) {
	f, err := os.Open(path)
	if err != nil {
		return InstanceEnv{}, fmt.Errorf("environment file: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
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
