// Package command holds the command-line front ends of the toolkit, one file per
// command. Each command is built by a constructor returning a *cli.Command, so that
// the small binaries (cmd/cas-put, ...) and the all-in-one cmd/ec-node register the
// very same code.
package command

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Streams are the standard streams a command uses; tests swap in buffers.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// appWriter is the App.Writer of every app. urfave/cli writes help, usage errors
// and the like to App.Writer, which therefore goes to stderr; the command's data
// goes to stdout through streams, so that a pipeline never reads help as data
// (docs/exit-codes.md).
type appWriter struct {
	text io.Writer // help and usage: stderr
	data io.Writer // the command's output: stdout
}

func (w *appWriter) Write(p []byte) (int, error) { return w.text.Write(p) }

// setStreams points app at s.
func setStreams(app *cli.App, s Streams) {
	app.Reader, app.Writer, app.ErrWriter = s.Stdin, &appWriter{text: s.Stderr, data: s.Stdout}, s.Stderr
}

// streams returns the command's streams, taken from the app's Reader/Writer/ErrWriter.
// A plain App.Writer (a test's buffer) takes both data and help.
func streams(c *cli.Context) Streams {
	out := c.App.Writer
	if w, ok := out.(*appWriter); ok {
		out = w.data
	}
	return Streams{Stdin: c.App.Reader, Stdout: out, Stderr: c.App.ErrWriter}
}

// logFlags are accepted by every binary.
var logFlags = []cli.Flag{
	&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"EC_LOG_LEVEL"}},
	&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"EC_LOG_FORMAT"}},
}

// logger builds the slog logger from the log flags; logs go to stderr so that
// stdout stays a clean data stream for pipelines.
func logger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageErrorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.String("log-format")) {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	default:
		return nil, usageErrorf("--log-format: want text or json, got %q", c.String("log-format"))
	}
}

// NewApp builds an app around commands. A single command becomes the app's own
// action (a small binary such as cas-put); several become subcommands (ec-node).
//
// Every app keeps the command-line contract of docs/exit-codes.md: data only on
// stdout; help and usage errors on stderr; a bad flag, argument or command exits
// 2 with a one-line error naming the --help to read, a missing required flag 78.
func NewApp(name, usage string, cmds ...*cli.Command) *cli.App {
	app := &cli.App{
		Name:                 name,
		Usage:                usage,
		Flags:                append([]cli.Flag{}, logFlags...),
		EnableBashCompletion: true,
		BashComplete:         completeOnStdout(cli.DefaultAppComplete),
		OnUsageError:         onUsageError,
		ExitErrHandler:       func(*cli.Context, error) {}, // Main prints and exits
	}
	setStreams(app, Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if len(cmds) == 1 && cmds[0].Subcommands == nil {
		c := cmds[0]
		enforceContract(c)
		app.Usage = c.Usage
		app.UsageText = c.UsageText
		app.Description = c.Description
		app.ArgsUsage = c.ArgsUsage
		app.Flags = append(app.Flags, c.Flags...)
		app.Action = c.Action
		app.Before = c.Before
		app.HideHelpCommand = true // `cas-put help` stores a file named help
		return app
	}
	// Log flags belong to each command (`ec-node wt-archive --log-level debug`),
	// not to the app, so that they are written where they are read.
	app.Flags = nil
	for _, c := range cmds {
		withLogFlags(c)
		enforceContract(c)
	}
	app.Commands = cmds
	app.Action = runGroup(cli.ShowAppHelp)
	return app
}

func withLogFlags(c *cli.Command) {
	for _, sub := range c.Subcommands {
		withLogFlags(sub)
	}
	if c.Action != nil {
		c.Flags = append(c.Flags, logFlags...)
	}
}

// enforceContract makes c and its subcommands keep the command-line contract
// (NewApp) where urfave/cli's defaults break it.
func enforceContract(c *cli.Command) {
	c.OnUsageError = onUsageError
	c.BashComplete = completeOnStdout(cli.DefaultCompleteWithFlags(c))
	if required := takeRequired(c.Flags); len(required) > 0 {
		c.Before = requireFlags(required, c.Before)
	}
	if c.Action != nil {
		c.Action = pointToHelp(c.Action)
	}
	if c.Subcommands == nil {
		c.HideHelpCommand = true // `help` would shadow a positional argument
		return
	}
	for _, sub := range c.Subcommands {
		enforceContract(sub)
	}
	if c.Action == nil {
		c.Action = runGroup(cli.ShowSubcommandHelp)
	}
}

// onUsageError reports a flag that does not parse: without it urfave/cli prints
// the whole help to App.Writer and returns an error without a status.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return seeHelp(c, withExit(ExitUsage, err))
}

