package pushlib

import (
	"fmt"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
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
		seen   map[string]bool
	}
	var order []string
	groups := map[string]*group{}
	add := func(layers []target.Layer, rules selection.Rules, roots []Root) error {
		ref, err := target.ResolveRef(req.Resolve, layers...)
		if err != nil {
			return err
		}
		sel := rules.Effective(ref.Scheme())
		if err := sel.Check(); err != nil {
			return err
		}
		k := ref.Key() + " " + sel.Fingerprint()
		g, ok := groups[k]
		if !ok {
			g = &group{layers: layers, sel: sel, seen: map[string]bool{}}
			groups[k] = g
			order = append(order, k)
		}
		for _, r := range roots {
			if req.Closure != "" {
				r.Closure = req.Closure
			}
			if g.seen[r.Path] {
				// A root listed twice keeps its first pin, gains a later
				// one, and takes the build closure if either asks for it.
				for i := range g.roots {
					if g.roots[i].Path != r.Path {
						continue
					}
					if g.roots[i].Pin == nil {
						g.roots[i].Pin = r.Pin
					}
					if r.Closure == selection.Build {
						g.roots[i].Closure = selection.Build
					}
					g.roots[i].IfValid = g.roots[i].IfValid && r.IfValid
				}
				continue
			}
			g.seen[r.Path] = true
			g.roots = append(g.roots, r)
		}
		return nil
	}

	for _, m := range req.Manifests {
		var roots []Root
		for _, p := range m.Paths {
			resolved, err := st.Resolve([]string{p.StorePath})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.File, err)
			}
			r := Root{Path: resolved[0], Name: p.Name, Closure: p.Closure}
			if p.Pin != nil {
				r.Pin = &backend.Pin{Name: p.Pin.Name, Keep: p.Pin.Keep}
			}
			roots = append(roots, r)
		}
		if err := add([]target.Layer{req.Flags, m.Layer()}, selection.Merge(req.Select, m.Selection()), roots); err != nil {
			return nil, err
		}
	}

	if len(req.Paths) > 0 || len(req.Pinned) > 0 {
		var roots []Root
		for _, r := range req.Pinned {
			resolved, err := st.Resolve([]string{r.Path})
			if err != nil {
				return nil, err
			}
			r.Path = resolved[0]
			roots = append(roots, r)
		}
		resolved, err := st.Resolve(req.Paths)
		if err != nil {
			return nil, err
		}
		for _, p := range resolved {
			roots = append(roots, Root{Path: p, Name: store.NameOf(p)})
		}
		if err := add([]target.Layer{req.Flags}, req.Select, roots); err != nil {
			return nil, err
		}
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
		jobs = append(jobs, Job{Target: t, Backend: b, Store: st, Roots: g.roots, Select: g.sel, DryRun: req.DryRun})
	}
	return jobs, nil
}
