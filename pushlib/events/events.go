// Package events is how the library reports what it is doing. The library
// never prints: it emits events to a Sink, and the CLI renders them as
// progress bars, plain lines or JSON lines.
package events

import (
	"context"
	"sync"
)

// Kind names an event. The JSON output uses these strings verbatim.
type Kind string

// The events a push emits, in the order they usually happen.
const (
	// Plan: the closure is known and the cache was asked what it lacks.
	Plan Kind = "plan"
	// Start: one path's upload begins (Attempt > 1 on a retry).
	Start Kind = "start"
	// Progress: NAR bytes read so far for one path.
	Progress Kind = "progress"
	// Retry: an attempt failed with a retryable error and will be repeated.
	Retry Kind = "retry"
	// Done: a path is in the cache (its narinfo is published).
	Done Kind = "done"
	// Failed: a path could not be pushed.
	Failed Kind = "failed"
	// WouldPush: in dry-run mode, a path that a real push would upload.
	WouldPush Kind = "would-push"
	// Pinned: a Cachix pin was created.
	Pinned Kind = "pinned"
	// Warning: something the user should know that does not fail the push.
	Warning Kind = "warning"
	// HostRetry: requests to Host fail in a way worth retrying (connection
	// refused, no answer, HTTP 5xx or 429) and are retried for a while
	// before the push gives up; Message says so in one line. Emitted once
	// per host and push, on the first retry.
	HostRetry Kind = "host-retry"
	// Summary: the push is over; the totals.
	Summary Kind = "summary"
)

// Event is one thing that happened. Fields not relevant to a Kind are zero
// and left out of JSON.
type Event struct {
	Kind  Kind   `json:"event"`
	Cache string `json:"cache,omitempty"`
	Path  string `json:"path,omitempty"`
	// NarSize is the uncompressed NAR size of Path (or the total, in Plan/Summary).
	NarSize uint64 `json:"narSize,omitempty"`
	// FileSize is the compressed size uploaded for Path (or the total).
	FileSize uint64 `json:"fileSize,omitempty"`
	// Bytes is the progress so far (NAR bytes) for Progress events.
	Bytes   uint64 `json:"bytes,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Counts for Plan and Summary.
	Closure int `json:"closure,omitempty"`
	Missing int `json:"missing,omitempty"`
	Present int `json:"present,omitempty"`
	Pushed  int `json:"pushed,omitempty"`
	Failed  int `json:"failedCount,omitempty"`
	// Stopped counts, in Summary, the paths not pushed because the push
	// was stopped (interrupted, or out of time) rather than failed.
	Stopped int  `json:"stopped,omitempty"`
	DryRun  bool `json:"dryRun,omitempty"`
	// Pin is the pin name for Pinned; Unchanged says the pin already
	// pointed at Path, so no revision was added.
	Pin string `json:"pin,omitempty"`
	// Host is the network host a HostRetry event is about.
	Host      string `json:"host,omitempty"`
	Unchanged bool   `json:"unchanged,omitempty"`
	Message   string `json:"message,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Discard drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Event) {}

// sinkKey is the context key of the sink.
type sinkKey struct{}

// NewContext returns ctx carrying sink, so that code deep in a push (a
// backend's HTTP client) reports to the same place as the pipeline.
func NewContext(ctx context.Context, sink Sink) context.Context {
	return context.WithValue(ctx, sinkKey{}, sink)
}

// FromContext returns the sink ctx carries, or Discard.
func FromContext(ctx context.Context) Sink {
	if s, ok := ctx.Value(sinkKey{}).(Sink); ok && s != nil {
		return s
	}
	return Discard
}

// Recorder keeps every event; tests use it.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit records e.
func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// OfKind returns the recorded events of one kind.
func (r *Recorder) OfKind(k Kind) []Event {
	var out []Event
	for _, e := range r.Events() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}
