// Package activate is what the Nix hooks run: decide quickly whether a
// manifest has anything new, queue it on disk, and flush the queue — so a
// switch never waits on the network and a push that cannot happen now is
// retried later instead of forgotten.
package activate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// Options configure a flush (and the fast-path check).
type Options struct {
	// Flags is the command line's layer of every entry's target: the
	// credential flags the caller was given (the NixOS unit passes its
	// LoadCredential files this way).
	Flags   target.Layer
	Resolve target.Options
	Backend backend.Options
	Store   *store.Store
	Events  events.Sink
}

// events is where progress goes (Discard when nowhere).
func (o Options) events() events.Sink {
	if o.Events == nil {
		return events.Discard
	}
	return o.Events
}

// refOptions are opts.Resolve for naming a manifest's cache before the
// push: a --config file that cannot be read yet (a secret not deployed)
// counts as empty there, so that the push is queued; the push itself,
// which reads the secrets, then fails on it, and the entry stays queued.
func refOptions(opts Options) target.Options {
	o := opts.Resolve
	o.ConfigRequired = false
	return o
}

// cacheKey is the key the records of m's cache are kept under: the target's
// (a Cachix host from cachix.dhall included), with no secret read; and the
// fingerprint of the manifest's selection for that cache.
func cacheKey(m *manifest.Manifest, opts Options) (key, sel string, err error) {
	ref, err := target.ResolveRef(refOptions(opts), opts.Flags, m.Layer())
	if err != nil {
		return "", "", err
	}
	return ref.Key(), m.Selection().Effective(ref.Scheme()).Fingerprint(), nil
}

// Unconfirmed returns the manifest's paths that the state directory does
// not record as confirmed in the manifest's cache. No Nix, no network: this
// is the cost of a switch with nothing new.
func Unconfirmed(d *queue.Dir, m *manifest.Manifest, opts Options, now time.Time) ([]manifest.Path, error) {
	recs, err := d.LoadRecords()
	if err != nil {
		return nil, err
	}
	cache, sel, err := cacheKey(m, opts)
	if err != nil {
		return nil, err
	}
	var out []manifest.Path
	for _, p := range m.Paths {
		pin := ""
		if p.Pin != nil {
			pin = p.Pin.Name
		}
		key := queue.RootKey(p.StorePath, p.Closure == selection.Build, sel, pin)
		if !recs.Confirmed(cache, key, now) && !recs.Confirmed(cache, queue.NotPushedKey(key), now) {
			out = append(out, p)
		}
	}
	return out, nil
}

// FlushResult tells what a flush did.
type FlushResult struct {
	Pushed    int // entries pushed completely and removed
	Dropped   int // entries dropped (paths garbage-collected, manifest unusable)
	Remaining int // entries kept for later because they failed
	Errors    []error
}

// Flush pushes every queued entry once, oldest first. It expects the caller
// to hold the flush lock. An entry is removed only when its push succeeded;
// one whose paths were all garbage-collected is dropped with a warning.
func Flush(ctx context.Context, d *queue.Dir, opts Options, skip map[string]bool) (FlushResult, error) {
	var res FlushResult
	sink := opts.events()
	entries, bad, err := d.List()
	if err != nil {
		return res, err
	}
	for _, b := range bad {
		sink.Emit(events.Event{Kind: events.Warning, Message: b.Error()})
	}
	// Entries never tried first, then the least recently tried: one entry
	// that hangs every flush until its time limit (a dead cache) must not
	// keep the others from going out.
	sort.SliceStable(entries, func(i, j int) bool { return lastTry(entries[i]).Before(lastTry(entries[j])) })
	for _, e := range entries {
		if skip[e.ID] {
			continue
		}
		skip[e.ID] = true
		if ctx.Err() != nil {
			res.Remaining++
			continue
		}
		// Recorded before the push, so that a flush killed while this entry
		// hangs still moves it behind the others.
		now := time.Now().UTC()
		e.Attempts++
		e.LastTry = &now
		if serr := d.Save(e); serr != nil {
			res.Errors = append(res.Errors, serr)
		}
		switch err := flushEntry(ctx, d, e, opts, sink); {
		case err == nil:
			res.Pushed++
		case errors.Is(err, errDropped):
			res.Dropped++
		default:
			res.Remaining++
			res.Errors = append(res.Errors, err)
			e.LastError = err.Error()
			if ctx.Err() != nil {
				e.LastError = "stopped before it finished: " + context.Cause(ctx).Error()
			}
			if serr := d.Save(e); serr != nil {
				res.Errors = append(res.Errors, serr)
			}
		}
	}
	return res, nil
}

