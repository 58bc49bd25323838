package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/events"
)

// outputMode is how events are shown.
type outputMode int

const (
	modePlain outputMode = iota // one line per path, for logs and CI
	modeBars                    // progress bars on a terminal
	modeJSON                    // JSON lines on stdout
	modeQuiet                   // errors only
)

// renderer turns library events into output. It is safe for concurrent use.
type renderer struct {
	mode    outputMode
	verbose bool
	stdout  io.Writer
	stderr  io.Writer
	// ctx is the command's; after a signal the result says so.
	ctx context.Context

	mu             sync.Mutex
	bars           *mpb.Progress
	total          *mpb.Bar
	pathBars       map[string]*mpb.Bar
	seen           map[string]uint64
	reportedErrors bool
}

// newRenderer picks the output mode from the flags and the terminal: bars
// only on a terminal and when CI is not "true", like cachix.
func newRenderer(c *cli.Context, stdout, stderr io.Writer) *renderer {
	r := &renderer{stdout: stdout, stderr: stderr, verbose: c.Bool("verbose"), ctx: c.Context,
		pathBars: map[string]*mpb.Bar{}, seen: map[string]uint64{}}
	switch {
	case c.Bool("json"):
		r.mode = modeJSON
	case c.Bool("quiet"):
		r.mode = modeQuiet
	case isTerminal(stderr) && os.Getenv("CI") != "true":
		r.mode = modeBars
	default:
		r.mode = modePlain
	}
	return r
}

// isTerminal reports whether w is a terminal (an *os.File, or stderr
// behind the writer that silences it after a signal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// Emit renders one event (events.Sink).
func (r *renderer) Emit(e events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.mode {
	case modeJSON:
		if e.Kind == events.Progress && !r.verbose {
			return
		}
		r.writeJSON(e)
	case modeQuiet:
		if e.Kind == events.Failed {
			r.reportedErrors = true
			fmt.Fprintln(r.stderr, failedLine(e))
		}
	case modeBars:
		r.bar(e)
	default:
		r.plain(e)
	}
}

// writeJSON prints one JSON line on stdout.
func (r *renderer) writeJSON(v any) {
	b, err := json.Marshal(v)
	if err == nil {
		fmt.Fprintf(r.stdout, "%s\n", b)
	}
}

// line prints above the bars when they are shown, else to stderr.
func (r *renderer) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...) + "\n"
	if r.bars != nil {
		_, _ = r.bars.Write([]byte(s))
		return
	}
	_, _ = io.WriteString(r.stderr, s)
}

// plain renders events as lines of text.
func (r *renderer) plain(e events.Event) {
	switch e.Kind {
	case events.Plan:
		r.line("%s", planLine(e))
	case events.WouldPush:
		r.line("  %s (%s)", e.Path, size(e.NarSize))
	case events.Start:
		if e.Attempt > 1 {
			r.line("Pushing %s (%s) (retry #%d)", e.Path, size(e.NarSize), e.Attempt-1)
		} else {
			r.line("Pushing %s (%s)", e.Path, size(e.NarSize))
		}
	case events.Done:
		if r.verbose {
			r.line("Pushed %s (%s compressed)", e.Path, size(e.FileSize))
		}
	case events.Retry:
		r.line("Retrying %s: %s", e.Path, e.Error)
	case events.HostRetry:
		r.line("%s", e.Message)
	case events.Failed:
		r.reportedErrors = true
		r.line("%s", failedLine(e))
	case events.Pinned:
		if e.Unchanged {
			if r.verbose {
				r.line("Pin %q already points at %s", e.Pin, e.Path)
			}
		} else {
			r.line("Pinned %s as %q", e.Path, e.Pin)
		}
	case events.Warning:
		r.line("warning: %s", e.Message)
	case events.Summary:
		if s := summaryLine(e); s != "" {
			r.line("%s", s)
		}
	}
}

