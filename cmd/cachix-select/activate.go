package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/activate"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/store"
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
		&cli.StringFlag{Name: "config", Usage: "Cachix config `FILE` for the token and key when neither a flag, the manifest nor the environment gives them (default $XDG_CONFIG_HOME/cachix/cachix.dhall)"},
	}
}

// activateCommand is `cachix-select activate`, the entry point of the hooks.
func activateCommand() *cli.Command {
	flags := append(stateFlags(), credentialFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "mode", Value: "background", Usage: "`background` (queue, push in the background) or foreground (push now, bounded by --timeout)"},
		&cli.BoolFlag{Name: "strict", Usage: "fail (exit 1 or 2) when the push fails or cannot be queued; by default activate always exits 0"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "report what would be pushed; push and queue nothing"},
		&cli.StringFlag{Name: "systemd-unit", Usage: "background mode: start `UNIT` to flush the queue (falls back to a detached process without systemd)"},
		&cli.BoolFlag{Name: "user-unit", Usage: "--systemd-unit is a user unit (systemctl --user), also for root (home-manager)"},
		&cli.StringFlag{Name: "restart-list", Usage: "background mode with --systemd-unit (NixOS): append the unit to `FILE` (/run/nixos/activation-restart-list), which switch-to-configuration starts after reloading systemd, instead of starting it now; never a detached process"},
		&cli.StringFlag{Name: "root", Usage: "also push `PATH`, with its closure, as if the manifest listed it: the generation being activated, which the manifest cannot list"},
		&cli.StringFlag{Name: "root-name", Value: "generation", Usage: "manifest name of --root"},
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
			"Exit code: 0, unless --strict (then 1 when the push failed, 2 for bad input).",
		Flags:        flags,
		OnUsageError: onUsageError,
		Action:       activateAction,
	}
}

// activateAction never fails the caller unless --strict.
func activateAction(c *cli.Context) error {
	queued, err := doActivate(c)
	if err == nil || c.Bool("strict") {
		return err
	}
	note := "nothing was queued"
	if queued {
		note = "the push stays queued: cachix-select queue list"
	}
	fmt.Fprintf(c.App.ErrWriter, "cachix-select: warning: %v (%s; activation continues)\n", err, note)
	return nil
}

// doActivate is activate's work; its errors are warnings unless --strict.
// queued says whether the manifest is waiting in the queue.
func doActivate(c *cli.Context) (queued bool, err error) {
	if c.NArg() != 1 {
		return false, usageErrorf("activate takes exactly one MANIFEST.json")
	}
	mode := c.String("mode")
	if mode != "background" && mode != "foreground" {
		return false, usageErrorf("--mode must be background or foreground, not %q", mode)
	}
	file := c.Args().First()
	st := store.New()
	raw, err := manifest.ReadFile(file)
	if err != nil {
		return false, err
	}
	if raw, err = withRootFlags(c, raw, st.Dir); err != nil {
		return false, err
	}
	m, err := manifest.ParseWith(raw, file, manifest.Options{StoreDir: st.Dir})
	if err != nil {
		return false, err
	}
	overrides := pushlib.Overrides{AuthTokenFile: c.String("auth-token-file"), SigningKeyFile: c.String("signing-key-file")}

	if c.Bool("dry-run") {
		return false, activateDryRun(c, m, overrides, st)
	}
	d, err := queue.Open(stateDir(c))
	if err != nil {
		return false, err
	}
	todo, err := activate.Unconfirmed(d, m, overrides, time.Now())
	if err != nil {
		return false, err
	}
	if len(todo) == 0 {
		return false, nil // the fast path: nothing new, nothing printed
	}
	if _, err := d.Enqueue(absPath(file), raw); err != nil {
		return false, err
	}
	target := overrides.Apply(pushlib.FromManifest(m)).String()
	if mode == "foreground" {
		// A host that cannot be reached at all must not hold up the switch
		// for the retry budget: the push stays queued.
		ctx, cancel := withTimeLimit(c.Context, c.Duration("timeout"))
		defer cancel()
		return true, flushQueue(ctx, c, d, flushOptions{wait: true, failFast: true})
	}
	how, err := startBackgroundFlush(c, d, m)
	if err != nil {
		return true, fmt.Errorf("%d paths queued for %s, but starting the background push failed: %w", len(todo), target, err)
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: pushing %d new %s (with %s) to %s in the background (%s)\n",
			len(todo), plural(len(todo), "path", "paths"), plural(len(todo), "its closure", "their closures"), target, how)
	}
	return true, nil
}

// dryRunTimeout bounds a dry run, so that `home-manager switch -n` or
// `nixos-rebuild dry-activate` never waits out HTTP retries against an
// unreachable cache.
const dryRunTimeout = 30 * time.Second

