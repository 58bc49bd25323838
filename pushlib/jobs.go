package pushlib

import (
	"fmt"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Settings are push knobs given on the command line; they win over the
// manifest's "push" object. Nil or zero means "not given".
type Settings struct {
	Jobs              int
	CompressionMethod string
	CompressionLevel  *int
	OmitDeriver       bool
	DryRun            bool
}

// Request is what to push: manifests, or ad-hoc store paths for the cache
// named by Overrides.
type Request struct {
	Manifests []*manifest.Manifest
	// Paths are user inputs (store paths, ./result symlinks, paths inside
	// store paths), pushed to the cache the overrides name.
	Paths []string
	// Pinned are store paths with a pin each (om ci results), pushed to
	// the cache the overrides name, like Paths.
	Pinned    []Root
	Overrides Overrides
	Settings  Settings
	Backend   BackendOptions
}

// BuildJobs turns a request into one Job per target cache: manifests
// naming the same cache are merged so their closures are computed and
// pushed once. Nothing is contacted yet.
func BuildJobs(req Request, st *store.Store) ([]Job, error) {
	type group struct {
		spec  CacheSpec
		push  manifest.Push
		roots []Root
		seen  map[string]bool
	}
	var order []string
	groups := map[string]*group{}
	add := func(spec CacheSpec, push manifest.Push, roots []Root) {
		k := spec.Key()
		g, ok := groups[k]
		if !ok {
			g = &group{spec: spec, push: push, seen: map[string]bool{}}
			groups[k] = g
			order = append(order, k)
		}
		for _, r := range roots {
			if g.seen[r.Path] {
				// A root listed twice keeps its first pin, gains a later one.
				for i := range g.roots {
					if g.roots[i].Path == r.Path && g.roots[i].Pin == nil {
						g.roots[i].Pin = r.Pin
					}
				}
				continue
			}
			g.seen[r.Path] = true
			g.roots = append(g.roots, r)
		}
	}

	for _, m := range req.Manifests {
		spec := req.Overrides.Apply(FromManifest(m))
		var roots []Root
		for _, p := range m.Paths {
			resolved, err := st.Resolve([]string{p.StorePath})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.File, err)
			}
			r := Root{Path: resolved[0], Name: p.Name}
			if p.Pin != nil {
				r.Pin = &backend.Pin{Name: p.Pin.Name, Keep: p.Pin.Keep}
			}
			roots = append(roots, r)
		}
		add(spec, m.Push, roots)
	}

	if len(req.Paths) > 0 || len(req.Pinned) > 0 {
		o := req.Overrides
		if o.Cache == "" && o.To == "" {
			return nil, fault.BadInputf("store paths need a target: --cache NAME (Cachix) or --to URL (a binary cache such as file:///srv/cache)")
		}
		if o.Cache != "" && o.To != "" {
			return nil, fault.BadInputf("give either --cache or --to, not both")
		}
		spec := o.Apply(CacheSpec{})
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
		add(spec, manifest.Push{}, roots)
	}

	var jobs []Job
	for _, k := range order {
		g := groups[k]
		comp, err := compressionOf(g.push, req.Settings)
		if err != nil {
			return nil, err
		}
		bopts := req.Backend
		bopts.OmitDeriver = bopts.OmitDeriver || g.push.OmitDeriver || req.Settings.OmitDeriver
		bopts.ReadOnly = bopts.ReadOnly || req.Settings.DryRun
		b, warnings, err := OpenBackend(g.spec, bopts)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, Job{
			Backend:     b,
			Warnings:    warnings,
			Store:       st,
			Roots:       g.roots,
			Compression: comp,
			Jobs:        firstPositive(req.Settings.Jobs, g.push.Jobs, 8),
			DryRun:      req.Settings.DryRun,
		})
	}
	return jobs, nil
}

// compressionOf picks the compression: flags, then the manifest; nil
// leaves the choice to the cache's preference.
func compressionOf(push manifest.Push, s Settings) (*narstream.Compression, error) {
	method := s.CompressionMethod
	if method == "" {
		method = push.Compression
	}
	level := s.CompressionLevel
	if level == nil {
		level = push.CompressionLevel
	}
	if method == "" && level == nil {
		return nil, nil
	}
	// An empty Method keeps the cache's preferred method (Push resolves it).
	c := narstream.Compression{Level: narstream.DefaultCompression.Level}
	if method != "" {
		m, err := narstream.ParseMethod(method)
		if err != nil {
			return nil, fault.BadInputf("%v", err)
		}
		c.Method = m
	}
	if level != nil {
		c.Level = *level
	}
	check := c
	if check.Method == "" {
		check.Method = narstream.Zstd
	}
	if err := check.Validate(); err != nil {
		return nil, fault.BadInputf("%v", err)
	}
	return &c, nil
}

func firstPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}
