package pushlib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Execution is what Execute did.
type Execution struct {
	// Pushed lists the paths uploaded and published, in publication order.
	Pushed []PathResult
	// Failed lists the paths that could not be pushed (stopped ones too).
	Failed []PathFailure
	// Stopped counts the failures that are only the push being stopped.
	Stopped int
	// NarBytes and FileBytes total the pushed paths.
	NarBytes, FileBytes uint64
}

// failedSet is the set of failed paths.
func (ex *Execution) failedSet() map[string]bool {
	failed := make(map[string]bool, len(ex.Failed))
	for _, f := range ex.Failed {
		failed[f.Path] = true
	}
	return failed
}

// Execute uploads the plan's missing paths with at most Jobs uploads at a
// time and publishes each once its references are published; at most one
// NAR per core is read and compressed at once (uploads in flight wait on
// the network without a core). A failure that will fail every other path
// too (the credentials, the cache gone, the host unreachable) stops the
// rest; paths never started then count as stopped.
func (p *Plan) Execute(ctx context.Context) *Execution {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x := &executor{plan: p, sink: p.Job.Events, cache: p.Job.Backend.String(), gate: newGate(p.Order),
		cpu: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))), ex: &Execution{Pushed: []PathResult{}}}
	var uploads, publishes sync.WaitGroup
	slots := make(chan struct{}, p.Job.jobs())
feed:
	for _, path := range p.Order {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
		uploads.Go(func() {
			defer func() { <-slots }()
			pending, err := x.upload(ctx, p.Missing[path])
			if err != nil {
				if isFatal(err) {
					// First, under the start lock: no other path is said
					// to start after this one's error.
					x.startMu.Lock()
					cancel()
					x.startMu.Unlock()
				}
				x.fail(path, err)
				return
			}
			// The slot is free for the next upload while this one waits
			// for its references.
			publishes.Go(func() { x.publish(ctx, path, pending) })
		})
	}
	uploads.Wait()
	publishes.Wait()
	x.flush(ctx)
	// Paths never started because the push was stopped count as failed.
	for _, path := range p.Order {
		if !x.gate.settled(path) {
			x.fail(path, ctx.Err())
		}
	}
	return x.ex
}

// executor is one Execute's state.
type executor struct {
	plan  *Plan
	sink  events.Sink
	cache string
	gate  *gate
	// cpu holds a slot per core: the stream's caller takes one while it
	// reads and compresses a NAR.
	cpu chan struct{}

	mu sync.Mutex
	ex *Execution
	// startMu orders a path's Start event before a fatal error stops
	// the push, or after it not at all.
	startMu sync.Mutex
}

// isFatal reports errors that will fail every other path too.
func isFatal(err error) bool {
	return errors.Is(err, backend.ErrUnauthorized) || errors.Is(err, backend.ErrCacheNotFound) ||
		errors.Is(err, backend.ErrUnreachable) || errors.Is(err, backend.ErrUnwritable) || errors.Is(err, context.Canceled)
}

// isStop reports the error of a path that did not fail but was stopped:
// the push was interrupted, ran out of time, or was cancelled because
// another path failed for good. Such paths are counted, not reported one
// by one.
func isStop(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// upload streams one path into the backend, retrying what a retry can fix.
func (x *executor) upload(ctx context.Context, info *store.PathInfo) (backend.Pending, error) {
	stream := func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		// The core is held even when w blocks: a sink that blocks (every
		// multipart buffer of an upload in flight) means the network, not
		// the CPU, is the bottleneck, and switching encoders costs more
		// than it saves.
		select {
		case x.cpu <- struct{}{}:
		case <-ctx.Done():
			return narstream.Result{}, ctx.Err()
		}
		defer func() { <-x.cpu }()
		// A big NAR takes the cores no other NAR is using (they would
		// idle) and is compressed on all of them; it never waits for one.
		cores := 1
		if narstream.Parallel(info.NarSize) && x.plan.Compression.Method == narstream.Zstd {
		more:
			for cores < cap(x.cpu) {
				select {
				case x.cpu <- struct{}{}:
					cores++
					defer func() { <-x.cpu }()
				default:
					break more
				}
			}
		}
		return narstream.StreamOn(ctx, info, x.plan.Compression, w, func(n uint64) {
			x.sink.Emit(events.Event{Kind: events.Progress, Cache: x.cache, Path: info.Path, Bytes: n, NarSize: info.NarSize})
		}, cores)
	}
	var pending backend.Pending
	err := x.retry(ctx, func(attempt int) error {
		x.startMu.Lock()
		if err := ctx.Err(); err != nil {
			x.startMu.Unlock()
			return err // stopped before it began: no "Pushing" line for it
		}
		x.sink.Emit(events.Event{Kind: events.Start, Cache: x.cache, Path: info.Path, NarSize: info.NarSize, Attempt: attempt})
		x.startMu.Unlock()
		var err error
		pending, err = x.plan.Job.Backend.Upload(ctx, info, x.plan.Compression, stream)
		return err
	}, func(attempt int, err error) {
		x.sink.Emit(events.Event{Kind: events.Retry, Cache: x.cache, Path: info.Path, Attempt: attempt, Error: err.Error()})
	})
	return pending, err
}

