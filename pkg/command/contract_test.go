package command

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/internal/clicontract"
)

// TestContract makes every contract run of every binary in process.
func TestContract(t *testing.T) {
	kinds := map[clicontract.Kind]bool{}
	for binary, newApp := range Binaries {
		if name := newApp().Name; name != binary {
			t.Errorf("Binaries[%q] builds app %q", binary, name)
		}
		for _, r := range clicontract.Runs(newApp()) {
			kinds[r.Kind] = true
			for _, env := range r.Unset {
				t.Setenv(env, "") // restored at the end of the test
				os.Unsetenv(env)
			}
			app := newApp() // running an app changes it
			var stdout, stderr bytes.Buffer
			setStreams(app, Streams{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
			code := run(context.Background(), app, append([]string{binary}, r.Args...))
			if err := clicontract.Check(binary, r, code, stdout.String(), stderr.String()); err != nil {
				t.Error(err)
			}
		}
	}
	if clicontract.Help.Status() != ExitOK || clicontract.BadFlag.Status() != ExitUsage || clicontract.MissingRequired.Status() != ExitConfig {
		t.Error("clicontract's statuses differ from exit.go's")
	}
	// Guard the derivation: the binaries together have every kind of run.
	for kind := clicontract.BadFlag; kind <= clicontract.Help; kind++ {
		if !kinds[kind] {
			t.Errorf("no run of kind %d derived from the binaries", kind)
		}
	}
}

// TestStreamsSplit checks that data still reaches stdout beside the help
// going to stderr, and that a required flag may come from its environment variable.
func TestStreamsSplit(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name       string
		binary     string
		env        map[string]string
		args       []string
		wantStdout string // substring
	}{
		{"data", "cas-put", nil, []string{"--root", root}, "  -\n"},
		{"required flag from env", "cas-put", map[string]string{"EC_CAS_ROOT": root}, nil, "  -\n"},
		{"command completion", "ec-node", nil, []string{"--generate-bash-completion"}, "wt-archive\n"},
		{"flag completion", "ec-node", nil, []string{"cas", "put", "--r", "--generate-bash-completion"}, "--root\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			app := Binaries[tt.binary]()
			var stdout, stderr bytes.Buffer
			setStreams(app, Streams{Stdin: strings.NewReader("data"), Stdout: &stdout, Stderr: &stderr})
			args := append([]string{tt.binary}, tt.args...)
			// urfave/cli's completion reads os.Args, not the args it runs on.
			defer func(saved []string) { os.Args = saved }(os.Args)
			os.Args = args
			code := run(context.Background(), app, args)
			if code != ExitOK || !strings.Contains(stdout.String(), tt.wantStdout) || stderr.Len() != 0 {
				t.Errorf("exit %d\nstdout %q (want %q in it)\nstderr %q (want it empty)", code, stdout.String(), tt.wantStdout, stderr.String())
			}
		})
	}
}
