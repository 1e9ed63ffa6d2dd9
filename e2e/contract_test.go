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

// TestBadFlagInPipeline is the case that broke: the help cas-put printed for a
// bad flag reached manifest-append as data ("line 1: malformed").
func TestBadFlagInPipeline(t *testing.T) {
	root, manifests := t.TempDir(), t.TempDir()
	put := exec.Command(buildBinary(t, "cas-put"), "--root", root, "--records", "--no-such-flag")
	appendCmd := exec.Command(buildBinary(t, "manifest-append"), "--manifest-dir", manifests)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var putErr, appendErr bytes.Buffer
	put.Stdout, put.Stderr = w, &putErr
	appendCmd.Stdin, appendCmd.Stderr = r, &appendErr
	if err := appendCmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	putRunErr := put.Run()
	w.Close()
	appendRunErr := appendCmd.Wait()

	if put.ProcessState.ExitCode() != command.ExitUsage {
		t.Errorf("cas-put: %v, want exit %d\n%s", putRunErr, command.ExitUsage, putErr.String())
	}
	if appendRunErr != nil {
		t.Errorf("manifest-append read something: %v\n%s", appendRunErr, appendErr.String())
	}
	if entries, _ := os.ReadDir(manifests); len(entries) != 0 {
		t.Errorf("manifest-append wrote %d entries into an empty manifest root", len(entries))
	}
}
