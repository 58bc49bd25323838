// Package pushlib pushes selected Nix store paths, with their runtime
// closures, to a binary cache, skipping what the cache already has. It is
// everything the cachix-select command does, importable by other programs.
//
// The pipeline: compute the union of the roots' closures; ask the cache
// which paths it lacks; upload the missing NARs in parallel (references
// first), streaming each one from the filesystem through hashing and
// compression; publish each path's narinfo only once all its references
// are in the cache; then create the requested pins for roots whose closure
// made it. The library reports progress through events.Sink and never prints.
package pushlib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Root is one selected store path; its closure is pushed with it.
type Root struct {
	// Path is an absolute, resolved store path.
	Path string
	// Name labels the root in messages (defaults to the store path's name).
	Name string
	// Pin, when set, is created once the root's whole closure is in the cache.
	Pin *backend.Pin
}

// ClosureSource lists runtime closures and reads path metadata;
// *store.Store is the real one.
type ClosureSource interface {
	// ClosurePaths lists the closure of roots (cheap: no metadata).
	ClosurePaths(ctx context.Context, roots []string) ([]string, error)
	// Query returns the metadata of paths.
	Query(ctx context.Context, paths []string) (map[string]*store.PathInfo, error)
}

// Job is one push to one cache.
type Job struct {
	Backend backend.Backend
	Store   ClosureSource
	Roots   []Root
	// Compression overrides the cache's preference; nil means the cache's
	// preferred method, else zstd level 2.
	Compression *narstream.Compression
	// Jobs is the number of paths uploaded at once (default 8).
	Jobs int
	// DryRun reports what would be pushed and uploads nothing.
	DryRun bool
	// Events receives progress; nil discards it.
	Events events.Sink
	// PathRetries is how often a failed path upload is retried (default 3).
	PathRetries int
	// RetryDelay is the wait between whole-path retries (default 5s).
	RetryDelay time.Duration
	// Warnings found while preparing the job (credentials), shown first.
	Warnings []string
}

// PathResult is one uploaded path.
type PathResult struct {
	Path     string `json:"path"`
	NarSize  uint64 `json:"narSize"`
	FileSize uint64 `json:"fileSize"`
}

// PathFailure is one path that could not be pushed.
type PathFailure struct {
	Path string `json:"path"`
	Err  error  `json:"-"`
}

// Result is the outcome of a Job.
type Result struct {
	Cache string `json:"cache"`
	// Closure is the number of paths in the union of the roots' closures.
	Closure int `json:"closure"`
	// Present is how many of them the cache already had.
	Present int `json:"present"`
	// Missing lists the paths the cache lacked (what a push uploads).
	Missing []PathResult `json:"missing,omitempty"`
	// Pushed lists the paths uploaded and published by this run.
	Pushed []PathResult `json:"pushed"`
	// Failed lists the paths that could not be pushed.
	Failed []PathFailure `json:"-"`
	// Pinned lists the pins created.
	Pinned []string `json:"pinned,omitempty"`
	// Confirmed lists the roots whose whole closure is now in the cache.
	Confirmed []string `json:"confirmed"`
	// NarBytes and FileBytes total the uploaded paths.
	NarBytes  uint64 `json:"narBytes"`
	FileBytes uint64 `json:"fileBytes"`
	DryRun    bool   `json:"dryRun,omitempty"`
}

// ErrPushFailed is returned (wrapped) when some paths could not be pushed.
var ErrPushFailed = errors.New("push failed")

