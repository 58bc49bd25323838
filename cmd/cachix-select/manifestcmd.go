package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// manifestCommand is `cachix-select manifest check`, which the Nix modules
// run when they build a manifest, so a bad configuration fails the build
// rather than the switch.
func manifestCommand() *cli.Command {
	return &cli.Command{
		Name:  "manifest",
		Usage: "work with manifests",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate manifests without touching the store or the network",
			ArgsUsage: "MANIFEST.json...",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success"},
			},
			OnUsageError: onUsageError,
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return usageErrorf("give at least one MANIFEST.json")
				}
				dir := store.New().Dir
				for _, f := range c.Args().Slice() {
					m, err := manifest.ParseFile(f, dir)
					if err != nil {
						return err
					}
					warnUnknown(c, m)
					if !c.Bool("quiet") {
						target := m.Cache.URL
						if target == "" {
							target = "Cachix cache " + m.Cache.Name
							if m.Cache.Host != "" {
								target += " at " + m.Cache.Host
							}
						}
						fmt.Fprintf(c.App.Writer, "%s: ok (%d %s, %s)\n", f, len(m.Paths), plural(len(m.Paths), "path", "paths"), target)
					}
				}
				return nil
			},
		}},
	}
}

// warnUnknown warns about the fields of m that manifest version 1 does
// not have: they are ignored (forward compatible), and a misspelt one
// (push.compresion) would otherwise do nothing unseen.
func warnUnknown(c *cli.Context, m *manifest.Manifest) {
	if c.Bool("quiet") {
		return
	}
	for _, f := range m.Unknown {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s: %s is not a field of manifest version 1; it is ignored (misspelt?)\n", m.File, f)
	}
}
