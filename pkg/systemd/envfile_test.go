package systemd

import (
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
	got, err := ReadEnvFile(path)
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
		if env, err := ReadEnvFile(path); err == nil {
			t.Errorf("%s: ReadEnvFile = %+v, want an error", name, env)
		}
	}
}
