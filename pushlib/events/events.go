// Package events is how the library reports what it is doing, and the one
// place the --json output's schema is defined. The library never prints:
// it emits events to a Sink, and package ui renders them as progress bars,
// plain lines or JSON lines.
//
// # The JSON lines
//
// With --json, push, activate and queue flush write one JSON object per
// line on stdout: an Event for each thing that happens (its "event" field
// is its Kind; fields that do not apply to a kind are left out; progress
// events only with --verbose), and after each cache's events one
// ResultLine ("event": "result"). Kinds, in the order they usually come:
//
//	warning     message (and cache, path, pin when it is about one)
//	plan        cache, closure, missing, present, narSize, dryRun, message (the compression),
//	            excluded, pruned, skipped (counts) and selection (them in words), when not 0
//	excluded    cache, path, narSize, message (the rule), upstream (left to an upstream
//	            cache: its dependents are pushed); one per path the selection leaves out
//	pruned      cache, path, message (which excluded path it depends on, and the rule)
//	not-pushed  cache, path (a root), message (why the selection keeps it out), dryRun
//	would-push  cache, path, narSize (dry runs only, one per missing path, references first)
//	start       cache, path, narSize, attempt (2 and more on a retry)
//	progress    cache, path, bytes (NAR bytes read so far), narSize
//	retry       cache, path, attempt (the next one), error
//	host-retry  host, message (once per host and push)
//	done        cache, path, narSize, fileSize (the path is published)
//	failed      cache, path, error (and pin, when creating the pin failed)
//	pinned      cache, path, pin, unchanged (the pin already pointed there)
//	summary     cache, closure, missing, present, pushed, failedCount, stopped, narSize, fileSize, dryRun
//	result      see ResultLine
//
// New fields and kinds may be added; existing ones keep their names and
// meanings.
package events

import (
	"context"
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
	// Excluded: a path the cache lacks that the selection leaves out
	// (an exclusion rule, or the upstream filter).
	Excluded Kind = "excluded"
	// Pruned: a path left out because it depends on an excluded path.
	Pruned Kind = "pruned"
	// NotPushed: a root the selection keeps out of the cache, and why.
	NotPushed Kind = "not-pushed"
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
	Stopped int `json:"stopped,omitempty"`
	// Excluded, Pruned and Skipped count, in Plan, the paths the
	// selection leaves out, those pruned with them, and those of build
	// closures not realised locally; Selection says it in words.
	Excluded  int    `json:"excluded,omitempty"`
	Pruned    int    `json:"pruned,omitempty"`
	Skipped   int    `json:"skipped,omitempty"`
	Selection string `json:"selection,omitempty"`
	// Upstream marks, in Excluded, a path left to an upstream cache.
	Upstream bool `json:"upstream,omitempty"`
	DryRun   bool `json:"dryRun,omitempty"`
	// Pin is the pin name for Pinned; Unchanged says the pin already
	// pointed at Path, so no revision was added.
	Pin string `json:"pin,omitempty"`
	// Host is the network host a HostRetry event is about.
	Host      string `json:"host,omitempty"`
	Unchanged bool   `json:"unchanged,omitempty"`
	Message   string `json:"message,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ResultLine is the last line of a cache's push in the JSON output.
type ResultLine struct {
	// Event is "result".
	Event string `json:"event"`
	Cache string `json:"cache"`
	// Closure is the number of paths in the union of the roots' closures;
	// Present how many of them the cache had.
	Closure int `json:"closure"`
	Present int `json:"present"`
	// Missing lists the paths the cache lacked (what a push uploads),
	// references first.
	Missing []PathSize `json:"missing,omitempty"`
	// Pushed lists the paths uploaded and published by this run.
	Pushed []PathSize `json:"pushed"`
	// Pinned lists the pins that point at their roots now.
	Pinned []string `json:"pinned,omitempty"`
	// Confirmed lists the roots whose whole closure is in the cache now.
	Confirmed []string `json:"confirmed"`
	// NotPushed lists the roots the selection keeps out, and why.
	NotPushed []Reason `json:"notPushed,omitempty"`
	// Excluded lists the paths the rules and the upstream filter left
	// out (upstream: left to an upstream cache); Pruned, the paths left
	// out for depending on an excluded one; LeftToUpstream, the excluded
	// paths that pushed paths refer to; Skipped, paths not realised
	// locally (build closures, om ci's allDeps).
	Excluded       []ExcludedPath `json:"excluded,omitempty"`
	Pruned         []PrunedPath   `json:"pruned,omitempty"`
	LeftToUpstream []string       `json:"leftToUpstream,omitempty"`
	Skipped        []string       `json:"skipped,omitempty"`
	// NarBytes and FileBytes total the pushed paths.
	NarBytes  uint64 `json:"narBytes"`
	FileBytes uint64 `json:"fileBytes"`
	DryRun    bool   `json:"dryRun,omitempty"`
	// Failed lists the paths (or pins) that could not be pushed, and why.
	Failed []Failure `json:"failed"`
	// Error is the push's error, if it failed; ExitCode what the command
	// exits with for it (0, 1, 2, or 130/143 when interrupted).
	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exitCode"`
}

// PathSize is a path and its sizes (FileSize 0 for a path not uploaded).
type PathSize struct {
	Path     string `json:"path"`
	NarSize  uint64 `json:"narSize"`
	FileSize uint64 `json:"fileSize"`
}

// Reason is a root and why it is not pushed.
type Reason struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// ExcludedPath is a path the selection leaves out and the rule.
type ExcludedPath struct {
	Path     string `json:"path"`
	NarSize  uint64 `json:"narSize"`
	Rule     string `json:"rule"`
	Upstream bool   `json:"upstream"`
}

// PrunedPath is a path left out because it depends on Excluded.
type PrunedPath struct {
	Path     string `json:"path"`
	Excluded string `json:"excluded"`
	Rule     string `json:"rule"`
}

// Failure is a path that could not be pushed.
type Failure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
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
