// Package ui shows a push to a person or a program: one Printer type per
// output, after restic's text and JSON printers. Text prints a line per
// path (logs, CI, pipes; with Quiet only the failures); Bars draws
// progress bars on a terminal; JSON writes the JSON lines whose schema
// package events defines. The library itself never prints: only a Printer
// the caller made writes, to the writers it was given.
package ui

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/internal/words"
	"github.com/cachix-select/cachix-select/pushlib/selection"
)

// Printer shows the events of pushes as they come, and each push's result.
// It is safe for concurrent use.
type Printer interface {
	events.Sink
	// Result shows the outcome of one job (after its events).
	Result(res *pushlib.Result, err error)
	// Close stops what is still drawn.
	Close()
	// ReportedErrors says whether a failure was already shown, line by
	// line, so that the caller need not repeat it.
	ReportedErrors() bool
}

// Options configure New.
type Options struct {
	// Stdout receives JSON lines; Stderr everything else.
	Stdout, Stderr io.Writer
	// JSON, Quiet and Verbose are the --json, --quiet and --verbose flags.
	JSON, Quiet, Verbose bool
	// Bars draws progress bars (the caller decides: a terminal, not CI).
	Bars bool
	// Width is the terminal's width in columns for the bars (0: 80). The
	// bars are drawn whatever Stderr is, so the caller may wrap it.
	Width int
	// Name starts the closing line of a failed push ("cachix-select").
	Name string
	// Outcome gives the exit code and error text of a failed job for its
	// JSON result (a signal may decide over the error itself); nil: code 1
	// and the error's text.
	Outcome func(err error) (code int, msg string)
}

// New picks the printer the options ask for.
func New(o Options) Printer {
	switch {
	case o.JSON:
		return &JSON{opts: o}
	case o.Bars && !o.Quiet:
		return &Bars{text: Text{opts: o}}
	}
	return &Text{opts: o}
}

// Text prints a line per path (Quiet: only failures).
type Text struct {
	opts     Options
	mu       sync.Mutex
	reported bool
	// out, when set, is where lines go instead of Stderr (above the bars).
	out io.Writer
}

// Emit prints one event as a line.
func (t *Text) Emit(e events.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.emit(e)
}

// emit is Emit with the lock held.
func (t *Text) emit(e events.Event) {
	if t.opts.Quiet {
		if e.Kind == events.Failed {
			t.reported = true
			t.line("%s", failedLine(e))
		}
		return
	}
	switch e.Kind {
	case events.Plan:
		t.line("%s", planLine(e))
	case events.WouldPush:
		t.line("  %s (%s)", e.Path, size(e.NarSize))
	case events.Start:
		if e.Attempt > 1 {
			t.line("Pushing %s (%s) (retry #%d)", e.Path, size(e.NarSize), e.Attempt-1)
		} else {
			t.line("Pushing %s (%s)", e.Path, size(e.NarSize))
		}
	case events.Done:
		if t.opts.Verbose {
			t.line("Pushed %s (%s compressed)", e.Path, size(e.FileSize))
		}
	case events.Retry:
		t.line("Retrying %s: %s", e.Path, e.Error)
	case events.HostRetry:
		t.line("%s", e.Message)
	case events.Failed:
		t.reported = true
		t.line("%s", failedLine(e))
	case events.Pinned:
		if !e.Unchanged {
			t.line("Pinned %s as %q", e.Path, e.Pin)
		} else if t.opts.Verbose {
			t.line("Pin %q already points at %s", e.Pin, e.Path)
		}
	case events.Warning:
		t.line("warning: %s", e.Message)
	case events.Excluded:
		if e.DryRun || t.opts.Verbose {
			if e.Upstream {
				t.line("Leaving %s (%s) to the upstream cache: %s", e.Path, size(e.NarSize), e.Message)
			} else {
				t.line("Excluded %s (%s): %s", e.Path, size(e.NarSize), e.Message)
			}
		}
	case events.Pruned:
		if e.DryRun || t.opts.Verbose {
			t.line("Pruned %s: %s", e.Path, e.Message)
		}
	case events.NotPushed:
		if e.DryRun {
			t.line("Would not push %s: %s", e.Path, e.Message)
		} else {
			t.line("Not pushing %s: %s", e.Path, e.Message)
		}
	case events.Summary:
		if s := summaryLine(e); s != "" {
			t.line("%s", s)
		}
	}
}