// retry runs attempt (numbered from 1) until it succeeds, fails for good
// (backend.Permanent) or has run 1+PathRetries times, waiting RetryDelay
// in between; before, if set, hears of each retry first. It returns the
// last error, or the context's once that ends.
func (x *executor) retry(ctx context.Context, attempt func(n int) error, before func(n int, err error)) error {
	var err error
	for n := 1; n <= 1+x.plan.Job.PathRetries; n++ {
		if n > 1 {
			if before != nil {
				before(n, err)
			}
			select {
			case <-time.After(x.plan.Job.RetryDelay):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err = attempt(n); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if backend.Permanent(err) {
			break
		}
	}
	return err
}

// publish waits for the path's references, then commits its narinfo.
func (x *executor) publish(ctx context.Context, path string, pending backend.Pending) {
	discard := func() { _ = pending.Discard(context.WithoutCancel(ctx)) }
	failedRef, err := x.gate.wait(ctx, path, x.plan.Missing[path].References)
	switch {
	case err != nil:
		discard()
		x.fail(path, err)
		return
	case failedRef != "":
		discard()
		if err := ctx.Err(); err != nil {
			x.fail(path, err) // stopped, like its reference
			return
		}
		x.fail(path, fmt.Errorf("not published because its reference %s could not be pushed", failedRef))
		return
	}
	if err := x.retry(ctx, func(int) error { return pending.Commit(ctx) }, nil); err != nil {
		discard()
		x.fail(path, fmt.Errorf("publishing: %w", err))
		return
	}
	r := pending.Result()
	x.mu.Lock()
	x.ex.Pushed = append(x.ex.Pushed, PathResult{Path: path, NarSize: r.NarSize, FileSize: r.FileSize})
	x.ex.NarBytes += r.NarSize
	x.ex.FileBytes += r.FileSize
	x.mu.Unlock()
	x.gate.settle(path, false)
	x.sink.Emit(events.Event{Kind: events.Done, Cache: x.cache, Path: path, NarSize: r.NarSize, FileSize: r.FileSize})
}

// flush makes what was published durable, for backends that do it at the
// end (backend.Flusher). If that fails, the published paths count as
// failed: a later push must not take them as done.
func (x *executor) flush(ctx context.Context) {
	f, ok := x.plan.Job.Backend.(backend.Flusher)
	if !ok || len(x.ex.Pushed) == 0 {
		return
	}
	err := f.Flush(context.WithoutCancel(ctx))
	if err == nil {
		return
	}
	for _, r := range x.ex.Pushed {
		x.ex.Failed = append(x.ex.Failed, PathFailure{Path: r.Path, Err: fmt.Errorf("published, but not made durable: %w", err)})
	}
	x.ex.Pushed, x.ex.NarBytes, x.ex.FileBytes = []PathResult{}, 0, 0
}

// fail records a path's failure once and releases its dependents.
func (x *executor) fail(path string, err error) {
	if err == nil {
		err = errors.New("cancelled")
	}
	if !x.gate.settle(path, true) {
		return
	}
	stop := isStop(err)
	x.mu.Lock()
	x.ex.Failed = append(x.ex.Failed, PathFailure{Path: path, Err: err})
	if stop {
		x.ex.Stopped++
	}
	x.mu.Unlock()
	if !stop {
		x.sink.Emit(events.Event{Kind: events.Failed, Cache: x.cache, Path: path, Error: err.Error()})
	}
}

// gate owns the "references first" rule: one slot per missing path,
// settled once the path is published or has failed, which its referrers
// wait for before they publish.
type gate struct {
	mu    sync.Mutex
	slots map[string]*slot
}

// slot is one path's: done is closed once it is settled.
type slot struct {
	done   chan struct{}
	failed bool
}

// newGate holds a slot for each of paths.
func newGate(paths []string) *gate {
	g := &gate{slots: make(map[string]*slot, len(paths))}
	for _, p := range paths {
		g.slots[p] = &slot{done: make(chan struct{})}
	}
	return g
}

// wait blocks until every reference of path that the gate holds (the
// others are in the cache already) is settled. It returns the first that
// failed, or ctx's error when ctx ends first.
func (g *gate) wait(ctx context.Context, path string, refs []string) (string, error) {
	for _, ref := range refs {
		s, ok := g.slots[ref]
		if !ok || ref == path {
			continue // already in the cache, or a self-reference
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if s.failed {
			return ref, nil
		}
	}
	return "", nil
}

// settle marks path published or failed; false when it already was.
func (g *gate) settle(path string, failed bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.slots[path]
	select {
	case <-s.done:
		return false
	default:
	}
	s.failed = failed
	close(s.done)
	return true
}

// settled reports whether path is published or failed.
func (g *gate) settled(path string) bool {
	select {
	case <-g.slots[path].done:
		return true
	default:
		return false
	}
}
