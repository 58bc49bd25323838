package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib/selection"
)

// selectionFlags say which paths of the closures a push leaves out, and
// which closure each root takes (design.md §5.9). With manifests they add
// to each manifest's push.exclude (the lists) or override it (the rest).
func selectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "exclude-path", Usage: "leave out closure paths whose name (after <hash>-) matches `GLOB`, e.g. '*-doc' (repeatable)"},
		&cli.StringSliceFlag{Name: "exclude-regex", Usage: "leave out closure paths whose whole store path matches `RE` (RE2; repeatable)"},
		&cli.StringFlag{Name: "max-nar-size", Usage: "leave out closure paths whose NAR is larger than `SIZE` (bytes, or with K, M, G, T: 100M)"},
		&cli.StringFlag{Name: "exclude-mode", Usage: "`MODE` for what depends on a left-out path: prune (not pushed either; default) or upstream (pushed: another cache you substitute from has the left-out paths)"},
		&cli.StringSliceFlag{Name: "upstream-key", Usage: "paths signed by key `NAME` are in an upstream cache: not pushed, their dependents are (repeatable; default cache.nixos.org-1; the filter is on by default for file:// and s3:// caches, for Cachix, which filters cache.nixos.org itself, only when this is given)"},
		&cli.BoolFlag{Name: "no-upstream-filter", Usage: "push paths signed by an upstream key too (file:// and s3:// caches skip them by default)"},
		&cli.StringFlag{Name: "closure", Usage: "push every root with its `KIND` of closure: runtime (default) or build (what building it needs: its derivation's realised inputs, plus its outputs)"},
	}
}

// selectionFromFlags is the command line's layer of the selection, and
// the --closure it asks for ("" when not given).
func selectionFromFlags(c *cli.Context) (selection.Rules, selection.Closure, error) {
	r := selection.Rules{Names: c.StringSlice("exclude-path"), Regex: c.StringSlice("exclude-regex"),
		UpstreamKeys: c.StringSlice("upstream-key")}
	if s := c.String("max-nar-size"); s != "" {
		n, err := selection.ParseSize(s)
		if err != nil {
			return r, "", usageErrorf("--max-nar-size: %v", err)
		}
		r.MaxNarSize = n
	}
	if c.IsSet("exclude-mode") {
		m, err := selection.ParseMode(c.String("exclude-mode"))
		if err != nil || c.String("exclude-mode") == "" {
			return r, "", usageErrorf("--exclude-mode must be prune or upstream, not %q", c.String("exclude-mode"))
		}
		r.Mode = m
	}
	if c.Bool("no-upstream-filter") {
		if len(r.UpstreamKeys) > 0 {
			return r, "", usageErrorf("give either --upstream-key or --no-upstream-filter, not both")
		}
		off := false
		r.UpstreamFilter = &off
	}
	for _, k := range r.UpstreamKeys {
		if k == "" || strings.ContainsAny(k, ": \t") {
			return r, "", usageErrorf("--upstream-key %q: give a key name such as cache.nixos.org-1, without the key", k)
		}
	}
	if err := r.Check(); err != nil {
		return r, "", usageErrorf("%v", err)
	}
	var closure selection.Closure
	if c.IsSet("closure") {
		cl, err := selection.ParseClosure(c.String("closure"))
		if err != nil || c.String("closure") == "" {
			return r, "", usageErrorf("--closure must be runtime or build, not %q", c.String("closure"))
		}
		closure = cl
	}
	return r, closure, nil
}
