// Command cachix-select pushes selected Nix store paths, with their runtime
// closures, to a Cachix cache or a plain Nix binary cache, skipping what the
// cache already has. All the work happens in pushlib; this file builds the
// command line and maps errors to exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes, documented in --help and the README.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadInput = 2
)

const exitCodesHelp = `EXIT CODES:
   0  success (also: nothing to push)
   1  the push failed (cache unreachable or refused, some paths not pushed)
   2  bad usage or bad input (malformed manifest, path not in the store,
      unreadable or misplaced token/key file, unusable cache location)`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile to $CACHIX_SELECT_CPUPROFILE, for
// developers measuring the push pipeline (see tests/bench).
func startProfile() func() {
	file := os.Getenv("CACHIX_SELECT_CPUPROFILE")
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// run builds and runs the app; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	var quiet *alreadyReported
	if !errors.As(err, &quiet) {
		fmt.Fprintf(stderr, "cachix-select: %v\n", err)
	}
	return code
}

// tidyHelp adjusts urfave/cli's global help settings once: -v means
// --verbose in the subcommands, so --version has no short form, and
// "(default: false)" / "(default: 0)" say nothing.
var tidyHelp sync.Once

// newApp assembles the command line.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	tidyHelp.Do(func() {
		cli.HelpFlag = &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help"}
		cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
		orig := cli.FlagStringer
		cli.FlagStringer = func(f cli.Flag) string {
			s := orig(f)
			for _, noise := range []string{" (default: false)", " (default: 0)"} {
				s = strings.TrimSuffix(s, noise)
			}
			return s
		}
	})
	return &cli.App{
		Name:    "cachix-select",
		Usage:   "push selected Nix store paths and their closures to Cachix or a Nix binary cache",
		Version: version,
		Description: "cachix-select pushes the runtime closure of chosen store paths to a cache, uploading only\n" +
			"what the cache lacks. The paths come from manifests (rendered by the cachix-select Nix modules)\n" +
			"or from the command line.\n\n" + exitCodesHelp,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() maps errors to exit codes
		Commands: []*cli.Command{
			pushCommand(),
			activateCommand(),
			queueCommand(),
			pinCommand(),
			pinsCommand(),
			manifestCommand(),
		},
	}
}

// alreadyReported wraps an error whose message was already shown to the user.
type alreadyReported struct{ err error }

func (a *alreadyReported) Error() string { return a.err.Error() }
func (a *alreadyReported) Unwrap() error { return a.err }
