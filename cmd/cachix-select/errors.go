package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib/fault"
)

// errUsage marks a command line that does not make sense: bad input.
var errUsage = fault.BadInput("bad usage")

// usageError is an errUsage whose message is just its text.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return errUsage }

// usageErrorf builds an errUsage error.
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// onUsageError turns urfave/cli's flag errors into errUsage.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageErrorf("%v (see --help)", err)
}

// exitCode maps an error to the documented exit codes, in one place: the
// library classifies its errors where it makes them (package fault), and a
// signal decides over everything (see run).
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, fault.ErrBadInput):
		return exitBadInput
	default:
		return exitFailed
	}
}