// Push runs one job. It returns a Result even on failure, describing what
// did happen. Errors that stop the whole push (the cache unusable, bad
// input) are returned as is; per-path failures come back as an error
// wrapping ErrPushFailed and the first path's cause.
func Push(ctx context.Context, job Job) (*Result, error) {
	sink := job.Events
	if sink == nil {
		sink = events.Discard
	}
	if job.Jobs <= 0 {
		job.Jobs = 8
	}
	if job.PathRetries < 0 {
		job.PathRetries = 0
	} else if job.PathRetries == 0 {
		job.PathRetries = 3
	}
	if job.RetryDelay == 0 {
		job.RetryDelay = 5 * time.Second
	}
	// Code deep in the push (a backend's HTTP retries) reports here too.
	ctx = events.NewContext(ctx, sink)
	cacheName := job.Backend.String()
	res := &Result{Cache: cacheName, DryRun: job.DryRun, Pushed: []PathResult{}, Confirmed: []string{}}
	for _, w := range job.Warnings {
		sink.Emit(events.Event{Kind: events.Warning, Cache: cacheName, Message: w})
	}

	roots := make([]string, 0, len(job.Roots))
	for _, r := range job.Roots {
		roots = append(roots, r.Path)
	}
	all, err := job.Store.ClosurePaths(ctx, roots)
	if err != nil {
		return res, err
	}
	res.Closure = len(all)

	info, err := job.Backend.Open(ctx)
	if err != nil {
		return res, fmt.Errorf("opening %s: %w", cacheName, err)
	}
	comp := narstream.DefaultCompression
	if info.PreferredCompression != nil {
		comp = *info.PreferredCompression
	}
	if job.Compression != nil {
		if job.Compression.Method != "" {
			comp.Method = job.Compression.Method
		}
		comp.Level = job.Compression.Level
	}
	if err := comp.Validate(); err != nil {
		return res, err
	}

	sort.Strings(all)
	missingSet, err := job.Backend.Missing(ctx, all)
	if err != nil {
		return res, fmt.Errorf("asking %s which paths it has: %w", cacheName, err)
	}
	// Metadata (NAR hash, size, references) only for what must be uploaded.
	var missingPaths []string
	for _, p := range all {
		if missingSet[p] {
			missingPaths = append(missingPaths, p)
		}
	}
	missing, err := job.Store.Query(ctx, missingPaths)
	if err != nil {
		return res, err
	}
	var missingNar uint64
	for _, pi := range missing {
		missingNar += pi.NarSize
	}
	closure := missing // what closureHasAny walks: present paths end the walk
	res.Present = res.Closure - len(missing)
	order := store.TopoSort(missing)
	for _, p := range order {
		res.Missing = append(res.Missing, PathResult{Path: p, NarSize: missing[p].NarSize})
	}
	sink.Emit(events.Event{Kind: events.Plan, Cache: cacheName, Closure: res.Closure, Missing: len(missing),
		Present: res.Present, NarSize: missingNar, DryRun: job.DryRun, Message: comp.String()})

	if job.DryRun {
		for _, p := range order {
			sink.Emit(events.Event{Kind: events.WouldPush, Cache: cacheName, Path: p, NarSize: missing[p].NarSize})
		}
		sink.Emit(events.Event{Kind: events.Summary, Cache: cacheName, Closure: res.Closure, Missing: len(missing),
			Present: res.Present, NarSize: missingNar, DryRun: true})
		return res, nil
	}

	up := &uploader{job: job, comp: comp, sink: sink, cache: cacheName, missing: missing, res: res,
		cpu: narstream.NewCPU(runtime.GOMAXPROCS(0))}
	up.run(ctx, order)

	failed := map[string]bool{}
	for _, f := range res.Failed {
		failed[f.Path] = true
	}
	// A root is confirmed when nothing in its closure failed.
	for _, r := range job.Roots {
		if !closureHasAny(closure, r.Path, failed) {
			res.Confirmed = append(res.Confirmed, r.Path)
		}
	}
	if ctx.Err() == nil {
		up.pin(ctx, failed, closure)
	}
	sink.Emit(events.Event{Kind: events.Summary, Cache: cacheName, Closure: res.Closure, Missing: len(missing),
		Present: res.Present, Pushed: len(res.Pushed), Failed: len(res.Failed) - up.stopped, Stopped: up.stopped,
		NarSize: res.NarBytes, FileSize: res.FileBytes})

	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(res.Failed) > 0 {
		first := res.Failed[0]
		for _, f := range res.Failed {
			if !isStop(f.Err) {
				first = f // the cause, not a path stopped because of it
				break
			}
		}
		return res, fmt.Errorf("%w: %d of %d paths could not be pushed to %s; first: %w",
			ErrPushFailed, len(res.Failed), len(missing), cacheName, first.Err)
	}
	return res, nil
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

// closureHasAny reports whether any path of root's closure is in set.
func closureHasAny(closure map[string]*store.PathInfo, root string, set map[string]bool) bool {
	if len(set) == 0 {
		return false
	}
	seen := map[string]bool{}
	stack := []string{root}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		if set[p] {
			return true
		}
		if pi, ok := closure[p]; ok {
			stack = append(stack, pi.References...)
		}
	}
	return false
}

