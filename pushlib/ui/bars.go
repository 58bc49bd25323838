package ui

import (
	"fmt"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// barWidth is the width of the bar itself, in columns.
const barWidth = 32

// Bars draws a bar per path in flight and a total, on a terminal; other
// events are Text's lines, printed above the bars.
type Bars struct {
	text Text

	mu       sync.Mutex
	bars     *mpb.Progress
	total    *mpb.Bar
	pathBars map[string]*mpb.Bar
	seen     map[string]uint64
}

// Emit draws one event.
func (b *Bars) Emit(e events.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.text.mu.Lock()
	defer b.text.mu.Unlock()
	if b.pathBars == nil {
		b.pathBars, b.seen = map[string]*mpb.Bar{}, map[string]uint64{}
	}
	switch e.Kind {
	case events.Plan:
		fmt.Fprintln(b.text.opts.Stderr, planLine(e))
		if e.Missing > 0 && !e.DryRun {
			// mpb redraws on its own only when its output is an
			// *os.File terminal; Stderr may be wrapped (the CLI's
			// writer that falls silent after a signal), so the caller's
			// decision is taken here, with the terminal's width.
			width := b.text.opts.Width
			if width <= 0 {
				width = 80
			}
			b.bars = mpb.New(mpb.WithOutput(b.text.opts.Stderr), mpb.WithAutoRefresh(), mpb.WithWidth(width))
			b.text.out = b.bars
			b.total = b.bars.AddBar(int64(e.NarSize), mpb.BarWidth(barWidth),
				mpb.PrependDecorators(decor.Name("total", decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
				mpb.BarPriority(1<<30))
		}
	case events.Start:
		if b.bars == nil {
			b.text.emit(e)
			return
		}
		if bar, ok := b.pathBars[e.Path]; ok {
			bar.Abort(true)
		}
		name := store.NameOf(e.Path)
		if e.Attempt > 1 {
			name = fmt.Sprintf("%s (retry #%d)", name, e.Attempt-1)
		}
		b.pathBars[e.Path] = b.bars.AddBar(int64(e.NarSize), mpb.BarWidth(barWidth),
			mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")),
			mpb.BarRemoveOnComplete())
		b.advance(e.Path, 0)
	case events.Progress:
		if bar, ok := b.pathBars[e.Path]; ok {
			bar.SetCurrent(int64(e.Bytes))
		}
		b.advance(e.Path, e.Bytes)
	case events.Done:
		if bar, ok := b.pathBars[e.Path]; ok {
			bar.SetCurrent(int64(e.NarSize))
			delete(b.pathBars, e.Path)
		}
		b.advance(e.Path, e.NarSize)
	case events.Failed:
		if bar, ok := b.pathBars[e.Path]; ok {
			bar.Abort(true)
			delete(b.pathBars, e.Path)
		}
		b.text.emit(e)
	case events.Summary:
		b.finish()
		if s := summaryLine(e); s != "" {
			fmt.Fprintln(b.text.opts.Stderr, s)
		}
	default:
		b.text.emit(e)
	}
}

// advance moves the total bar by a path's progress since last time.
func (b *Bars) advance(p string, now uint64) {
	if b.total == nil {
		return
	}
	if prev := b.seen[p]; now > prev {
		b.total.IncrInt64(int64(now - prev))
		b.seen[p] = now
	}
}

// finish stops the bar display.
func (b *Bars) finish() {
	if b.bars == nil {
		return
	}
	for p, bar := range b.pathBars {
		bar.Abort(true)
		delete(b.pathBars, p)
	}
	if b.total != nil {
		b.total.Abort(false)
		b.total = nil
	}
	b.bars.Wait()
	b.bars, b.text.out = nil, nil
}

// Result stops the bars, then prints what Text prints.
func (b *Bars) Result(_ *pushlib.Result, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.text.mu.Lock()
	defer b.text.mu.Unlock()
	b.finish()
	b.text.result(err)
}

// Close stops any bars still shown.
func (b *Bars) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.text.mu.Lock()
	defer b.text.mu.Unlock()
	b.finish()
}

// ReportedErrors says whether a failure was shown.
func (b *Bars) ReportedErrors() bool { return b.text.ReportedErrors() }
