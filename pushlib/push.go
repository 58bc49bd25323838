// Package pushlib pushes selected Nix store paths, with their runtime
// closures, to a binary cache, skipping what the cache already has. It is
// everything the cachix-select command does, importable by other programs.
//
// A push is three steps (Push runs them and reports):
//
//   - Plan: the union of the roots' closures, what the cache lacks in
//     topological order, their NAR sizes, the compression. A dry run is a
//     Plan and its report.
//   - Execute: upload the missing NARs in parallel (references first, at
//     most Jobs at once, at most one compressing per core), streaming each
//     one from the filesystem through hashing and compression; publish each
//     path's narinfo only once all its references are in the cache (the
//     gate); retry what failed for a reason a retry can fix.
//   - Pin: create the requested pins of roots whose whole closure made it.
//
// The library reports progress through events.Sink and never prints.
package pushlib

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/words"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// Root is one selected store path; its closure is pushed with it.
type Root struct {
	// Path is an absolute, resolved store path.
	Path string
	// Name labels the root in messages (defaults to the store path's name).
	Name string
	// Pin, when set, is created once the root's whole closure is in the cache.
	Pin *backend.Pin
	// Closure is the closure it is pushed with: Runtime ("" too) or Build.
	Closure selection.Closure
	// IfValid skips the root, with a count, when it is not a valid path
	// of the local store (om ci's allDeps), instead of failing the push.
	IfValid bool
	// Source says where the root was listed, for messages
	// ("m.json: paths[1].storePath"); "" for the command line.
	Source string
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
	// Target is where and how: its compression, jobs and warnings are
	// used (nil: the defaults).
	Target  *target.Target
	Backend backend.Backend
	Store   ClosureSource
	Roots   []Root
	// Select is the selection applied to the closures: exclusion rules
	// and the upstream filter, made Effective for the cache (the zero
	// value leaves nothing out).
	Select selection.Rules
	// Patterns are the exclusion patterns given on the command line (the
	// manifests' are left out: a module's '*-doc' matching nothing new
	// on a switch is no news), warned about when they leave out nothing.
	Patterns []string
	// DryRun reports what would be pushed and uploads nothing.
	DryRun bool
	// Events receives progress; nil discards it.
	Events events.Sink
	// PathRetries is how often a failed path upload is retried (default 3).
	PathRetries int
	// RetryDelay is the wait between whole-path retries (default 5s).
	RetryDelay time.Duration
	// SkipInvalid leaves out, with a warning each, the roots that are not
	// valid in the local store (Store must then be a ValiditySource), and
	// reports Skipped, the inputs already left out, the same way: what
	// `cachix push` does with its arguments. Without any root left the
	// push fails with bad input.
	SkipInvalid bool
	Skipped     []PathFailure
}

// PathResult is one path and its sizes (FileSize 0 when not uploaded).
type PathResult = events.PathSize

// PathFailure is one path that could not be pushed.
type PathFailure struct {
	Path string
	Err  error
}

// Result is the outcome of a Job.
type Result struct {
	Cache string
	// Closure is the number of paths in the union of the roots' closures.
	Closure int
	// Present is how many of them the cache already had.
	Present int
	// Missing lists the paths the cache lacked (what a push uploads).
	Missing []PathResult
	// Pushed lists the paths uploaded and published by this run.
	Pushed []PathResult
	// Failed lists the paths that could not be pushed.
	Failed []PathFailure
	// Pinned lists the pins that point at their roots now.
	Pinned []string
	// Confirmed lists the roots whose whole closure is now in the cache
	// (under the selection's semantics).
	Confirmed []string
	// NotPushed lists the roots the selection keeps out of the cache,
	// and why: neither failed nor confirmed.
	NotPushed []events.Reason
	// Excluded lists the paths the rules and the upstream filter left
	// out; Pruned, those left out for depending on one; LeftToUpstream,
	// the excluded paths that pushed paths refer to; Skipped, the paths
	// not realised locally (build closures, om ci's allDeps).
	Excluded       []events.ExcludedPath
	Pruned         []events.PrunedPath
	LeftToUpstream []string
	Skipped        []string
	// NarBytes and FileBytes total the uploaded paths.
	NarBytes, FileBytes uint64
	DryRun              bool
}