// uploader runs the parallel upload and ordered publication of missing paths.
type uploader struct {
	job     Job
	comp    narstream.Compression
	sink    events.Sink
	cache   string
	missing map[string]*store.PathInfo
	res     *Result
	// cpu bounds the paths compressing at once to the cores; Jobs bounds
	// the paths in flight (uploads wait on the network without a core).
	cpu narstream.CPU

	mu sync.Mutex
	// stopped counts the failures that are only the push being stopped.
	stopped int
}

// slot tracks one path: done is closed once it is published or has failed.
type slot struct {
	done   chan struct{}
	failed bool
}

// run uploads every path in order (references first) with at most Jobs
// uploads at a time; a path is published once its references are.
func (u *uploader) run(ctx context.Context, order []string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make(map[string]*slot, len(order))
	for _, p := range order {
		slots[p] = &slot{done: make(chan struct{})}
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for i := 0; i < u.job.Jobs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				pending, err := u.upload(ctx, u.missing[p])
				if err != nil {
					u.fail(p, slots[p], err)
					if isFatal(err) {
						cancel()
					}
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					u.publish(ctx, p, pending, slots)
				}()
			}
		}()
	}
feed:
	for _, p := range order {
		select {
		case work <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	// Paths never started because the push was cancelled count as failed.
	for _, p := range order {
		s := slots[p]
		select {
		case <-s.done:
		default:
			u.fail(p, s, ctx.Err())
		}
	}
}

// isFatal reports errors that will fail every other path too.
func isFatal(err error) bool {
	return errors.Is(err, backend.ErrUnauthorized) || errors.Is(err, backend.ErrCacheNotFound) ||
		errors.Is(err, backend.ErrUnreachable) || errors.Is(err, context.Canceled)
}

// isStop reports the error of a path that did not fail but was stopped:
// the push was interrupted, ran out of time, or was cancelled because
// another path failed for good. Such paths are counted, not reported one
// by one.
func isStop(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// upload streams one path, retrying retryable failures.
func (u *uploader) upload(ctx context.Context, info *store.PathInfo) (backend.Pending, error) {
	stream := func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		return narstream.StreamLimited(ctx, info, u.comp, w, func(n uint64) {
			u.sink.Emit(events.Event{Kind: events.Progress, Cache: u.cache, Path: info.Path, Bytes: n, NarSize: info.NarSize})
		}, u.cpu)
	}
	var lastErr error
	for attempt := 1; attempt <= 1+u.job.PathRetries; attempt++ {
		if attempt > 1 {
			u.sink.Emit(events.Event{Kind: events.Retry, Cache: u.cache, Path: info.Path, Attempt: attempt, Error: lastErr.Error()})
			select {
			case <-time.After(u.job.RetryDelay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		u.sink.Emit(events.Event{Kind: events.Start, Cache: u.cache, Path: info.Path, NarSize: info.NarSize, Attempt: attempt})
		pending, err := u.job.Backend.Upload(ctx, info, u.comp, stream)
		if err == nil {
			return pending, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
		if backend.Permanent(err) {
			break
		}
	}
	return nil, lastErr
}

// publish waits for the path's references, then commits its narinfo.
func (u *uploader) publish(ctx context.Context, p string, pending backend.Pending, slots map[string]*slot) {
	s := slots[p]
	for _, ref := range u.missing[p].References {
		rs, ok := slots[ref]
		if !ok || ref == p {
			continue // already in the cache, or a self-reference
		}
		select {
		case <-rs.done:
		case <-ctx.Done():
			_ = pending.Discard(context.WithoutCancel(ctx))
			u.fail(p, s, ctx.Err())
			return
		}
		if rs.failed {
			_ = pending.Discard(context.WithoutCancel(ctx))
			if err := ctx.Err(); err != nil {
				u.fail(p, s, err) // stopped, like its reference
				return
			}
			u.fail(p, s, fmt.Errorf("not published because its reference %s could not be pushed", ref))
			return
		}
	}
	var err error
	for attempt := 1; attempt <= 1+u.job.PathRetries; attempt++ {
		if err = pending.Commit(ctx); err == nil || backend.Permanent(err) || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(u.job.RetryDelay):
		case <-ctx.Done():
		}
	}
	if err != nil {
		_ = pending.Discard(context.WithoutCancel(ctx))
		u.fail(p, s, fmt.Errorf("publishing: %w", err))
		return
	}
	r := pending.Result()
	u.mu.Lock()
	u.res.Pushed = append(u.res.Pushed, PathResult{Path: p, NarSize: r.NarSize, FileSize: r.FileSize})
	u.res.NarBytes += r.NarSize
	u.res.FileBytes += r.FileSize
	u.mu.Unlock()
	close(s.done)
	u.sink.Emit(events.Event{Kind: events.Done, Cache: u.cache, Path: p, NarSize: r.NarSize, FileSize: r.FileSize})
}

// fail records a path failure once and releases its dependents.
func (u *uploader) fail(p string, s *slot, err error) {
	if err == nil {
		err = errors.New("cancelled")
	}
	u.mu.Lock()
	select {
	case <-s.done:
		u.mu.Unlock()
		return
	default:
	}
	s.failed = true
	close(s.done)
	u.res.Failed = append(u.res.Failed, PathFailure{Path: p, Err: err})
	stop := isStop(err)
	if stop {
		u.stopped++
	}
	u.mu.Unlock()
	if !stop {
		u.sink.Emit(events.Event{Kind: events.Failed, Cache: u.cache, Path: p, Error: err.Error()})
	}
}

// pin creates the pins of roots whose closure is entirely in the cache. A
// pin that already points at its root is left alone: a new revision of the
// same path would only use up a slot of its keep policy.
func (u *uploader) pin(ctx context.Context, failed map[string]bool, closure map[string]*store.PathInfo) {
	pinner, canPin := u.job.Backend.(backend.Pinner)
	var current map[string]string
	if reader, ok := u.job.Backend.(backend.PinReader); ok && canPin && hasPins(u.job.Roots) {
		// Best effort: when listing fails, pins are simply created again.
		current, _ = reader.PinTargets(ctx)
	}
	for _, r := range u.job.Roots {
		if r.Pin == nil {
			continue
		}
		if !canPin {
			u.sink.Emit(events.Event{Kind: events.Warning, Cache: u.cache, Path: r.Path, Pin: r.Pin.Name,
				Message: fmt.Sprintf("pin %q not created: pins are a Cachix feature and %s is a plain binary cache", r.Pin.Name, u.cache)})
			continue
		}
		if closureHasAny(closure, r.Path, failed) {
			u.sink.Emit(events.Event{Kind: events.Warning, Cache: u.cache, Path: r.Path, Pin: r.Pin.Name,
				Message: fmt.Sprintf("pin %q not created: the closure of %s is not completely in the cache", r.Pin.Name, r.Path)})
			continue
		}
		pin := *r.Pin
		pin.StorePath = r.Path
		if current[pin.Name] == pin.StorePath {
			u.res.Pinned = append(u.res.Pinned, pin.Name)
			u.sink.Emit(events.Event{Kind: events.Pinned, Cache: u.cache, Path: r.Path, Pin: pin.Name, Unchanged: true})
			continue
		}
		if err := pinner.CreatePin(ctx, pin); err != nil {
			u.mu.Lock()
			u.res.Failed = append(u.res.Failed, PathFailure{Path: r.Path, Err: fmt.Errorf("pinning %q: %w", pin.Name, err)})
			u.mu.Unlock()
			u.sink.Emit(events.Event{Kind: events.Failed, Cache: u.cache, Path: r.Path, Pin: pin.Name, Error: err.Error()})
			continue
		}
		u.res.Pinned = append(u.res.Pinned, pin.Name)
		u.sink.Emit(events.Event{Kind: events.Pinned, Cache: u.cache, Path: r.Path, Pin: pin.Name})
	}
}