// line prints one line.
func (t *Text) line(format string, args ...any) {
	w := t.out
	if w == nil {
		w = t.opts.Stderr
	}
	_, _ = io.WriteString(w, fmt.Sprintf(format, args...)+"\n")
}

// Result prints, for a push whose paths failed (each already named), one
// closing line saying so; other errors are the caller's to print.
func (t *Text) Result(_ *pushlib.Result, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.result(err)
}

// result is Result with the lock held.
func (t *Text) result(err error) {
	if errors.Is(err, pushlib.ErrPushFailed) {
		fmt.Fprintf(t.opts.Stderr, "%s: %v\n", t.opts.Name, err)
		t.reported = true
	}
}

// Close does nothing: lines need no closing.
func (t *Text) Close() {}

// ReportedErrors says whether a failure was shown.
func (t *Text) ReportedErrors() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reported
}

// planLine describes what is about to happen.
func planLine(e events.Event) string {
	sel := ""
	if e.Selection != "" {
		sel = "; " + e.Selection
	}
	switch {
	case e.Missing == 0 && sel != "":
		return fmt.Sprintf("Nothing to push to %s: %d of %d paths already present%s.", e.Cache, e.Present, e.Closure, sel)
	case e.Missing == 0 && e.Closure == 1:
		return fmt.Sprintf("Nothing to push: the 1 path is already in %s.", e.Cache)
	case e.Missing == 0:
		return fmt.Sprintf("Nothing to push: all %d paths are already in %s.", e.Closure, e.Cache)
	case e.DryRun:
		return fmt.Sprintf("Would push %s (%s NAR) to %s (%d of %d already present%s):", words.Count(e.Missing, "path", "paths"), size(e.NarSize), e.Cache, e.Present, e.Closure, sel)
	}
	return fmt.Sprintf("Pushing %s (%s NAR) to %s using %s (%d of %d already present%s)", words.Count(e.Missing, "path", "paths"), size(e.NarSize), e.Cache, e.Message, e.Present, e.Closure, sel)
}

// summaryLine is the final line of a push.
func summaryLine(e events.Event) string {
	if e.DryRun && e.Missing == 0 {
		return "" // the plan line already said there was nothing to push
	}
	if e.DryRun {
		return fmt.Sprintf("Dry run: %s (%s NAR) would be pushed to %s, %d already present.", words.Count(e.Missing, "path", "paths"), size(e.NarSize), e.Cache, e.Present)
	}
	if e.Missing == 0 {
		return "" // the plan line already said there was nothing to push
	}
	s := fmt.Sprintf("Pushed %s (%s compressed, %s NAR) to %s, %d already present.", words.Count(e.Pushed, "path", "paths"), size(e.FileSize), size(e.NarSize), e.Cache, e.Present)
	if e.Failed > 0 {
		s += fmt.Sprintf(" %d failed.", e.Failed)
	}
	if e.Stopped > 0 {
		s += fmt.Sprintf(" %d not pushed (the push was stopped).", e.Stopped)
	}
	return s
}

// failedLine names the path and why it failed.
func failedLine(e events.Event) string {
	if e.Pin != "" {
		return fmt.Sprintf("error: pinning %s as %q: %s", e.Path, e.Pin, e.Error)
	}
	return fmt.Sprintf("error: pushing %s: %s", e.Path, e.Error)
}

// size formats bytes in binary units.
func size(n uint64) string { return selection.FormatSize(n) }
