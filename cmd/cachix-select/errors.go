package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/filecache"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// errUsage marks a command line that does not make sense.
var errUsage = errors.New("bad usage")

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

// badInputErrors are the sentinels that mean "the user gave us something wrong".
var badInputErrors = []error{
	errUsage, pushlib.ErrBadInput, manifest.ErrInvalid, store.ErrNotInStore,
	filecache.ErrBadLocation, signing.ErrBadKey,
}

// exitCode maps an error to the documented exit codes, in one place.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	for _, s := range badInputErrors {
		if errors.Is(err, s) {
			return exitBadInput
		}
	}
	return exitFailed
}
