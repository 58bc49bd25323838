package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib/activate"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
	"github.com/cachix-select/cachix-select/pushlib/ui"
)

// stateFlags choose the state directory.
func stateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "state-dir", Usage: "queue and records in `DIR` (default $XDG_STATE_HOME/cachix-select, else ~/.local/state/cachix-select, for root too; the NixOS module uses " + queue.SystemDir + ")"},
	}
}

// credentialFlags are the secrets overrides shared by activate and queue flush.
func credentialFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "auth-token-file", Usage: "read the Cachix auth token from `FILE` (wins over the manifests')"},
		&cli.StringFlag{Name: "signing-key-file", Usage: "read the signing key from `FILE` (wins over the manifests')"},
		&cli.StringFlag{Name: "config", Usage: "Cachix config `FILE` for the token and key when neither a flag, the manifest nor the environment gives them (default $XDG_CONFIG_HOME/cachix/cachix.dhall, else ~/.config/cachix/cachix.dhall, read when present)"},
		s3CredentialsFlag(),
	}
}

// activateCommand is `cachix-select activate`, the entry point of the hooks.
func activateCommand() *cli.Command {
	flags := append(stateFlags(), credentialFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "mode", Value: "background", Usage: "`background` (queue, push in the background) or foreground (push now, bounded by --timeout)"},
		&cli.BoolFlag{Name: "strict", Usage: "fail (exit 1 or 2) when the push fails or cannot be queued; by default activate exits 0 (but 2 for a command line it cannot read)"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "report what would be pushed; push and queue nothing"},
		&cli.StringFlag{Name: "systemd-unit", Usage: "background mode: start `UNIT` to flush the queue (falls back to a detached process without systemd)"},
		&cli.BoolFlag{Name: "user-unit", Usage: "--systemd-unit is a user unit (systemctl --user), also for root (home-manager)"},
		&cli.StringFlag{Name: "restart-list", Usage: "background mode with --systemd-unit (NixOS): append the unit to `FILE` (/run/nixos/activation-restart-list), which switch-to-configuration starts after reloading systemd, instead of starting it now; never a detached process"},
		&cli.StringFlag{Name: "root", Usage: "also push `PATH`, with its closure, as if the manifest listed it: the generation being activated, which the manifest cannot list"},
		&cli.StringFlag{Name: "root-name", Value: "generation", Usage: "`NAME` of --root in messages and in the queue"},
		&cli.StringFlag{Name: "root-pin", Usage: "pin --root as `NAME` (Cachix)"},
		&cli.IntFlag{Name: "root-keep-revisions", Usage: "keep the last `N` revisions of --root-pin"},
		&cli.IntFlag{Name: "root-keep-days", Usage: "keep revisions of --root-pin for `N` days"},
		&cli.BoolFlag{Name: "root-keep-forever", Usage: "keep every revision of --root-pin"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "foreground mode: stop after `DURATION`, leaving the rest queued; --dry-run: give up after it (default 30s there)"},
		&cli.StringFlag{Name: "log-file", Usage: "background mode without systemd: append output to `FILE` (default STATE/push.log)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every path"},
	)
	flags = append(flags, networkFlags()...)
	return &cli.Command{
		Name:      "activate",
		Usage:     "what the home-manager, NixOS and shell hooks run: push a manifest without ever breaking the caller",
		ArgsUsage: "MANIFEST.json",
		Description: "Exits at once, printing nothing, when every path of the manifest is recorded as pushed.\n" +
			"Otherwise queues the manifest on disk and pushes it in the background (a systemd unit or a\n" +
			"detached process, one flush at a time per state directory; with --restart-list, NixOS's\n" +
			"switch-to-configuration starts the unit after its daemon-reload, and nothing else ever does)\n" +
			"or, with --mode foreground, right away. A push that cannot happen now (offline, cache down,\n" +
			"credentials missing) stays queued for `cachix-select queue flush`, the next activation or the\n" +
			"unit's timer. A cache host that cannot be reached at all (refused, unknown name, no route) is\n" +
			"given up at once, not retried. --root adds the generation being activated, which no manifest\n" +
			"can list.\n\n" +
			"Exit code: 0, unless --strict (then 1 when the push failed, 2 for bad input); a command line\n" +
			"it cannot read (an unknown flag, a bad value) is 2 either way (the hooks' snippets go on).",
		Flags:        flags,
		OnUsageError: onUsageError,
		Action:       activateAction,
	}
}

// activateAction never fails the caller unless --strict.
func activateAction(c *cli.Context) error {
	queued, err := doActivate(c)
	var usage *usageError
	if err == nil || c.Bool("strict") || errors.As(err, &usage) {
		return err // a command line it cannot read is 2 either way
	}
	note := "nothing was queued"
	switch {
	case errors.Is(err, errQueueNotEmpty):
		note = "the push stays queued: cachix-select queue list says why"
	case queued:
		note = "the push stays queued: cachix-select queue list"
	}
	fmt.Fprintf(c.App.ErrWriter, "cachix-select: warning: %v (%s; activation continues)\n", err, note)
	return nil
}

