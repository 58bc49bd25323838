package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8/cwriter"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/ui"
)

// newPrinter picks the output from the flags and the terminal: bars only
// on a terminal and when CI is not "true", like cachix.
func newPrinter(c *cli.Context) ui.Printer {
	ctx := c.Context
	return ui.New(ui.Options{
		Stdout: c.App.Writer, Stderr: c.App.ErrWriter, Name: "cachix-select",
		JSON: c.Bool("json"), Quiet: c.Bool("quiet"), Verbose: c.Bool("verbose"),
		Bars: isTerminal(c.App.ErrWriter) && os.Getenv("CI") != "true", Width: termWidth(c.App.ErrWriter),
		Outcome: func(err error) (int, string) {
			if intr := interruption(ctx); intr != nil {
				return intr.code(), intr.Error()
			}
			return exitCode(err), err.Error()
		},
	})
}

// isTerminal reports whether w is a terminal (an *os.File, or stderr
// behind the writer that silences it after a signal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// termWidth is the width of the terminal w writes to, 0 if unknown.
func termWidth(w io.Writer) int {
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		if cols, _, err := cwriter.GetSize(int(f.Fd())); err == nil {
			return cols
		}
	}
	return 0
}

// runJobs pushes the jobs, printing each one's events and result; the
// first failure decides the error, marked as shown when the printer
// already named every failed path.
func runJobs(c *cli.Context, jobs []pushlib.Job) error {
	out := newPrinter(c)
	defer out.Close()
	var sink events.Sink = out
	if t, ok := c.Context.Value(tallyKey{}).(*tally); ok {
		sink = tallySink{out, t}
	}
	err := pushlib.RunJobs(c.Context, jobs, sink, out.Result)
	if err != nil && out.ReportedErrors() {
		return &alreadyReported{err}
	}
	return err
}

// tally counts, for the line an interrupted run ends with, the paths its
// pushes found missing and those they published (to every cache).
type tally struct{ missing, pushed atomic.Int64 }

// tallyKey holds the run's *tally in its context.
type tallyKey struct{}

// interruptedAfter is what the line of an interrupted run adds: how far
// its pushes had got. Empty when no push had planned anything.
func (t *tally) interruptedAfter() string {
	missing, pushed := t.missing.Load(), t.pushed.Load()
	if missing == 0 {
		return ""
	}
	noun := "missing paths"
	if missing == 1 {
		noun = "missing path"
	}
	return fmt.Sprintf(" after pushing %d of %d %s; running it again pushes the rest", pushed, missing, noun)
}

// tallySink counts the plans' missing paths and the published ones on
// their way to the printer.
type tallySink struct {
	events.Sink
	t *tally
}

func (s tallySink) Emit(e events.Event) {
	switch {
	case e.Kind == events.Plan && !e.DryRun:
		s.t.missing.Add(int64(e.Missing))
	case e.Kind == events.Done:
		s.t.pushed.Add(1)
	}
	s.Sink.Emit(e)
}

// hostRetryLines is the event sink of the commands that make requests but
// push nothing (pin, pins list, pins export): a host being retried is said
// at once, in the line push prints, not after the whole retry budget.
type hostRetryLines struct{ w io.Writer }

func (h hostRetryLines) Emit(e events.Event) {
	if e.Kind == events.HostRetry {
		_, _ = io.WriteString(h.w, e.Message+"\n")
	}
}

// requestContext is c.Context carrying hostRetryLines, unless --quiet.
func requestContext(c *cli.Context) context.Context {
	if c.Bool("quiet") {
		return c.Context
	}
	return events.NewContext(c.Context, hostRetryLines{c.App.ErrWriter})
}
