package ui

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/events"
)

// JSON writes the JSON lines of package events on Stdout: each event
// (progress only with Verbose), then each job's ResultLine.
type JSON struct {
	opts Options
	mu   sync.Mutex
}

// Emit writes one event.
func (j *JSON) Emit(e events.Event) {
	if e.Kind == events.Progress && !j.opts.Verbose {
		return
	}
	j.write(e)
}

// Result writes the job's result line.
func (j *JSON) Result(res *pushlib.Result, err error) {
	code := 0
	if err != nil {
		code = 1
		if j.opts.Outcome != nil {
			var msg string
			code, msg = j.opts.Outcome(err)
			err = fmt.Errorf("%s", msg)
		}
	}
	j.write(res.Line(err, code))
}

// write prints v as one line.
func (j *JSON) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.opts.Stdout, "%s\n", b)
}

// Close does nothing.
func (j *JSON) Close() {}

// ReportedErrors is false: the JSON lines are for programs, and the error
// line on stderr is still wanted.
func (j *JSON) ReportedErrors() bool { return false }
