//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/clicontract"
	"github.com/every-channel/ec-node/pkg/command"
)

// TestBinaryContract runs every built binary under cmd/ with the contract runs
// derived from its app (bad flag, bad value, unknown command, missing required
// flag, help): stdout stays empty and the status is the documented one.
func TestBinaryContract(t *testing.T) {
	entries, err := os.ReadDir("../cmd")
	if err != nil {
		t.Fatal(err)
	}
	var binaries []string
	for _, e := range entries {
		if e.IsDir() {
			binaries = append(binaries, e.Name())
		}
	}
	for name := range command.Binaries {
		if !slices.Contains(binaries, name) {
			t.Errorf("command.Binaries has %q, cmd/ does not", name)
		}
	}
	for _, binary := range binaries {
		newApp, ok := command.Binaries[binary]
		if !ok {
			t.Errorf("cmd/%s is not in command.Binaries, so not under the contract", binary)
			continue
		}
		t.Run(binary, func(t *testing.T) {
			path := buildBinary(t, binary)
			for _, r := range clicontract.Runs(newApp()) {
				status, stdout, stderr := runContract(t, path, r)
				if err := clicontract.Check(binary, r, status, stdout, stderr); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// runContract runs the binary at path with r's arguments, an empty stdin and
// r's environment variables unset.
func runContract(t *testing.T, path string, r clicontract.Run) (status int, stdout, stderr string) {
	t.Helper()
	// Not a timing assertion: a run that reaches a command's real work would
	// otherwise hang the suite.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, r.Args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(r.Unset, name)
	})
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		status = exit.ExitCode()
	default:
		t.Fatalf("%s %s: %v", path, r, err)
	}
	return status, out.String(), errOut.String()
}
