package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/omci"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// omciFlags are push's flags for `om ci run --results=om.json` output.
func omciFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "om-results", Usage: "push and pin the outputs listed in `FILE`, written by om ci run --results (- for stdin)"},
		&cli.StringSliceFlag{Name: "subflake", Usage: "om ci sub-flake `S` to read (repeatable; default all)"},
		&cli.StringFlag{Name: "prefix", Usage: "pin names are `P`-<system>-<name> (usually the git branch)"},
		&cli.StringSliceFlag{Name: "include", Usage: "only outputs whose name matches `GLOB` (repeatable)"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "leave out outputs whose name matches `GLOB` (repeatable, wins over --include)"},
		&cli.StringSliceFlag{Name: "system", Usage: "only outputs built for `SYSTEM` (repeatable)"},
	}, keepFlags()...)
}

// omciRoots reads the results file and returns the roots to push, each
// with its pin <prefix>-<system>-<name>.
func omciRoots(c *cli.Context, st *store.Store) ([]pushlib.Root, error) {
	file := c.String("om-results")
	var r io.Reader = c.App.Reader
	source := "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fault.BadInputf("reading om ci results: %w", err)
		}
		defer f.Close()
		r, source = f, file
	}
	res, err := omci.Parse(r, source)
	if err != nil {
		return nil, fault.BadInputf("%w", err)
	}
	keep, err := keepFromFlags(c, "")
	if err != nil {
		return nil, err
	}
	sel := omci.Selection{Subflakes: c.StringSlice("subflake"), Prefix: c.String("prefix"),
		Include: c.StringSlice("include"), Exclude: c.StringSlice("exclude"), Systems: c.StringSlice("system")}
	// With several systems in one file, om ci does not record which system
	// built each output: read it from the outputs' derivations.
	unknown, err := res.UnknownSystemPaths(sel)
	if err != nil {
		return nil, fault.BadInputf("%w", err)
	}
	if len(unknown) > 0 {
		if sel.SystemOf, err = omci.SystemsFromDerivers(c.Context, st, unknown); err != nil {
			return nil, fault.BadInputf("%w", err)
		}
	}
	items, err := res.Select(sel)
	if err != nil {
		return nil, fault.BadInputf("%w", err)
	}
	if len(items) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "warning: the om ci results select no outputs (check --subflake, --include, --exclude, --system)")
	}
	var roots []pushlib.Root
	for _, it := range items {
		roots = append(roots, pushlib.Root{Path: it.StorePath, Name: it.Name,
			Pin: &backend.Pin{Name: it.PinName, Keep: keep}})
	}
	return roots, nil
}
