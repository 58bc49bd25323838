package pushlib

import (
	"context"
	"fmt"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/events"
)

// noPinsHere is the warning for the pin of root r on a cache that has
// no pins; done says what became of it ("not created", "would not be
// created").
func noPinsHere(cache string, r Root, done string) events.Event {
	return events.Event{Kind: events.Warning, Cache: cache, Path: r.Path, Pin: r.Pin.Name,
		Message: fmt.Sprintf("pin %q %s: pins are a Cachix feature and %s is a plain binary cache", r.Pin.Name, done, cache)}
}

// warnNoPins warns, in a dry run, of each pin the cache cannot have.
func (p *Plan) warnNoPins() {
	if _, canPin := p.Job.Backend.(backend.Pinner); canPin {
		return
	}
	for _, r := range p.Job.Roots {
		if r.Pin != nil {
			p.Job.Events.Emit(noPinsHere(p.Job.Backend.String(), r, "would not be created"))
		}
	}
}

// Pin creates the pins of the roots whose closure is entirely in the cache
// (failed lists the paths that are not), the last step of a push. A pin
// that already points at its root is left alone: a new revision of the
// same path would only use up a slot of its keep policy. It returns the
// pins that point at their roots now, and the pins that could not be
// created.
func (p *Plan) Pin(ctx context.Context, failed map[string]bool) (pinned []string, failures []PathFailure) {
	job, sink, cache := p.Job, p.Job.Events, p.Job.Backend.String()
	pinner, canPin := job.Backend.(backend.Pinner)
	var current map[string]string
	if lister, ok := job.Backend.(backend.PinLister); ok && canPin && hasPins(job.Roots) {
		// Best effort: when listing fails, pins are simply created again.
		current, _ = backend.PinTargets(ctx, lister)
	}
	for _, r := range job.Roots {
		if r.Pin == nil {
			continue
		}
		if !canPin {
			sink.Emit(noPinsHere(cache, r, "not created"))
			continue
		}
		if why, out := p.NotPushed[r.Path]; out {
			sink.Emit(events.Event{Kind: events.Warning, Cache: cache, Path: r.Path, Pin: r.Pin.Name,
				Message: fmt.Sprintf("pin %q not created: %s is not pushed (%s)", r.Pin.Name, r.Path, why)})
			continue
		}
		if strings.HasSuffix(r.Path, ".drv") {
			sink.Emit(events.Event{Kind: events.Warning, Cache: cache, Path: r.Path, Pin: r.Pin.Name,
				Message: fmt.Sprintf("pin %q not created: %s is a derivation, and derivations are not pushed", r.Pin.Name, r.Path)})
			continue
		}
		if p.closureHasAny(r.Path, failed) {
			sink.Emit(events.Event{Kind: events.Warning, Cache: cache, Path: r.Path, Pin: r.Pin.Name,
				Message: fmt.Sprintf("pin %q not created: the closure of %s is not completely in the cache", r.Pin.Name, r.Path)})
			continue
		}
		pin := *r.Pin
		pin.StorePath = r.Path
		if current[pin.Name] == pin.StorePath {
			pinned = append(pinned, pin.Name)
			sink.Emit(events.Event{Kind: events.Pinned, Cache: cache, Path: r.Path, Pin: pin.Name, Unchanged: true})
			continue
		}
		if err := pinner.CreatePin(ctx, pin); err != nil {
			failures = append(failures, PathFailure{Path: r.Path, Err: fmt.Errorf("pinning %q: %w", pin.Name, err)})
			sink.Emit(events.Event{Kind: events.Failed, Cache: cache, Path: r.Path, Pin: pin.Name, Error: err.Error()})
			continue
		}
		pinned = append(pinned, pin.Name)
		sink.Emit(events.Event{Kind: events.Pinned, Cache: cache, Path: r.Path, Pin: pin.Name})
	}
	return pinned, failures
}

// hasPins reports whether any root asks for a pin.
func hasPins(roots []Root) bool {
	for _, r := range roots {
		if r.Pin != nil {
			return true
		}
	}
	return false
}
