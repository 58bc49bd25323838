package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/pins"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// keepFlags are cachix pin's retention flags.
func keepFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "keep-revisions", Usage: "keep the last `N` revisions of the pin"},
		&cli.IntFlag{Name: "keep-days", Usage: "keep the pin's revisions of the last `N` days"},
		&cli.BoolFlag{Name: "keep-forever", Usage: "keep every revision forever"},
	}
}

// keepFromFlags reads the mutually exclusive keep flags prefix+keep-*
// (nil: the cache's default).
func keepFromFlags(c *cli.Context, prefix string) (*backend.Keep, error) {
	flag := func(k backend.KeepKind) string { return prefix + "keep-" + string(k) }
	var revisions, days *int
	if n := c.Int(flag(backend.KeepRevisions)); c.IsSet(flag(backend.KeepRevisions)) {
		revisions = &n
	}
	if n := c.Int(flag(backend.KeepDays)); c.IsSet(flag(backend.KeepDays)) {
		days = &n
	}
	keep, err := backend.ChooseKeep(revisions, days, c.Bool(flag(backend.KeepForever)),
		func(k backend.KeepKind) string { return "--" + flag(k) })
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return keep, nil
}

// cachixFlags select a Cachix cache for the pin commands.
func cachixFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "cache", Usage: "the Cachix cache `NAME`"},
		&cli.StringFlag{Name: "to", Usage: "a plain binary cache `URL` (refused: pins are a Cachix feature)"},
		hostFlag(),
		&cli.StringFlag{Name: "auth-token-file", Usage: "read the Cachix auth token from `FILE` (default $CACHIX_AUTH_TOKEN, cachix.dhall)"},
		configFlag(),
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "debug logs"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print errors only (no line when a host is being retried)"},
	}, networkFlags()...)
}

// openCache builds the backend of the Cachix cache named by the flags (or
// by name), for the pin commands.
func openCache(c *cli.Context, name string) (backend.Backend, error) {
	if c.String("to") != "" {
		return nil, usageErrorf("pins are a Cachix feature; %s is a plain binary cache and has none", c.String("to"))
	}
	if name == "" {
		name = c.String("cache")
	}
	if name == "" {
		return nil, usageErrorf("give the Cachix cache with --cache NAME")
	}
	t, err := target.Resolve(resolveOptions(c), target.Layer{Origin: target.CommandLine, Cache: name, Host: c.String("host"),
		AuthTokenFile: c.String("auth-token-file")})
	if err != nil {
		return nil, err
	}
	for _, w := range t.Warnings {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
		}
	}
	return pushlib.NewRegistry().New(t, backendOptions(c))
}

// pinLister is the cache named by the one argument or --cache, which
// must list its pins.
func pinLister(c *cli.Context) (backend.PinLister, error) {
	args := c.Args().Slice()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	name := ""
	switch {
	case len(args) > 1:
		return nil, usageErrorf("give one cache (CACHE or --cache NAME), not %d arguments", len(args))
	case len(args) == 1 && c.String("cache") != "":
		return nil, usageErrorf("give the cache once: CACHE or --cache NAME")
	case len(args) == 1:
		name = args[0]
	}
	b, err := openCache(c, name)
	if err != nil {
		return nil, err
	}
	l, ok := b.(backend.PinLister)
	if !ok {
		return nil, usageErrorf("%s cannot list pins", b)
	}
	return l, nil
}

// pinCommand is `cachix-select pin`, cachix pin's equivalent.
func pinCommand() *cli.Command {
	flags := append(cachixFlags(), keepFlags()...)
	flags = append(flags, &cli.StringSliceFlag{Name: "artifact", Aliases: []string{"a"}, Usage: "a `PATH` inside the store path that Cachix offers for download (repeatable)"})
	return &cli.Command{
		Name:      "pin",
		Usage:     "pin a store path already in a Cachix cache under a name",
		ArgsUsage: "CACHE PIN-NAME STORE-PATH | --cache NAME PIN-NAME STORE-PATH",
		Description: "Creates a new revision of the pin PIN-NAME pointing at STORE-PATH (./result and paths inside\n" +
			"store paths are resolved), as `cachix pin CACHE PIN-NAME STORE-PATH` does. The path must already\n" +
			"be in the cache: push it first. Without a keep flag every revision is kept (the cache's default).\n" +
			"Flags may come after the arguments.\n\n" + pinExitCodesHelp,
		Flags:        flags,
		OnUsageError: onUsageError,
		Action:       pinAction,
	}
}

