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
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib/activate"
	"github.com/cachix-select/cachix-select/pushlib/memlimit"
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
   0    success (also: nothing to push)
   1    the push failed (cache unreachable, refusing, or missing: a Cachix
        cache or S3 bucket that does not exist; some paths not pushed)
   2    bad usage or bad input (malformed manifest, path not in the store,
        unreadable or misplaced token/key file, unusable cache location)
   130  interrupted by SIGINT (Ctrl-C): what was published stays, nothing
        half-pushed is visible; run it again for the rest
   143  interrupted by SIGTERM (systemctl stop), likewise`

// pinExitCodesHelp is exitCodesHelp for pin, which pushes nothing.
const pinExitCodesHelp = `EXIT CODES:
   0    pinned
   1    not pinned: the cache lacks the path (push it first), refused the
        token, or could not be reached
   2    bad usage or bad input (a path not in the store, a bad pin name or
        keep flag, an unreadable token file)
   130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM`

// pinsListExitCodesHelp is exitCodesHelp for pins list.
const pinsListExitCodesHelp = `EXIT CODES:
   0    listed
   1    the cache could not be read: unreachable, refusing the token, or
        missing
   2    bad usage or bad input (a bad cache name, an unreadable token
        file)
   130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM`

// pinsExitCodesHelp is exitCodesHelp for pins export.
const pinsExitCodesHelp = `EXIT CODES:
   0    listed, or exported
   1    the cache could not be read: unreachable, refusing the token, or
        missing; or the output could not be written
   2    bad usage or bad input (an --output that exists as a file, a bad
        --include/--exclude pattern or --cache-url, pins that clash,
        an unreadable token file)
   130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM`

// interruptGrace is how long the work may take to wind down after a
// signal before the process exits anyway: a read from a dead mount or a
// hung FIFO never returns, and `systemctl stop` must not wait for its
// kill timeout.
const interruptGrace = activate.DefaultGrace

func main() {
	limitMemory()
	stopProfile := startProfile()
	code := runInterruptible(os.Args, os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(code)
}

// interrupted is the cause of the context's end after SIGINT or SIGTERM.
// It matches context.Canceled.
type interrupted struct{ sig syscall.Signal }

func (i *interrupted) Error() string        { return "interrupted by " + signalName(i.sig) }
func (i *interrupted) Is(target error) bool { return target == context.Canceled }

// code is the shell's convention for death by signal: 128 + its number.
func (i *interrupted) code() int { return 128 + int(i.sig) }

// signalName is SIGINT or SIGTERM.
func signalName(s syscall.Signal) string {
	if s == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

// interruption returns the signal that ended ctx, or nil.
func interruption(ctx context.Context) *interrupted {
	var i *interrupted
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &i) {
		return i
	}
	return nil
}

// runInterruptible runs the app until it returns or a signal comes. After
// SIGINT or SIGTERM the context is cancelled and stderr falls silent (no
// "context canceled" per path); once the work has wound down, or after
// interruptGrace if it is blocked, or at a second signal, one line says
// so and the exit code is 130 or 143.
func runInterruptible(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	progress := &tally{}
	ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), tallyKey{}, progress))
	defer cancel(nil)
	quiet := &gatedWriter{w: stderr}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdin, stdout, quiet) }()
	select {
	case code := <-done:
		return code
	case sig := <-sigs:
		intr := &interrupted{sig: sig.(syscall.Signal)}
		quiet.close()
		cancel(intr)
		msg := intr.Error()
		t := time.NewTimer(interruptGrace)
		defer t.Stop()
		select {
		case <-done:
			msg += progress.interruptedAfter()
		case <-t.C:
			msg += progress.interruptedAfter()
			msg += fmt.Sprintf(" (an operation was still blocked after %s: exiting anyway)", interruptGrace)
		case <-sigs:
			msg += progress.interruptedAfter()
		}
		fmt.Fprintf(stderr, "cachix-select: %s\n", msg)
		return intr.code()
	}
}

// gatedWriter passes writes on until it is closed, then drops them.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

// Write writes, unless closed.
func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

// close stops all further writes.
func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Fd lets the renderer tell whether stderr is a terminal.
func (g *gatedWriter) Fd() uintptr {
	if f, ok := g.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

// limitMemory sets a soft limit on the Go heap, 24 MiB per core plus the
// caches' part buffers (64 MiB, or the budget a larger -s/-n or S3
// buffer-size gives: memlimit), unless $GOMEMLIMIT sets one: what a push
// keeps live (part buffers, an encoder per core) stays under it, and the
// garbage it leaves (NAR-sized buffers and the like) is collected before
// the heap doubles. Measured on the benchmark's Cachix push (2 cores):
// peak RSS 116 MiB instead of 195, at no CPU cost beyond the run-to-run
// noise.
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		memlimit.Enable(int64(24 << 20 * runtime.GOMAXPROCS(0)))
	}
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
	args, err := normalizeArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err == nil {
		return exitOK
	}
	if intr := interruption(ctx); intr != nil {
		return intr.code() // the caller says it in one line
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
				s = strings.Replace(s, noise, "", 1)
			}
			return s
		}
	})
	commands := []*cli.Command{
		pushCommand(),
		activateCommand(),
		queueCommand(),
		pinCommand(),
		pinsCommand(),
		manifestCommand(),
	}
	for _, c := range commands {
		// `queue help` is not a command (normalizeArgs reads only a
		// leading `help`): its help must not list one.
		c.HideHelpCommand = true
	}
	return &cli.App{
		Name:    "cachix-select",
		Usage:   "push selected Nix store paths and their closures to Cachix or a Nix binary cache",
		Version: version,
		Description: "cachix-select pushes the runtime closure of chosen store paths to a cache, uploading only\n" +
			"what the cache lacks. The paths come from manifests (rendered by the cachix-select Nix modules)\n" +
			"or from the command line.\n\n" +
			"As with cachix, -c/--config FILE (a cachix.dhall), --hostname URL and -v/--verbose may come\n" +
			"before the command too (cachix-select -c FILE push …); see each command's --help.\n\n" + exitCodesHelp,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() maps errors to exit codes
		OnUsageError:         onUsageError,
		Commands:             commands,
	}
}

// alreadyReported wraps an error whose message was already shown to the user.
type alreadyReported struct{ err error }

func (a *alreadyReported) Error() string { return a.err.Error() }
func (a *alreadyReported) Unwrap() error { return a.err }
