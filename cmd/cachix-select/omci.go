package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/omci"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// omciFlags are push's flags for `om ci run --results=om.json` output.
func omciFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "om-results", Usage: "push and pin the outputs listed in `FILE`, written by om ci run --results (- for stdin)"},
		&cli.StringSliceFlag{Name: "subflake", Usage: "om ci sub-flake `S` to read (repeatable; default all)"},
		&cli.StringFlag{Name: "prefix", Usage: "pin names are `P`-<system>-<name> (usually the git branch)"},
		&cli.StringSliceFlag{Name: "include", Usage: "only outputs whose name matches `GLOB` (repeatable; with --include, --exclude or --system only the matching byName outputs are pushed, not outPaths and allDeps)"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "leave out outputs whose name matches `GLOB` (repeatable, wins over --include)"},
		&cli.StringSliceFlag{Name: "system", Usage: "only outputs built for `SYSTEM` (repeatable)"},
	}, keepFlags()...)
}

// omciRoots reads the results file and returns the roots to push, each
// with its pin <prefix>-<system>-<name>.
func omciRoots(c *cli.Context, st *store.Store) ([]pushlib.Root, error) {
	keep, err := keepFromFlags(c, "")
	if err != nil {
		return nil, err
	}
	sel := omci.Selection{Subflakes: c.StringSlice("subflake"), Prefix: c.String("prefix"),
		Include: c.StringSlice("include"), Exclude: c.StringSlice("exclude"), Systems: c.StringSlice("system")}
	roots, err := omci.Roots(c.Context, c.String("om-results"), c.App.Reader, sel, keep, st)
	if err == nil && len(roots) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "warning: the om ci results select no outputs (check --subflake, --include, --exclude, --system)")
	}
	return roots, err
}

// checkOmciFlags warns about flags that only --om-results reads when they
// are given without it: a `--prefix main` or `--keep-days 3` that does
// nothing should not pass in silence.
//
// --include and --exclude are errors instead: they read like a selection
// of store paths, and pushing everything when `--exclude '*-doc'` was
// meant to leave something out is worse than stopping.
func checkOmciFlags(c *cli.Context) error {
	if c.String("om-results") != "" {
		return nil
	}
	for _, name := range []string{"exclude", "include", "system"} {
		if c.IsSet(name) {
			by := "by name"
			if name == "system" {
				by = "by system"
			}
			return usageErrorf("--%s selects om ci outputs %s and applies only with --om-results; "+
				"to leave store paths out of a push, use --exclude-path GLOB or --exclude-regex RE", name, by)
		}
	}
	for _, f := range omciFlags() {
		name := f.Names()[0]
		if name != "om-results" && c.IsSet(name) {
			fmt.Fprintf(c.App.ErrWriter, "warning: --%s applies only with --om-results; ignoring it\n", name)
		}
	}
	return nil
}
