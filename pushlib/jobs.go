package pushlib

import (
	"errors"
	"fmt"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/filecache"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/s3cache"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// NewRegistry is the backend registry of every cache cachix-select can push
// to: Cachix, file:// and s3://.
func NewRegistry() *backend.Registry {
	return backend.NewRegistry(cachix.Factory{}, filecache.Factory{}, s3cache.Factory{})
}

// Request is one run of a push: what to push, and the command line's
// settings, the highest layer of each target.
type Request struct {
	Manifests []*manifest.Manifest
	// Paths are user inputs (store paths, ./result symlinks, paths inside
	// store paths), pushed to the cache Flags names.
	Paths []string
	// Pinned are store paths with a pin each (om ci results), pushed to
	// the cache Flags names, like Paths.
	Pinned []Root
	// Flags is the command line's layer (Origin target.CommandLine).
	Flags target.Layer
	// Resolve says how the rest of each target is found.
	Resolve target.Options
	// Backend says how the backends run.
	Backend backend.Options
	// DryRun reports what would be pushed, touching nothing.
	DryRun bool
	// SkipInvalid skips the Paths that do not exist or are not valid in
	// the local store, with a warning each, as `cachix push` does (see
	// Job.SkipInvalid); otherwise such a path stops the push.
	SkipInvalid bool
	// Select is the command line's layer of the selection rules, over
	// each manifest's (selection.Merge).
	Select selection.Rules
	// Closure, when set, is the closure of every root (--closure),
	// whatever the manifests say.
	Closure selection.Closure
}

// BuildJobs turns a request into one Job per target cache and selection:
// manifests naming the same cache with the same selection rules are
// merged so their closures are computed and pushed once (with the first
// one's settings). Nothing is contacted yet.
func BuildJobs(req Request, st *store.Store) ([]Job, error) {
	type group struct {
		layers []target.Layer
		sel    selection.Rules
		roots  []Root
		// pins maps each pin name to its root's index; from, where each
		// root came from (for messages).
		pins map[string]int
		from []string
	}
	var order []string
	groups := map[string]*group{}
	// The command line's paths: their group, and the inputs skipped.
	var adhocKey string
	var adhocSkipped []PathFailure
	add := func(layers []target.Layer, rules selection.Rules, roots []Root, from string, aliases bool) (string, error) {
		ref, err := target.ResolveRef(req.Resolve, layers...)
		if err != nil {
			return "", err
		}
		sel := rules.Effective(ref.Scheme())
		if err := sel.Check(); err != nil {
			return "", err
		}
		k := ref.Key() + " " + sel.Fingerprint()
		g, ok := groups[k]
		if !ok {
			g = &group{layers: layers, sel: sel, pins: map[string]int{}}
			groups[k] = g
			order = append(order, k)
		}
		for _, r := range roots {
			if req.Closure != "" {
				r.Closure = req.Closure
			}
			dup, err := mergeRoot(g.roots, g.pins, g.from, r, from, aliases)
			if err != nil {
				return "", err
			}
			if dup >= 0 {
				// A root listed again takes the build closure if either
				// listing asks for it, and is optional only if both are.
				if r.Closure == selection.Build {
					g.roots[dup].Closure = selection.Build
				}
				g.roots[dup].IfValid = g.roots[dup].IfValid && r.IfValid
				continue
			}
			if r.Pin != nil {
				g.pins[r.Pin.Name] = len(g.roots)
			}
			g.roots = append(g.roots, r)
			g.from = append(g.from, from)
		}
		return k, nil
	}

	for _, m := range req.Manifests {
		var roots []Root
		for i, p := range m.Paths {
			source := fmt.Sprintf("%s: paths[%d].storePath", m.File, i)
			resolved, err := st.Resolve([]string{p.StorePath})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			r := Root{Path: resolved[0], Name: p.Name, Closure: p.Closure, Source: source}
			if p.Pin != nil {
				r.Pin = &backend.Pin{Name: p.Pin.Name, Keep: p.Pin.Keep}
			}
			roots = append(roots, r)
		}
		if _, err := add([]target.Layer{req.Flags, m.Layer()}, selection.Merge(req.Select, m.Selection()), roots, m.File, false); err != nil {
			return nil, err
		}
	}

	if len(req.Pinned) > 0 {
		var roots []Root
		for _, r := range req.Pinned {
			resolved, err := st.Resolve([]string{r.Path})
			if err != nil {
				return nil, err
			}
			r.Path = resolved[0]
			roots = append(roots, r)
		}
		// om ci results name one output under several names (default and
		// the package's own): each name is a pin.
		var err error
		if adhocKey, err = add([]target.Layer{req.Flags}, req.Select, roots, "the om ci results", true); err != nil {
			return nil, err
		}
	}
	if len(req.Paths) > 0 {
		resolved, skipped, err := resolvePaths(st, req.Paths, req.SkipInvalid)
		if err != nil {
			return nil, err
		}
		var roots []Root
		for _, p := range resolved {
			roots = append(roots, Root{Path: p, Name: store.NameOf(p)})
		}
		if adhocKey, err = add([]target.Layer{req.Flags}, req.Select, roots, "the command line", false); err != nil {
			return nil, err
		}
		adhocSkipped = skipped
	}

	registry := NewRegistry()
	bopts := req.Backend
	bopts.ReadOnly = bopts.ReadOnly || req.DryRun
	if bopts.StoreDir == "" {
		bopts.StoreDir = st.Dir
	}
	ropts := req.Resolve
	ropts.ReadOnly = ropts.ReadOnly || req.DryRun
	if ropts.StoreDir == "" {
		ropts.StoreDir = st.Dir
	}
	var jobs []Job
	for _, k := range order {
		g := groups[k]
		t, err := target.Resolve(ropts, g.layers...)
		if err != nil {
			return nil, err
		}
		b, err := registry.New(t, bopts)
		if err != nil {
			return nil, err
		}
		job := Job{Target: t, Backend: b, Store: st, Roots: g.roots, Select: g.sel, DryRun: req.DryRun,
			Patterns: append(append([]string(nil), req.Select.Names...), req.Select.Regex...)}
		if k == adhocKey && req.SkipInvalid {
			job.SkipInvalid, job.Skipped = true, adhocSkipped
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// resolvePaths resolves user inputs to store paths. With skip, an input
// that does not exist or leads outside the store is left out and
// returned in skipped; a name Nix would reject is refused either way.
func resolvePaths(st *store.Store, inputs []string, skip bool) (resolved []string, skipped []PathFailure, err error) {
	if !skip {
		resolved, err = st.Resolve(inputs)
		return resolved, nil, err
	}
	seen := map[string]bool{}
	for _, in := range inputs {
		r, err := st.Resolve([]string{in})
		var invalid *store.InvalidPathError
		switch {
		case errors.As(err, &invalid):
			skipped = append(skipped, PathFailure{Path: in, Err: err})
		case err != nil:
			return nil, nil, err
		case !seen[r[0]]:
			seen[r[0]] = true
			resolved = append(resolved, r[0])
		}
	}
	return resolved, skipped, nil
}

// mergeRoot decides what becomes of a root r (from where) given the roots
// already in its push (roots, from), pins indexing them by pin name. A
// path listed again without a pin, or with the same pin, is a duplicate:
// its index is returned; a root without a pin gains the pin of a later
// listing. A path listed again with another pin is an error naming both
// pins, unless aliases allows it and both listings come from where: then
// it is one more root (-1), so that both pins are created. Two listings
// that disagree about one pin (its path, or how many revisions to keep)
// are an error naming both.
func mergeRoot(roots []Root, pins map[string]int, from []string, r Root, where string, aliases bool) (int, error) {
	if r.Pin != nil {
		if i, ok := pins[r.Pin.Name]; ok {
			o := roots[i]
			switch {
			case o.Path != r.Path:
				return -1, fault.BadInputf("pin %q is given twice, for %s (%s) and for %s (%s); give each pin one store path",
					r.Pin.Name, o.Path, from[i], r.Path, where)
			case !sameKeep(o.Pin.Keep, r.Pin.Keep):
				return -1, fault.BadInputf("pin %q of %s is given twice with different keep policies, %s (%s) and %s (%s)",
					r.Pin.Name, r.Path, keepText(o.Pin.Keep), from[i], keepText(r.Pin.Keep), where)
			}
			return i, nil
		}
	}
	for i := range roots {
		if roots[i].Path != r.Path {
			continue
		}
		switch {
		case r.Pin == nil:
			return i, nil
		case roots[i].Pin == nil:
			roots[i].Pin = r.Pin
			pins[r.Pin.Name] = i
			return i, nil
		case !(aliases && from[i] == where):
			return -1, fault.BadInputf("%s is given two pins, %q (%s) and %q (%s); give a store path one pin",
				r.Path, roots[i].Pin.Name, from[i], r.Pin.Name, where)
		}
	}
	return -1, nil
}

// sameKeep reports whether two keep policies are the same (nil: the cache's default).
func sameKeep(a, b *backend.Keep) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// keepText names a keep policy in messages.
func keepText(k *backend.Keep) string {
	if k == nil {
		return "the cache's default"
	}
	return k.String()
}