// Line is the result as the JSON output's last line for its cache, with
// the push's error (nil if none) and the exit code it means.
func (r *Result) Line(err error, code int) events.ResultLine {
	l := events.ResultLine{Event: "result", Failed: []events.Failure{}, ExitCode: code}
	if r != nil {
		l.Cache, l.Closure, l.Present, l.Missing, l.Pushed = r.Cache, r.Closure, r.Present, r.Missing, r.Pushed
		l.Pinned, l.Confirmed, l.NarBytes, l.FileBytes, l.DryRun = r.Pinned, r.Confirmed, r.NarBytes, r.FileBytes, r.DryRun
		l.NotPushed, l.Excluded, l.Pruned, l.LeftToUpstream, l.Skipped = r.NotPushed, r.Excluded, r.Pruned, r.LeftToUpstream, r.Skipped
		for _, f := range r.Failed {
			l.Failed = append(l.Failed, events.Failure{Path: f.Path, Error: f.Err.Error()})
		}
	}
	if err != nil {
		l.Error = err.Error()
	}
	return l
}

// RunJobs pushes each job in turn, its events to sink and, once it is
// over, its result to done; it stops early when ctx ends. It returns the
// first job's error.
func RunJobs(ctx context.Context, jobs []Job, sink events.Sink, done func(*Result, error)) error {
	var first error
	for _, job := range jobs {
		job.Events = sink
		res, err := Push(ctx, job)
		if done != nil {
			done(res, err)
		}
		if err != nil && first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return first
}

// report puts the plan's selection into the result.
func (p *Plan) report(res *Result) {
	for _, q := range p.excludedSorted() {
		e := p.Excluded[q]
		res.Excluded = append(res.Excluded, events.ExcludedPath{Path: q, NarSize: e.NarSize, Rule: e.Rule, Upstream: e.Upstream})
	}
	for _, q := range p.prunedSorted() {
		pr := p.Pruned[q]
		res.Pruned = append(res.Pruned, events.PrunedPath{Path: q, Excluded: pr.Excluded, Rule: pr.Rule})
	}
	seen := map[string]bool{}
	for _, r := range p.Job.Roots {
		if why, ok := p.NotPushed[r.Path]; ok && !seen[r.Path] {
			seen[r.Path] = true
			res.NotPushed = append(res.NotPushed, events.Reason{Path: r.Path, Reason: why})
		}
	}
	res.LeftToUpstream, res.Skipped = p.LeftToUpstream, p.Skipped
}

// emitSelection reports what the selection leaves out: each excluded and
// pruned path, and each root not pushed.
func emitSelection(sink events.Sink, cache string, res *Result, dryRun bool) {
	for _, e := range res.Excluded {
		sink.Emit(events.Event{Kind: events.Excluded, Cache: cache, Path: e.Path, NarSize: e.NarSize, Message: e.Rule,
			Upstream: e.Upstream, DryRun: dryRun})
	}
	for _, pr := range res.Pruned {
		sink.Emit(events.Event{Kind: events.Pruned, Cache: cache, Path: pr.Path, DryRun: dryRun,
			Message: fmt.Sprintf("depends on %s, excluded by %s", pr.Excluded, pr.Rule)})
	}
	for _, np := range res.NotPushed {
		sink.Emit(events.Event{Kind: events.NotPushed, Cache: cache, Path: np.Path, Message: np.Reason, DryRun: dryRun})
	}
}

// eventWarning is a warning about a path of the job's cache.
func eventWarning(job Job, path, msg string) events.Event {
	return events.Event{Kind: events.Warning, Cache: job.Backend.String(), Path: path, Message: msg}
}

// ErrPushFailed is returned (wrapped) when some paths could not be pushed.
var ErrPushFailed = errors.New("push failed")

// withDefaults fills in what the job leaves unset.
func (job Job) withDefaults() Job {
	if job.Events == nil {
		job.Events = events.Discard
	}
	if job.Target == nil {
		job.Target = &target.Target{}
	}
	if job.PathRetries < 0 {
		job.PathRetries = 0
	} else if job.PathRetries == 0 {
		job.PathRetries = 3
	}
	if job.RetryDelay == 0 {
		job.RetryDelay = 5 * time.Second
	}
	return job
}

// jobs is the number of paths uploaded at once.
func (job Job) jobs() int {
	if job.Target.Jobs > 0 {
		return job.Target.Jobs
	}
	return target.DefaultJobs
}

// Push runs one job: Plan, then (unless it is a dry run) Execute and Pin,
// reporting each step's events. It returns a Result even on failure,
// describing what did happen. Errors that stop the whole push (the cache
// unusable, bad input) are returned as is; per-path failures come back as
// an error wrapping ErrPushFailed and the first path's cause.
func Push(ctx context.Context, job Job) (*Result, error) {
	job = job.withDefaults()
	sink := job.Events
	// Code deep in the push (a backend's HTTP retries) reports here too.
	ctx = events.NewContext(ctx, sink)
	cache := job.Backend.String()
	res := &Result{Cache: cache, DryRun: job.DryRun, Pushed: []PathResult{}, Confirmed: []string{}}
	for _, w := range job.Target.Warnings {
		sink.Emit(events.Event{Kind: events.Warning, Cache: cache, Message: w})
	}

	// Roots that are not valid are found before planning only when a
	// build closure is asked for; otherwise the closure query, which fails
	// on them anyway, tells: the common push pays no validity query.
	lazy := job.SkipInvalid && len(job.Roots) > 0 && !hasBuildRoots(job)
	if job.SkipInvalid && !lazy {
		var err error
		if job, err = skipInvalid(ctx, job, true); err != nil {
			return res, err
		}
	}
	plan, err := job.Plan(ctx)
	if lazy {
		invalid := (*store.InvalidPathError)(nil)
		check := errors.As(err, &invalid)
		var serr error
		if job, serr = skipInvalid(ctx, job, check); serr != nil {
			return res, serr
		}
		if check {
			plan, err = job.Plan(ctx)
		}
	}
	res.Closure = plan.Closure
	if err != nil {
		return res, withSource(job.Roots, err)
	}
	res.Present = plan.Present()
	for _, p := range plan.Order {
		res.Missing = append(res.Missing, PathResult{Path: p, NarSize: plan.Missing[p].NarSize})
	}
	if w := plan.signatureWarning(ctx); w != "" {
		sink.Emit(events.Event{Kind: events.Warning, Cache: cache, Message: w})
	}
	plan.report(res)
	if len(plan.Excluded) == 0 && len(plan.Order) > 0 && len(job.Patterns) > 0 {
		// A misspelt pattern leaves out nothing: say so, not silently push it all.
		sink.Emit(events.Event{Kind: events.Warning, Cache: cache, Message: fmt.Sprintf(
			"the exclusion patterns (%s) match none of the %s the cache lacks: nothing is left out",
			strings.Join(job.Patterns, ", "), words.Count(len(plan.Order), "path", "paths"))})
	}
	if t := job.Target; len(plan.LeftToUpstream) > 0 && t.Ref != nil && t.Ref.Scheme() == "cachix" {
		sink.Emit(events.Event{Kind: events.Warning, Cache: cache, Message: fmt.Sprintf(
			"%d paths are left to an upstream cache, but Cachix serves a narinfo only once its whole closure is in the cache "+
				"or in cache.nixos.org: the paths that refer to them stay hidden (and cannot be pinned) unless cache.nixos.org has them",
			len(plan.LeftToUpstream))})
	}
	sink.Emit(events.Event{Kind: events.Plan, Cache: cache, Closure: plan.Closure, Missing: len(plan.Order),
		Present: res.Present, NarSize: plan.NarSize, DryRun: job.DryRun, Message: plan.Compression.String(),
		Excluded: len(plan.Excluded), Pruned: len(plan.Pruned), Skipped: len(plan.Skipped), Selection: plan.describeSelection()})
	if job.DryRun {
		for _, p := range plan.Order {
			sink.Emit(events.Event{Kind: events.WouldPush, Cache: cache, Path: p, NarSize: plan.Missing[p].NarSize})
		}
		emitSelection(sink, cache, res, true)
		plan.warnNoPins()
		sink.Emit(events.Event{Kind: events.Summary, Cache: cache, Closure: plan.Closure, Missing: len(plan.Order),
			Present: res.Present, NarSize: plan.NarSize, DryRun: true})
		return res, nil
	}
	emitSelection(sink, cache, res, false)

	ex := plan.Execute(ctx)
	res.Pushed, res.Failed, res.NarBytes, res.FileBytes = ex.Pushed, ex.Failed, ex.NarBytes, ex.FileBytes
	failed := ex.failedSet()
	// A root is confirmed when nothing in its closure failed and the
	// selection did not keep it out.
	confirmed := map[string]bool{} // a path pinned under two names is one root twice
	for _, r := range job.Roots {
		if _, out := plan.NotPushed[r.Path]; out {
			continue
		}
		if !confirmed[r.Path] && !plan.closureHasAny(r.Path, failed) {
			confirmed[r.Path] = true
			res.Confirmed = append(res.Confirmed, r.Path)
		}
	}
	pinFailed := 0
	if ctx.Err() == nil {
		pinned, pinFailures := plan.Pin(ctx, failed)
		res.Pinned = pinned
		res.Failed = append(res.Failed, pinFailures...)
		pinFailed = len(pinFailures)
	}
	sink.Emit(events.Event{Kind: events.Summary, Cache: cache, Closure: plan.Closure, Missing: len(plan.Order),
		Present: res.Present, Pushed: len(res.Pushed), Failed: len(res.Failed) - ex.Stopped, Stopped: ex.Stopped,
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
		if pathFailed := len(res.Failed) - pinFailed; pathFailed > 0 {
			return res, fmt.Errorf("%w: %d of %d paths could not be pushed to %s; first: %w",
				ErrPushFailed, pathFailed, len(plan.Order), cache, first.Err)
		}
		pins := "pins"
		if pinFailed == 1 {
			pins = "pin"
		}
		return res, fmt.Errorf("%w: the paths were pushed to %s, but %d %s could not be set; first: %w",
			ErrPushFailed, cache, pinFailed, pins, first.Err)
	}
	return res, nil
}

// withSource names where the first invalid path of err was listed (a
// manifest's paths[i]), when a root says.
func withSource(roots []Root, err error) error {
	var invalid *store.InvalidPathError
	if !errors.As(err, &invalid) || len(invalid.Paths) == 0 {
		return err
	}
	for _, r := range roots {
		if r.Path == invalid.Paths[0] && r.Source != "" {
			return fmt.Errorf("%s: %w", r.Source, err)
		}
	}
	return err
}

// hasBuildRoots reports whether a root asks for its build closure.
func hasBuildRoots(job Job) bool {
	for _, r := range job.Roots {
		if r.Closure == selection.Build {
			return true
		}
	}
	return false
}

// skipInvalid warns about the inputs the job skips and, with check, drops
// its roots that are not valid in the local store; without a root left it
// fails.
func skipInvalid(ctx context.Context, job Job, check bool) (Job, error) {
	skipped := append([]PathFailure(nil), job.Skipped...)
	if v, ok := job.Store.(ValiditySource); ok && check && len(job.Roots) > 0 {
		paths := make([]string, len(job.Roots))
		for i, r := range job.Roots {
			paths[i] = r.Path
		}
		invalid, err := v.Invalid(ctx, paths)
		if err != nil {
			return job, err
		}
		gone := map[string]bool{}
		for _, p := range invalid {
			gone[p] = true
		}
		var keep []Root
		for _, r := range job.Roots {
			if gone[r.Path] {
				skipped = append(skipped, PathFailure{Path: r.Path, Err: &store.InvalidPathError{Paths: []string{r.Path}}})
				continue
			}
			keep = append(keep, r)
		}
		job.Roots = keep
	}
	cache := job.Backend.String()
	if len(job.Roots) == 0 && len(skipped) > 0 {
		// Nothing left: one line says why, instead of a warning a path.
		more := ""
		if len(skipped) > 1 {
			more = fmt.Sprintf(" (and the %d other paths given are not either)", len(skipped)-1)
		}
		return job, fault.BadInputf("nothing to push to %s: %v%s", cache, skipped[0].Err, more)
	}
	for _, s := range skipped {
		job.Events.Emit(events.Event{Kind: events.Warning, Cache: cache, Path: s.Path,
			Message: fmt.Sprintf("%v; skipping it", s.Err)})
	}
	return job, nil
}

// signatureWarning says when paths the cache already has carry no valid
// signature of the push's signing key ("" when they do, or the backend
// cannot tell): they are skipped as present, yet Nix requiring that key
// refuses them.
func (p *Plan) signatureWarning(ctx context.Context) string {
	checker, ok := p.Job.Backend.(backend.SignatureChecker)
	if !ok || p.Present() == 0 {
		return ""
	}
	unsigned, checked, err := checker.Unsigned(ctx, p.PresentPaths)
	if err != nil || len(unsigned) == 0 {
		return ""
	}
	key := "the signing key"
	if k := p.Job.Target.SigningKey; k != nil {
		key = "key " + k.Name
	}
	return fmt.Sprintf("%d of the %d paths already in %s that were checked carry no valid signature of %s (first: %s): "+
		"Nix that requires this key refuses them, and they are not pushed again; remove their .narinfo files "+
		"from the cache and push again to re-sign them", len(unsigned), checked, p.Job.Backend, key, unsigned[0])
}
