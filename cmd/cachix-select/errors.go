package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"

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

// The flag errors of urfave/cli (Go's flag package), which spell every
// flag with one dash and say only "parse error" for a bad value.
var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	invalidValue  = regexp.MustCompile(`^invalid value "(.*)" for flag -+([^:]+): (.*)$`)
)

// onUsageError turns urfave/cli's flag errors into errUsage, with the
// flag spelt as it is typed (--name), a suggestion for a misspelt one and
// what a bad value should look like.
func onUsageError(c *cli.Context, err error, _ bool) error {
	var flags []cli.Flag
	if c != nil && c.Command != nil {
		flags = c.Command.Flags
	}
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		s := "unknown flag " + dashed(m[1])
		if near := nearestFlag(flags, m[1]); near != "" {
			s += " (did you mean " + dashed(near) + "?)"
		}
		return usageErrorf("%s (see --help)", s)
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		why := m[3]
		switch lookupFlag(flags, m[2]).(type) {
		case *cli.DurationFlag:
			why = "want a duration such as 30s, 5m or 1h30m"
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag:
			why = "want a whole number"
		}
		return usageErrorf("invalid value %q for %s: %s (see --help)", m[1], dashed(m[2]), why)
	}
	return usageErrorf("%v (see --help)", err)
}

// dashed spells a flag name as typed: -v, --verbose.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// lookupFlag finds a flag by any of its names (nil if none).
func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// nearestFlag is the flag name closest to a misspelt one, when close
// enough to be what was meant ("dryrun" → "dry-run"); "" otherwise.
func nearestFlag(flags []cli.Flag, typed string) string {
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	return nearest(names, typed)
}

// nearest is the name of names closest to typed, when close enough to be
// what was meant; "" otherwise. One-letter names are never suggested.
func nearest(names []string, typed string) string {
	best, score := "", 0.0
	for _, n := range names {
		if len(n) < 2 {
			continue
		}
		if s := smetrics.JaroWinkler(typed, n, 0.7, 4); s > score {
			best, score = n, s
		}
	}
	if score < 0.85 {
		return ""
	}
	return best
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
