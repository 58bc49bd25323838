package activate

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/words"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// Mode is how an activation pushes.
type Mode string

// The modes.
const (
	// Background queues the manifest and has a Launcher start the flush.
	Background Mode = "background"
	// Foreground queues the manifest and flushes the queue now, bounded.
	Foreground Mode = "foreground"
)

// DefaultDryRunTimeout bounds a dry run, so that `home-manager switch -n`
// or `nixos-rebuild dry-activate` never waits out HTTP retries against an
// unreachable cache.
const DefaultDryRunTimeout = 30 * time.Second

// Request is one activation.
type Request struct {
	// File is the manifest.
	File string
	// Root, if set, is pushed as if the manifest listed it: the generation
	// being activated, which the manifest cannot list.
	Root *Root
	Mode Mode
	// DryRun reports what a push would do and queues nothing.
	DryRun bool
	// Timeout bounds a foreground flush (0: no bound) or a dry run (0:
	// DefaultDryRunTimeout).
	Timeout time.Duration
	// StateDir is the queue's directory.
	StateDir string
	Options  Options
	// Results hears each dry-run job's result, after its events.
	Results func(*pushlib.Result, error)
}

// Outcome is what an activation did, for the caller to say.
type Outcome struct {
	// Queued says the manifest waits in the queue.
	Queued bool
	// New is how many of the manifest's paths are not recorded as pushed
	// (0: the fast path, nothing done).
	New int
	// Target names the cache.
	Target string
	// Started says how the background push was started ("log: …").
	Started string
	// Flush is what a foreground flush did.
	Flush *FlushReport
}

// Run activates: it exits at once when every path of the manifest is
// recorded as pushed; otherwise it queues the manifest and pushes it, in
// the background (launch starts it, unless a flush is running, which will
// take it) or in the foreground. A push that cannot happen now stays
// queued. Errors are the caller's to turn into warnings (the hooks never
// break a switch unless asked to).
func Run(ctx context.Context, req Request, launch Launcher) (Outcome, error) {
	var out Outcome
	if req.Mode != Background && req.Mode != Foreground {
		return out, fault.BadInputf("--mode must be background or foreground, not %q", req.Mode)
	}
	opts := req.Options
	raw, err := manifest.ReadFile(req.File)
	if err != nil {
		return out, err
	}
	if req.Root != nil {
		if req.Root.StorePath, err = CheckRoot(req.Root.StorePath, opts.Store.Dir); err != nil {
			return out, fault.BadInputf("%v", err)
		}
		if raw, err = WithRoot(raw, *req.Root); err != nil {
			return out, err
		}
	}
	m, err := manifest.ParseWith(raw, req.File, manifest.Options{StoreDir: opts.Store.Dir})
	if err != nil {
		return out, err
	}
	if req.DryRun {
		return out, dryRun(ctx, req, m)
	}
	d, err := queue.Open(req.StateDir)
	if err != nil {
		return out, err
	}
	todo, err := Unconfirmed(d, m, opts, time.Now())
	if out.New = len(todo); err != nil || out.New == 0 {
		return out, err // the fast path: nothing new, nothing said
	}
	ref, err := target.ResolveRef(refOptions(opts), opts.Flags, m.Layer())
	if err != nil {
		return out, err
	}
	host := "" // the default host is left to the flush, which may know better
	if c, ok := ref.(target.Cachix); ok && c.Host != target.DefaultCachixHost {
		host = c.Host
	}
	if _, err := d.EnqueueFor(absPath(req.File), raw, host); err != nil {
		return out, err
	}
	out.Queued = true
	out.Target = ref.String()
	if req.Mode == Foreground {
		// A host that cannot be reached at all must not hold up the switch
		// for the retry budget: the push stays queued.
		ctx, cancel := WithTimeLimit(ctx, req.Timeout)
		defer cancel()
		fo := FlushOptions{Options: opts, Wait: true}
		fo.Backend.Network.FailFast = true
		r, err := FlushQueue(ctx, d, fo)
		out.Flush = &r
		return out, err
	}
	if d.Busy() {
		// The running flush looks at the queue again before it exits.
		out.Started = "a push already running will take it"
		return out, nil
	}
	if out.Started, err = launch.Launch(ctx, d, m); err != nil {
		return out, fmt.Errorf("%s queued for %s, but starting the background push failed: %w", words.Count(out.New, "path", "paths"), out.Target, err)
	}
	return out, nil
}

// dryRun reports what a push would do (home-manager's DRY_RUN, NixOS's
// dry-activate), reporting an unreachable cache at once.
func dryRun(ctx context.Context, req Request, m *manifest.Manifest) error {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultDryRunTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := req.Options
	bopts := opts.Backend
	bopts.Network.FailFast = true
	jobs, err := pushlib.BuildJobs(pushlib.Request{Manifests: []*manifest.Manifest{m}, Flags: opts.Flags,
		Resolve: opts.Resolve, Backend: bopts, DryRun: true}, opts.Store)
	if err != nil {
		return err
	}
	return pushlib.RunJobs(ctx, jobs, opts.events(), req.Results)
}

// absPath makes a manifest path absolute for the queue entry.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
