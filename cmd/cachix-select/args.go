package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// globalFlags are the flags cachix takes before its command (`cachix -c
// FILE push …`, `cachix --hostname URL pin …`, `cachix -v push …`). Our
// commands define them themselves; in front of the command they are moved
// behind it. The value says whether the flag takes a value.
var globalFlags = map[string]bool{"c": true, "config": true, "host": true, "hostname": true, "v": false, "verbose": false}

// normalizeArgs rewrites a command line into the shape urfave/cli reads,
// the way cachix's parser (optparse-applicative) accepts it, so that what
// works with cachix works here:
//
//   - `help [COMMAND…]` is `COMMAND… --help`;
//   - cachix's global flags in front of the command move behind it;
//   - flags may follow the arguments (`pin NAME PATH --keep-days 3`):
//     urfave/cli stops at the first argument, so the leaf command's flags
//     are moved in front of its arguments, each with its value; `--` ends
//     the flags, and what follows stays an argument;
//   - a short flag with its value attached (`-j8`) is split (`-j 8`).
//
// An unknown command is a usage error ("unknown command"); unknown flags
// are left for urfave/cli to report.
func normalizeArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	out := []string{args[0]}
	rest := args[1:]
	// cachix's global flags before the command.
	var moved []string
	for len(rest) > 0 && isFlag(rest[0]) {
		name, hasValue := flagName(rest[0])
		takes, global := globalFlags[name]
		if !global {
			return args, nil // --help, --version, or an unknown flag: urfave/cli's to handle
		}
		moved = append(moved, rest[0])
		rest = rest[1:]
		if takes && !hasValue && len(rest) > 0 {
			moved = append(moved, rest[0])
			rest = rest[1:]
		}
	}
	if len(rest) == 0 {
		return append(out, moved...), nil
	}
	help := false
	if rest[0] == "help" {
		help = true
		rest = rest[1:]
		if len(rest) == 0 {
			return append(out, "--help"), nil
		}
	}
	// The command path: commands, then subcommands, by name.
	cmds := app.Commands
	var leaf *cli.Command
	var path []string
	for len(rest) > 0 && !isFlag(rest[0]) {
		c := findCommand(cmds, rest[0])
		if c == nil {
			if leaf == nil || len(leaf.Subcommands) > 0 {
				hint := ""
				if near := nearestCommand(cmds, rest[0]); near != "" {
					hint = fmt.Sprintf(" (did you mean %s?)", strings.TrimSpace(strings.Join(append(path, near), " ")))
				}
				return nil, usageErrorf("unknown command %q%s (commands: %s; see cachix-select help)",
					strings.TrimSpace(strings.Join(append(path, rest[0]), " ")), hint, commandNames(cmds))
			}
			break // an argument of the leaf command
		}
		leaf, path = c, append(path, rest[0])
		rest = rest[1:]
		cmds = c.Subcommands
		if len(cmds) == 0 {
			break
		}
	}
	out = append(out, path...)
	if help {
		return append(out, "--help"), nil
	}
	if leaf == nil {
		return args, nil
	}
	flags, positional, help := splitFlags(leaf, rest)
	if help {
		// Help asked for anywhere among the flags: the command's help,
		// whatever the arguments (urfave/cli would take the first one
		// for a help topic).
		return append(out, "--help"), nil
	}
	out = append(out, moved...)
	out = append(out, flags...)
	return append(out, positional...), nil
}

// splitFlags separates cmd's flags (with their values) from its arguments,
// keeping each group in order.
func splitFlags(cmd *cli.Command, args []string) (flags, positional []string, help bool) {
	takes := map[string]bool{"help": false, "h": false}
	for _, f := range cmd.Flags {
		tv, ok := f.(interface{ TakesValue() bool })
		for _, n := range f.Names() {
			takes[n] = ok && tv.TakesValue()
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i:]...)
			break
		}
		if !isFlag(a) {
			positional = append(positional, a)
			continue
		}
		name, hasValue := flagName(a)
		valued, known := takes[name]
		help = help || name == "help" || name == "h"
		if !known && !strings.HasPrefix(a, "--") && len(name) > 1 {
			// -j8: a short flag with its value attached.
			if v, ok := takes[name[:1]]; ok && v {
				flags = append(flags, "-"+name[:1], a[2:])
				continue
			}
		}
		flags = append(flags, a)
		if valued && !hasValue && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if i := slices.Index(positional, "--"); i >= 0 {
		// urfave/cli reads "--" only in front of the arguments.
		positional = append(append([]string{"--"}, positional[:i]...), positional[i+1:]...)
	}
	return flags, positional, help
}

// isFlag reports whether a looks like a flag ("-" alone is an argument).
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// flagName is a flag's name without dashes and value, and whether the
// value is attached with "=".
func flagName(a string) (string, bool) {
	a = strings.TrimLeft(a, "-")
	if i := strings.IndexByte(a, '='); i >= 0 {
		return a[:i], true
	}
	return a, false
}

// findCommand finds a command by name or alias.
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// nearestCommand is the visible command name closest to a misspelt one.
func nearestCommand(cmds []*cli.Command, typed string) string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden && c.Name != "help" {
			names = append(names, c.Names()...)
		}
	}
	return nearest(names, typed)
}

// commandNames lists the visible commands for a message.
func commandNames(cmds []*cli.Command) string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden && c.Name != "help" {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ", ")
}