// pointToHelp makes the usage errors of action name the --help to read.
func pointToHelp(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		err := action(c)
		if ExitCode(err) == ExitUsage {
			return seeHelp(c, err)
		}
		return err
	}
}

// seeHelp appends to err where to read about the command, keeping its status.
func seeHelp(c *cli.Context, err error) error {
	return withExit(ExitCode(err), fmt.Errorf("%w; see '%s --help'", err, c.Command.HelpName))
}

// runGroup is the action of a command that only holds subcommands (ec-node,
// ec-node cas): an unknown subcommand is a usage error, and none at all shows
// the list of subcommands, on stderr, with the usage status.
func runGroup(showHelp func(*cli.Context) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.Args().Present() {
			return seeHelp(c, usageErrorf("unknown command %q", c.Args().First()))
		}
		if err := showHelp(c); err != nil {
			return err
		}
		return usageErrorf("no command given")
	}
}

// takeRequired takes the required flags of flags out of urfave/cli's hands,
// returning their names: urfave/cli checks them before any hook runs, prints
// the whole help on a miss and returns an unexported error type without a
// status. requireFlags checks them instead. Their help says "(required)".
func takeRequired(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		rf, ok := f.(cli.RequiredFlag)
		if !ok || !rf.IsRequired() {
			continue
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Required = false
			f.Usage += " (required)"
		default:
			panic(fmt.Sprintf("command: required %T flag --%s: only string flags can be required", f, f.Names()[0]))
		}
		names = append(names, f.Names()[0])
	}
	return names
}

// requireFlags is a Before hook failing with ExitConfig when one of the flags
// named is neither given nor set through its environment variable; then it runs
// next. It runs after --help is handled, so help needs no required flag.
func requireFlags(names []string, next cli.BeforeFunc) cli.BeforeFunc {
	return func(c *cli.Context) error {
		var missing []string
		for _, name := range names {
			if !c.IsSet(name) {
				missing = append(missing, "--"+name)
			}
		}
		if len(missing) > 0 {
			noun := "flag"
			if len(missing) > 1 {
				noun = "flags"
			}
			return seeHelp(c, configErrorf("missing required %s %s", noun, strings.Join(missing, ", ")))
		}
		if next == nil {
			return nil
		}
		return next(c)
	}
}

// completeOnStdout runs a shell-completion function with App.Writer set to
// stdout: the completions are the shell's data.
func completeOnStdout(complete cli.BashCompleteFunc) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		if w, ok := c.App.Writer.(*appWriter); ok {
			c.App.Writer = w.data
			defer func() { c.App.Writer = w }()
		}
		complete(c)
	}
}

// Main runs app with a context cancelled by the first SIGINT or SIGTERM (a
// second one kills the process) and exits with the status the error maps to.
func Main(app *cli.App) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx for a clean shutdown; restoring the default
	// disposition then lets a second signal end a stuck process at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, app, os.Args)
	stop()
	os.Exit(code)
}

// run runs app on args, prints its error as "<app>: <error>" on stderr and
// returns the exit status.
func run(ctx context.Context, app *cli.App, args []string) int {
	err := app.RunContext(ctx, args)
	if err != nil {
		fmt.Fprintf(app.ErrWriter, "%s: %v\n", app.Name, err)
	}
	return ExitCode(err)
}
