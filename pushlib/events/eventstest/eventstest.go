// Package eventstest records the events of a push, for tests.
package eventstest

import (
	"sync"

	"github.com/cachix-select/cachix-select/pushlib/events"
)

// Recorder keeps every event it is sent (an events.Sink).
type Recorder struct {
	mu     sync.Mutex
	events []events.Event
}

// Emit records e.
func (r *Recorder) Emit(e events.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

// OfKind returns the recorded events of one kind.
func (r *Recorder) OfKind(k events.Kind) []events.Event {
	var out []events.Event
	for _, e := range r.Events() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}