// lastTry is when an entry was last tried; the zero time if never.
func lastTry(e *queue.Entry) time.Time {
	if e.LastTry == nil {
		return time.Time{}
	}
	return *e.LastTry
}

// errDropped marks an entry removed without a push.
var errDropped = errors.New("dropped")

// flushEntry pushes one queued manifest.
func flushEntry(ctx context.Context, d *queue.Dir, e *queue.Entry, opts Options, sink events.Sink) error {
	m, err := manifest.ParseWith(e.Manifest, e.ManifestFile, manifest.Options{StoreDir: opts.Store.Dir})
	if err != nil {
		sink.Emit(events.Event{Kind: events.Warning, Message: fmt.Sprintf("dropping queued entry %s: %v", e.ID, err)})
		_ = d.Remove(e.ID)
		return errDropped
	}
	if m.Cache.Name != "" && m.Cache.Host == "" && e.Host != "" {
		// The host the activation resolved (cachix.dhall's hostname, which
		// this flush may not be able to read): push and record there.
		m.Cache.Host = e.Host
	}
	// Paths garbage-collected since they were queued can never be pushed.
	var roots []string
	for _, p := range m.Paths {
		roots = append(roots, p.StorePath)
	}
	invalid, err := opts.Store.Invalid(ctx, roots)
	if err != nil {
		return fmt.Errorf("checking queued paths: %w", err)
	}
	if len(invalid) > 0 {
		gone := map[string]bool{}
		for _, p := range invalid {
			gone[p] = true
			sink.Emit(events.Event{Kind: events.Warning, Path: p,
				Message: fmt.Sprintf("%s was garbage-collected before it could be pushed; dropping it from the queue", p)})
		}
		var keep []manifest.Path
		for _, p := range m.Paths {
			if !gone[p.StorePath] {
				keep = append(keep, p)
			}
		}
		m.Paths = keep
		if len(keep) == 0 {
			_ = d.Remove(e.ID)
			return errDropped
		}
	}

	jobs, err := pushlib.BuildJobs(pushlib.Request{
		Manifests: []*manifest.Manifest{m}, Flags: opts.Flags, Resolve: opts.Resolve, Backend: opts.Backend,
	}, opts.Store)
	if err != nil {
		return err
	}
	cache, _, err := cacheKey(m, opts)
	if err != nil {
		return err
	}
	var firstErr error
	for _, job := range jobs {
		job.Events = sink
		res, err := pushlib.Push(ctx, job)
		if rerr := d.Record(cache, confirmedKeys(job, res)); rerr != nil && firstErr == nil {
			firstErr = fmt.Errorf("recording pushed paths: %w", rerr)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return d.Remove(e.ID)
}

// confirmedKeys lists the record keys of the roots the cache now holds
// entirely (and, for pinned roots, whose pin exists), and of the roots the
// selection keeps out (NotPushedKey: settled, but never counted as pushed).
func confirmedKeys(job pushlib.Job, res *pushlib.Result) []string {
	if res == nil {
		return nil
	}
	confirmed := map[string]bool{}
	for _, p := range res.Confirmed {
		confirmed[p] = true
	}
	notPushed := map[string]bool{}
	for _, np := range res.NotPushed {
		notPushed[np.Path] = true
	}
	pinned := map[string]bool{}
	for _, n := range res.Pinned {
		pinned[n] = true
	}
	_, canPin := job.Backend.(backend.Pinner)
	sel := job.Select.Fingerprint()
	var keys []string
	for _, r := range job.Roots {
		pin := ""
		if r.Pin != nil {
			pin = r.Pin.Name
		}
		key := queue.RootKey(r.Path, r.Closure == selection.Build, sel, pin)
		switch {
		case notPushed[r.Path]:
			keys = append(keys, queue.NotPushedKey(key))
		case !confirmed[r.Path]:
		case r.Pin == nil || pinned[r.Pin.Name] || !canPin:
			// A cache without pins was warned about; its roots still count.
			keys = append(keys, key)
		}
	}
	return keys
}
