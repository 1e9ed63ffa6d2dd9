package command

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// Exit statuses shared by every binary (docs/exit-codes.md). They follow
// sysexits(3) where one fits, so that systemd units can tell a configuration error
// (do not restart) from a transient failure (restart with backoff).
const (
	ExitOK       = 0
	ExitFailure  = 1  // a runtime failure, e.g. verification found corruption
	ExitUsage    = 2  // bad flags or arguments
	ExitDataErr  = 65 // malformed input (record stream, manifest line, JSON)
	ExitIOErr    = 74 // the store could not be written (disk full, read-only, ...)
	ExitTempFail = 75 // transient: relay unreachable, session lost; try again later
	ExitConfig   = 78 // the configuration cannot work; restarting will not help
)

// exitError carries an exit status with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

var _ cli.ExitCoder = (*exitError)(nil)

// withExit attaches an exit status to err (nil stays nil).
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageErrorf reports a flag or argument error.
func usageErrorf(format string, args ...any) error {
	return withExit(ExitUsage, fmt.Errorf(format, args...))
}

// ExitCode maps an error returned by a command to the process exit status.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ours *exitError
	if errors.As(err, &ours) {
		return ours.code
	}
	// The one exit error urfave/cli makes itself is for `help <unknown command>`
	// (status 3); an unknown command is a usage error. Commands use withExit,
	// not cli.Exit.
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ExitUsage
	}
	return ExitFailure
}

// configErrorf reports a configuration that cannot work, so that systemd does
// not restart the unit (RestartPreventExitStatus=78).
func configErrorf(format string, args ...any) error {
	return withExit(ExitConfig, fmt.Errorf(format, args...))
}