// activateDryRun reports what a push would do (home-manager DRY_RUN, NixOS dry-activate).
func activateDryRun(c *cli.Context, m *manifest.Manifest, o pushlib.Overrides, st *store.Store) error {
	timeout := dryRunTimeout
	if c.IsSet("timeout") {
		timeout = c.Duration("timeout")
	}
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	c.Context = ctx
	bopts := backendOptions(c)
	bopts.FailFast = true // report an unreachable cache at once, not after the retries
	jobs, err := pushlib.BuildJobs(pushlib.Request{Manifests: []*manifest.Manifest{m}, Overrides: o,
		Settings: pushlib.Settings{DryRun: true}, Backend: bopts}, st)
	if err != nil {
		return err
	}
	out := newRenderer(c, c.App.Writer, c.App.ErrWriter)
	defer out.Close()
	return runJobs(c, jobs, out)
}

// startBackgroundFlush hands the flush to systemd or to a detached process
// and says which.
func startBackgroundFlush(c *cli.Context, d *queue.Dir, m *manifest.Manifest) (string, error) {
	if d.Busy() {
		// The running flush looks at the queue again before it exits.
		return "a push already running will take it", nil
	}
	unit := c.String("systemd-unit")
	if list := c.String("restart-list"); list != "" {
		if unit == "" {
			return "", usageErrorf("--restart-list needs --systemd-unit")
		}
		return requestUnitStart(c, list, unit, m)
	}
	if unit != "" {
		if how, ok := startUnit(c.Context, unit, c.Bool("user-unit") || os.Geteuid() != 0); ok {
			return how, nil
		}
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	logFile := c.String("log-file")
	if logFile == "" {
		logFile = d.LogFile()
	}
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer log.Close()
	// --fail-fast: a host that cannot be reached at all is not retried for
	// 90 s while holding the flush lock; the entry stays queued.
	args := []string{"queue", "flush", "--state-dir", d.Path, "--fail-fast"}
	for _, f := range []string{"auth-token-file", "signing-key-file", "config"} {
		if v := c.String(f); v != "" {
			args = append(args, "--"+f, v)
		}
	}
	for _, f := range []string{"connect-timeout", "stall-timeout", "retry-for"} {
		if c.IsSet(f) {
			args = append(args, "--"+f, c.Duration(f).String())
		}
	}
	fmt.Fprintf(log, "\n== %s: cachix-select %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	_ = cmd.Process.Release()
	return "log: " + logFile, nil
}

// requestUnitStart asks switch-to-configuration to start unit after its
// daemon-reload (NixOS). The unit loads the secrets as credentials, and
// systemd would refuse to start it, failing the switch, if one were
// missing: then the push stays queued and the caller warns instead.
func requestUnitStart(c *cli.Context, list, unit string, m *manifest.Manifest) (string, error) {
	if err := activate.CheckCredentials(c.String("auth-token-file"), c.String("signing-key-file"), c.String("config"),
		m.Cache.AuthTokenFile, m.Cache.SigningKeyFile); err != nil {
		return "", fmt.Errorf("%s would not start: its credential %w", unit, err)
	}
	if err := activate.RequestStart(list, unit); err != nil {
		return "", err
	}
	return unit + " once systemd has reloaded; log: journalctl -u " + unit, nil
}

// withRootFlags adds --root (and its pin) to the manifest's paths.
func withRootFlags(c *cli.Context, raw []byte, storeDir string) ([]byte, error) {
	if !c.IsSet("root") {
		return raw, nil
	}
	root, err := activate.CheckRoot(c.String("root"), storeDir)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	r := activate.Root{StorePath: root, Name: c.String("root-name")}
	var keep *manifest.Keep
	set := 0
	if n := c.Int("root-keep-revisions"); c.IsSet("root-keep-revisions") {
		keep, set = &manifest.Keep{Revisions: n}, set+1
		if n < 1 {
			return nil, usageErrorf("--root-keep-revisions must be at least 1")
		}
	}
	if n := c.Int("root-keep-days"); c.IsSet("root-keep-days") {
		keep, set = &manifest.Keep{Days: n}, set+1
		if n < 1 {
			return nil, usageErrorf("--root-keep-days must be at least 1")
		}
	}
	if c.Bool("root-keep-forever") {
		keep, set = &manifest.Keep{Forever: true}, set+1
	}
	if set > 1 {
		return nil, usageErrorf("give at most one of --root-keep-revisions, --root-keep-days and --root-keep-forever")
	}
	if name := c.String("root-pin"); name != "" {
		r.Pin = &manifest.Pin{Name: name, Keep: keep}
	} else if keep != nil {
		return nil, usageErrorf("--root-keep-* needs --root-pin")
	}
	return activate.WithRoot(raw, r)
}

// startUnit starts a systemd unit (a user unit if user) without waiting
// for it; false when systemd is not usable here.
func startUnit(ctx context.Context, unit string, user bool) (string, bool) {
	args := []string{"start", "--no-block", unit}
	journal := "journalctl -u " + unit
	if user {
		args = append([]string{"--user"}, args...)
		journal = "journalctl --user -u " + unit
	} else if _, err := os.Stat("/run/systemd/system"); err != nil {
		return "", false
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, "systemctl", args...).Run(); err != nil {
		return "", false
	}
	return "log: " + journal, true
}

// stateDir is --state-dir or the default (queue.DefaultDir).
func stateDir(c *cli.Context) string {
	if d := c.String("state-dir"); d != "" {
		return d
	}
	return queue.DefaultDir()
}

// absPath makes a manifest path absolute for the queue entry.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