// bar renders events as progress bars.
func (r *renderer) bar(e events.Event) {
	switch e.Kind {
	case events.Plan:
		fmt.Fprintln(r.stderr, planLine(e))
		if e.Missing > 0 && !e.DryRun {
			r.bars = mpb.New(mpb.WithOutput(r.stderr), mpb.WithWidth(32))
			r.total = r.bars.AddBar(int64(e.NarSize),
				mpb.PrependDecorators(decor.Name("total", decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
				mpb.BarPriority(1<<30))
		}
	case events.Start:
		if b, ok := r.pathBars[e.Path]; ok {
			b.Abort(true)
		}
		name := path.Base(e.Path)
		if len(name) > 33 {
			name = name[33:]
		}
		if e.Attempt > 1 {
			name = fmt.Sprintf("%s (retry #%d)", name, e.Attempt-1)
		}
		r.pathBars[e.Path] = r.bars.AddBar(int64(e.NarSize),
			mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")),
			mpb.BarRemoveOnComplete())
		r.advance(e.Path, 0)
	case events.Progress:
		if b, ok := r.pathBars[e.Path]; ok {
			b.SetCurrent(int64(e.Bytes))
		}
		r.advance(e.Path, e.Bytes)
	case events.Done:
		if b, ok := r.pathBars[e.Path]; ok {
			b.SetCurrent(int64(e.NarSize))
			delete(r.pathBars, e.Path)
		}
		r.advance(e.Path, e.NarSize)
	case events.Failed:
		r.reportedErrors = true
		if b, ok := r.pathBars[e.Path]; ok {
			b.Abort(true)
			delete(r.pathBars, e.Path)
		}
		r.line("%s", failedLine(e))
	case events.Summary:
		r.finishBars()
		if s := summaryLine(e); s != "" {
			fmt.Fprintln(r.stderr, s)
		}
	default:
		r.plain(e)
	}
}

// advance moves the total bar by a path's progress since last time.
func (r *renderer) advance(p string, now uint64) {
	if r.total == nil {
		return
	}
	if prev := r.seen[p]; now > prev {
		r.total.IncrInt64(int64(now - prev))
		r.seen[p] = now
	}
}

// finishBars stops the bar display.
func (r *renderer) finishBars() {
	if r.bars == nil {
		return
	}
	for p, b := range r.pathBars {
		b.Abort(true)
		delete(r.pathBars, p)
	}
	if r.total != nil {
		r.total.Abort(false)
		r.total = nil
	}
	r.bars.Wait()
	r.bars = nil
}

// Result reports the outcome of one job: JSON, or the error line.
func (r *renderer) Result(res *pushlib.Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishBars()
	if r.mode == modeJSON {
		type failure struct {
			Path  string `json:"path"`
			Error string `json:"error"`
		}
		out := struct {
			Event string `json:"event"`
			*pushlib.Result
			Failed []failure `json:"failed"`
			Error  string    `json:"error,omitempty"`
			Code   int       `json:"exitCode"`
		}{Event: "result", Result: res, Failed: []failure{}}
		if res != nil {
			for _, f := range res.Failed {
				out.Failed = append(out.Failed, failure{Path: f.Path, Error: f.Err.Error()})
			}
		}
		if err != nil {
			out.Error = err.Error()
			out.Code = exitCode(err)
		}
		if intr := interruption(r.ctx); intr != nil && err != nil {
			out.Error, out.Code = intr.Error(), intr.code()
		}
		r.writeJSON(out)
		return
	}
	if err != nil && errors.Is(err, pushlib.ErrPushFailed) {
		// Each failed path was already shown; one closing line says it failed.
		fmt.Fprintf(r.stderr, "cachix-select: %v\n", err)
		r.reportedErrors = true
	}
}

// Close stops any bars still shown.
func (r *renderer) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishBars()
}

// planLine describes what is about to happen.
func planLine(e events.Event) string {
	switch {
	case e.Missing == 0:
		return fmt.Sprintf("Nothing to push: all %d paths are already in %s.", e.Closure, e.Cache)
	case e.DryRun:
		return fmt.Sprintf("Would push %d paths (%s NAR) to %s (%d of %d already present):", e.Missing, size(e.NarSize), e.Cache, e.Present, e.Closure)
	}
	return fmt.Sprintf("Pushing %d paths (%s NAR) to %s using %s (%d of %d already present)", e.Missing, size(e.NarSize), e.Cache, e.Message, e.Present, e.Closure)
}

// summaryLine is the final line of a push.
func summaryLine(e events.Event) string {
	if e.DryRun {
		return fmt.Sprintf("Dry run: %d paths (%s NAR) would be pushed to %s, %d already present.", e.Missing, size(e.NarSize), e.Cache, e.Present)
	}
	if e.Missing == 0 {
		return "" // the plan line already said there was nothing to push
	}
	s := fmt.Sprintf("Pushed %d paths (%s compressed, %s NAR) to %s, %d already present.", e.Pushed, size(e.FileSize), size(e.NarSize), e.Cache, e.Present)
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
func size(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
