// Package clicontract derives, from an app's definition, the runs that hold a
// binary to the command-line contract of docs/exit-codes.md: data only on
// stdout; help and usage errors on stderr; a bad flag, flag value or command
// exits 2, a missing required flag 78, --help 0. pkg/command makes the runs in
// process, e2e with the built binaries. Deriving them from the app rather than
// listing them by hand keeps every new command and flag under the contract.
package clicontract

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Kind is what a run gets wrong, or asks for.
type Kind int

const (
	BadFlag         Kind = iota // an undefined flag: exit 2
	BadValue                    // a value the flag's type cannot parse: exit 2
	UnknownCommand              // an undefined subcommand, or help for one: exit 2
	NoCommand                   // a command that only holds subcommands, run without one: exit 2, help on stderr
	MissingRequired             // a required flag left out: exit 78
	Help                        // --help, -h or the help command: exit 0, help on stderr
)

// Status is the exit status docs/exit-codes.md promises for a run of kind k.
func (k Kind) Status() int {
	switch k {
	case Help:
		return 0
	case MissingRequired:
		return 78
	default:
		return 2
	}
}

// Run is one invocation of a binary.
type Run struct {
	Args    []string // after the binary's name
	Kind    Kind
	Missing string   // MissingRequired: the flag left out
	Unset   []string // environment variables to unset: they would set a required flag
}

func (r Run) String() string { return strings.Join(r.Args, " ") }

// RequiredMark ends the usage text of a required flag: pkg/command.NewApp takes
// required flags over from urfave/cli and says so in their help.
const RequiredMark = " (required)"

// UnknownName is the subcommand name no binary defines.
const UnknownName = "no-such-command"

// Runs returns the contract runs of every command and subcommand of app, which
// must be fresh from pkg/command.NewApp (not yet run).
func Runs(app *cli.App) []Run {
	return runs(nil, &cli.Command{Flags: app.Flags, Subcommands: app.Commands})
}

// runs returns the runs of cmd, reached through the subcommands of path.
func runs(path []string, cmd *cli.Command) []Run {
	at := func(kind Kind, args ...string) Run {
		return Run{Args: append(slices.Clone(path), args...), Kind: kind}
	}
	out := []Run{at(BadFlag, "--no-such-flag"), at(Help, "--help"), at(Help, "-h")}
	if len(cmd.Subcommands) > 0 {
		// An action beside subcommands (archive-auto) rejects arguments.
		out = append(out, at(UnknownCommand, UnknownName), at(Help, "help"), at(UnknownCommand, "help", UnknownName))
		// NewApp gives the log flags to every command with an action: one
		// without flags only holds subcommands.
		if len(cmd.Flags) == 0 {
			out = append(out, at(NoCommand))
		}
	}
	var required []cli.Flag
	badValueDone := false
	for _, f := range cmd.Flags {
		if doc, ok := f.(cli.DocGenerationFlag); ok && strings.HasSuffix(doc.GetUsage(), RequiredMark) {
			required = append(required, f)
		}
		if v, ok := badValue(f); ok && !badValueDone {
			out = append(out, at(BadValue, "--"+f.Names()[0]+"="+v))
			badValueDone = true
		}
	}
	for _, missing := range required {
		run := at(MissingRequired)
		run.Missing = missing.Names()[0]
		for _, f := range required {
			run.Unset = append(run.Unset, f.(cli.DocGenerationFlag).GetEnvVars()...)
			if f != missing {
				run.Args = append(run.Args, "--"+f.Names()[0]+"=set")
			}
		}
		out = append(out, run)
	}
	for _, sub := range cmd.Subcommands {
		out = append(out, at(Help, "help", sub.Name))
		out = append(out, runs(append(slices.Clone(path), sub.Name), sub)...)
	}
	return out
}

// badValue returns a value the type of f cannot parse, if it has such a type.
func badValue(f cli.Flag) (string, bool) {
	switch f.(type) {
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag, *cli.Float64Flag:
		return "not-a-number", true
	case *cli.DurationFlag:
		return "not-a-duration", true
	}
	return "", false
}

// Check checks the outcome of run r of binary: its exit status, an empty
// stdout, and on stderr the help or one line saying what was wrong.
func Check(binary string, r Run, status int, stdout, stderr string) error {
	if status != r.Kind.Status() || stdout != "" {
		return fmt.Errorf("%s %s: exit %d, want %d; stdout %q, want it empty", binary, r, status, r.Kind.Status(), stdout)
	}
	switch r.Kind {
	case Help, NoCommand:
		if !strings.Contains(stderr, "USAGE:") {
			return fmt.Errorf("%s %s: no help on stderr:\n%s", binary, r, stderr)
		}
		return nil
	}
	// "<binary>: <what was wrong>; see '<command> --help'"
	want := "--help"
	switch r.Kind {
	case UnknownCommand:
		want = UnknownName
	case MissingRequired:
		want = "--" + r.Missing
	}
	if !strings.HasPrefix(stderr, binary+": ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		return fmt.Errorf("%s %s: stderr is not one line naming %s:\n%s", binary, r, want, stderr)
	}
	return nil
}