// pinAction creates one pin (pins.Create checks the path first).
func pinAction(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	cacheName := c.String("cache")
	switch {
	case len(args) == 3 && cacheName != "":
		return usageErrorf("give the cache once: pin CACHE PIN-NAME STORE-PATH, or pin --cache CACHE PIN-NAME STORE-PATH")
	case len(args) == 3:
		cacheName, args = args[0], args[1:]
	case len(args) == 2 && cacheName == "" && !strings.Contains(args[1], "/"):
		return usageErrorf("give CACHE, PIN-NAME and STORE-PATH (pin CACHE PIN-NAME STORE-PATH): got %s and %s, so the store path is missing (or give the cache with --cache NAME)",
			store.Quote(args[0]), store.Quote(args[1]))
	case len(args) != 2:
		return usageErrorf("give CACHE, PIN-NAME and STORE-PATH (pin CACHE PIN-NAME STORE-PATH, or pin --cache CACHE PIN-NAME STORE-PATH); got %d arguments", len(args))
	}
	// The order is cachix's, CACHE PIN-NAME STORE-PATH: a path anywhere
	// but last is the likely mistake, said before the cache is asked.
	for i, a := range append([]string{cacheName}, args[0]) {
		if strings.Contains(a, "/") {
			what := []string{"the cache", "the pin name"}[i]
			return usageErrorf("pin takes CACHE PIN-NAME STORE-PATH, the store path last; %s is given as %s", store.Quote(a), what)
		}
	}
	if err := pins.CheckName(args[0]); err != nil {
		return usageErrorf("pin name %s %v", store.Quote(args[0]), err)
	}
	keep, err := keepFromFlags(c, "")
	if err != nil {
		return err
	}
	b, err := openCache(c, cacheName)
	if err != nil {
		return err
	}
	path, err := pins.Create(requestContext(c), b, store.New(), pins.Request{Name: args[0], Path: args[1],
		Artifacts: c.StringSlice("artifact"), Keep: keep})
	if err != nil {
		return err
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "Pinned %s as %q in %s\n", path, args[0], b)
	}
	return nil
}

// pinsCommand is `cachix-select pins list|export`.
func pinsCommand() *cli.Command {
	filterFlags := []cli.Flag{
		&cli.StringSliceFlag{Name: "include", Usage: "only pins whose name matches `GLOB` (repeatable)"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "leave out pins whose name matches `GLOB` (repeatable, wins over --include)"},
		&cli.StringSliceFlag{Name: "system", Usage: "only pins for `SYSTEM` (and system-less pins; repeatable)"},
	}
	return &cli.Command{
		Name:  "pins",
		Usage: "list a Cachix cache's pins, or export them as an evaluation-free Nix expression",
		Subcommands: []*cli.Command{
			{
				Name:         "list",
				Usage:        "show the pins of a cache (works without a token for public caches)",
				ArgsUsage:    "CACHE | --cache NAME",
				Description:  pinsListExitCodesHelp,
				Flags:        append(cachixFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				OnUsageError: onUsageError,
				Action:       pinsListAction,
			},
			{
				Name:      "export",
				Usage:     "write store.nix, pins.nix, default.nix and flake.nix mapping pin names to store paths",
				ArgsUsage: "CACHE --output DIR|FILE.tar.gz | --cache NAME --output …",
				Description: "The output (a directory, or a .tar.gz to publish) lets `nix build -f URL NAME`,\n" +
					"`nix eval -f URL NAME` or `nix run URL#NAME` substitute a pinned path without evaluating the\n" +
					"expression that built it; every pin is selected by its own name. Dots in pin names become\n" +
					"nested attributes (a number between dots is a list index, as Nix reads release-1.0). A pin\n" +
					"NAME.SYSTEM is also offered as NAME, and PREFIX-SYSTEM-NAME (what push --om-results makes)\n" +
					"as PREFIX-NAME, with the current system picked. store.nix names the binary cache flake.nix\n" +
					"fetches from (--cache-url, else the cache's own, as its API says). The output is deterministic.\n\n" +
					pinsExitCodesHelp,
				Flags: append(append(cachixFlags(), filterFlags...),
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `DIR`, or to a tarball when it ends in .tar.gz"},
					&cli.StringFlag{Name: "cache-url", Usage: "binary cache `URL` for fetchClosure in flake.nix (default: the cache's own)"}),
				OnUsageError: onUsageError,
				Action:       pinsExportAction,
			},
		},
	}
}

// pinsListAction prints the pins as a table or JSON.
func pinsListAction(c *cli.Context) error {
	l, err := pinLister(c)
	if err != nil {
		return err
	}
	list, err := l.ListPins(requestContext(c))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		type rev struct {
			StorePath string   `json:"storePath"`
			Artifacts []string `json:"artifacts"`
			CreatedOn string   `json:"createdOn"`
		}
		type pin struct {
			Name         string        `json:"name"`
			CreatedOn    string        `json:"createdOn"`
			Keep         *backend.Keep `json:"keep"`
			LastRevision *rev          `json:"lastRevision"`
		}
		out := []pin{}
		for _, p := range list {
			q := pin{Name: p.Name, CreatedOn: p.CreatedOn, Keep: p.Keep}
			if r := p.LastRevision; r != nil {
				q.LastRevision = &rev{StorePath: r.StorePath, Artifacts: append([]string{}, r.Artifacts...), CreatedOn: r.CreatedOn}
			}
			out = append(out, q)
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(c.App.Writer, string(b))
		return nil
	}
	if len(list) == 0 {
		fmt.Fprintf(c.App.Writer, "%s has no pins.\n", l)
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTORE PATH\tKEEP\tLAST REVISION")
	for _, p := range list {
		path, when := "-", "-"
		if r := p.LastRevision; r != nil {
			path, when = r.StorePath, revisionTime(r.CreatedOn)
		}
		keep := "(default)"
		if p.Keep != nil {
			keep = p.Keep.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, path, keep, when)
	}
	return tw.Flush()
}

// revisionTime shortens the server's timestamp when it parses.
func revisionTime(s string) string {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999Z"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Local().Format("2006-01-02 15:04")
		}
	}
	return s
}

