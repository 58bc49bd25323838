package main

import (
	"context"
	"io"
	"os"

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
	err := pushlib.RunJobs(c.Context, jobs, out, out.Result)
	if err != nil && out.ReportedErrors() {
		return &alreadyReported{err}
	}
	return err
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