// doActivate is activate's work (activate.Run); its errors are warnings
// unless --strict. queued says whether the manifest is waiting in the queue.
func doActivate(c *cli.Context) (queued bool, err error) {
	if c.NArg() != 1 {
		return false, usageErrorf("activate takes exactly one MANIFEST.json, not %d arguments", c.NArg())
	}
	if m := activate.Mode(c.String("mode")); m != activate.Background && m != activate.Foreground {
		return false, usageErrorf("--mode must be background or foreground, not %s", store.Quote(string(m)))
	}
	root, err := rootFlags(c)
	if err != nil {
		return false, err
	}
	st := store.New()
	req := activate.Request{File: c.Args().First(), Root: root, Mode: activate.Mode(c.String("mode")),
		DryRun: c.Bool("dry-run"), StateDir: stateDir(c), Options: activateOptions(c, st)}
	if c.IsSet("timeout") || !req.DryRun {
		req.Timeout = c.Duration("timeout")
		if req.Timeout <= 0 {
			// Zero would be no limit at all: a push that may hang the switch.
			return false, usageErrorf("--timeout %s is no time at all; give how long the push may take, such as 10m", req.Timeout)
		}
	}
	var out ui.Printer
	if req.DryRun {
		out = newPrinter(c)
		defer out.Close()
		req.Options.Events, req.Results = out, out.Result
	} else if req.Mode == activate.Foreground {
		out = newPrinter(c)
		defer out.Close()
		req.Options.Events = out
	}
	ctx := c.Context
	res, err := activate.Run(ctx, req, launcher(c))
	switch {
	case res.Flush != nil:
		return true, reportFlush(c, ctx, *res.Flush, err)
	case err != nil && req.DryRun && out.ReportedErrors():
		return false, &alreadyReported{err}
	case err != nil:
		return res.Queued, err
	case res.Started != "" && !c.Bool("quiet"):
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: pushing %d new %s (with %s) to %s in the background (%s)\n",
			res.New, plural(res.New, "path", "paths"), plural(res.New, "its closure", "their closures"), res.Target, res.Started)
	}
	return res.Queued, nil
}

// launcher starts background flushes as the flags say: the flush it
// starts gets the credential and network flags of this activation, and
// --fail-fast, so that a host that cannot be reached at all is not
// retried for 90 s while it holds the flush lock (the entry stays queued).
func launcher(c *cli.Context) activate.SystemLauncher {
	args := []string{"queue", "flush", "--state-dir", stateDir(c), "--fail-fast"}
	var creds []string
	for _, f := range []string{"auth-token-file", "signing-key-file", "config", "s3-credentials-file"} {
		if v := c.String(f); v != "" {
			args = append(args, "--"+f, v)
			creds = append(creds, v)
		}
	}
	for _, f := range []string{"connect-timeout", "stall-timeout", "retry-for"} {
		if c.IsSet(f) {
			args = append(args, "--"+f, c.Duration(f).String())
		}
	}
	return activate.SystemLauncher{Unit: c.String("systemd-unit"), UserUnit: c.Bool("user-unit") || os.Geteuid() != 0,
		RestartList: c.String("restart-list"), Credentials: creds, Args: args, LogFile: c.String("log-file")}
}

// rootFlags reads --root and its pin (nil without --root).
func rootFlags(c *cli.Context) (*activate.Root, error) {
	if !c.IsSet("root") {
		return nil, nil
	}
	r := &activate.Root{StorePath: c.String("root"), Name: c.String("root-name")}
	keep, err := keepFromFlags(c, "root-")
	if err != nil {
		return nil, err
	}
	if name := c.String("root-pin"); name != "" {
		r.Pin = &manifest.Pin{Name: name, Keep: keep}
	} else if keep != nil {
		return nil, usageErrorf("--root-keep-* needs --root-pin")
	}
	return r, nil
}

// activateOptions are activate's and queue flush's: the credential flags
// are the command line's layer of every queued target.
func activateOptions(c *cli.Context, st *store.Store) activate.Options {
	return activate.Options{
		Flags: target.Layer{Origin: target.CommandLine, AuthTokenFile: c.String("auth-token-file"),
			SigningKeyFile: c.String("signing-key-file"), S3CredentialsFile: c.String("s3-credentials-file")},
		Resolve: resolveOptions(c),
		Backend: backendOptions(c),
		Store:   st,
	}
}

// stateDir is --state-dir or the default (queue.DefaultDir).
func stateDir(c *cli.Context) string {
	if d := c.String("state-dir"); d != "" {
		return d
	}
	return queue.DefaultDir()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
