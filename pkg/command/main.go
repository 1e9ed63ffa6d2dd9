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

// streams returns the command's streams, taken from the app's Reader/Writer/ErrWriter.
func streams(c *cli.Context) Streams {
	return Streams{Stdin: c.App.Reader, Stdout: c.App.Writer, Stderr: c.App.ErrWriter}
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
func NewApp(name, usage string, cmds ...*cli.Command) *cli.App {
	app := &cli.App{
		Name:                 name,
		Usage:                usage,
		Flags:                append([]cli.Flag{}, logFlags...),
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // Main prints and exits
		Reader:               os.Stdin,
		Writer:               os.Stdout,
		ErrWriter:            os.Stderr,
	}
	if len(cmds) == 1 && cmds[0].Subcommands == nil {
		c := cmds[0]
		app.Usage = c.Usage
		app.UsageText = c.UsageText
		app.Description = c.Description
		app.ArgsUsage = c.ArgsUsage
		app.Flags = append(app.Flags, c.Flags...)
		app.Action = c.Action
		app.Before = c.Before
		return app
	}
	// Log flags belong to each command (`ec-node wt-archive --log-level debug`),
	// not to the app, so that they are written where they are read.
	app.Flags = nil
	withLogFlags(cmds)
	app.Commands = cmds
	return app
}

func withLogFlags(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.Subcommands != nil {
			withLogFlags(c.Subcommands)
		}
		if c.Action != nil {
			c.Flags = append(c.Flags, logFlags...)
		}
	}
}

// Main runs app with a context cancelled by the first SIGINT or SIGTERM (a
// second one kills the process) and exits with the status the error maps to.
func Main(app *cli.App) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx for a clean shutdown; restoring the default
	// disposition then lets a second signal end a stuck process at once.
	context.AfterFunc(ctx, stop)
	err := app.RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintf(app.ErrWriter, "%s: %v\n", app.Name, err)
	}
	os.Exit(ExitCode(err))
}