// pinsExportAction writes the pins as Nix files or a tarball.
func pinsExportAction(c *cli.Context) error {
	out := c.String("output")
	if out == "" {
		return usageErrorf("give --output DIR or --output FILE.tar.gz")
	}
	if err := checkExportOutput(out); err != nil {
		return err
	}
	l, err := pinLister(c)
	if err != nil {
		return err
	}
	exp, err := pins.ExportCache(requestContext(c), l, pins.ExportOptions{CacheURL: c.String("cache-url"),
		Include: c.StringSlice("include"), Exclude: c.StringSlice("exclude"), Systems: c.StringSlice("system")})
	if err != nil {
		return err
	}
	quiet := c.Bool("quiet")
	for _, w := range exp.Warnings {
		if !quiet {
			fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
		}
	}
	if err := pins.WriteOutput(out, exp.Files); err != nil {
		return err
	}
	if quiet {
		return nil
	}
	line := fmt.Sprintf("Exported %d %s of %s to %s", exp.Exported, plural(exp.Exported, "pin", "pins"), l, out)
	if left := exp.Listed - exp.Exported - exp.Unexportable; left > 0 {
		line += fmt.Sprintf(" (%d of its %d pins left out by --include, --exclude or --system)", left, exp.Listed)
	}
	if exp.Unexportable > 0 {
		line += fmt.Sprintf(" (%d left out that an export cannot hold, named above)", exp.Unexportable)
	}
	fmt.Fprintln(c.App.ErrWriter, line)
	return nil
}

// checkExportOutput refuses, before anything is fetched, an --output that
// can only fail or surprise: an existing file that is not a directory
// (only a tarball's name may be a file), or an archive name other than
// .tar.gz/.tgz, which would be made a directory.
func checkExportOutput(out string) error {
	tarball := strings.HasSuffix(out, ".tar.gz") || strings.HasSuffix(out, ".tgz")
	if fi, err := os.Stat(out); err == nil && !tarball && !fi.IsDir() {
		return usageErrorf("--output %s exists and is not a directory: give a directory, or a tarball's name ending in .tar.gz or .tgz", out)
	}
	for _, ext := range []string{".zip", ".tar", ".tar.xz", ".tar.bz2", ".tar.zst", ".txz", ".tbz2", ".7z"} {
		if !tarball && strings.HasSuffix(out, ext) {
			return usageErrorf("--output %s: only a gzip tarball is written (a name ending in .tar.gz or .tgz); any other name is a directory", out)
		}
	}
	return nil
}
