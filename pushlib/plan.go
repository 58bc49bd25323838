package pushlib

import (
	"context"
	"fmt"
	"sort"

	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Plan is what a push will do, decided before anything is uploaded: a dry
// run is a Plan and its report. It is where a selection (which paths of
// the closures to leave out, which closure to take) is applied.
type Plan struct {
	// Job is the job planned (with its defaults filled in).
	Job Job
	// Closure is the number of paths in the union of the roots' closures;
	// Paths lists them, sorted.
	Closure int
	Paths   []string
	// Missing is the metadata of the paths the cache lacks (what a push
	// uploads); Order lists them, references first.
	Missing map[string]*store.PathInfo
	Order   []string
	// NarSize totals the missing paths' NARs.
	NarSize uint64
	// Compression is what the NARs will be compressed with.
	Compression narstream.Compression
}

// Present is how many paths of the closure the cache already has.
func (p *Plan) Present() int { return p.Closure - len(p.Missing) }

// Plan computes the roots' closure, opens the cache, picks the compression
// and asks the cache what it lacks. Only those paths' metadata is read
// (cheap when the cache has everything, the common case of an activation).
// On error the plan holds what was known (the closure's size).
func (job Job) Plan(ctx context.Context) (*Plan, error) {
	job = job.withDefaults()
	plan := &Plan{Job: job}
	roots := make([]string, 0, len(job.Roots))
	for _, r := range job.Roots {
		roots = append(roots, r.Path)
	}
	all, err := job.Store.ClosurePaths(ctx, roots)
	if err != nil {
		return plan, err
	}
	plan.Closure = len(all)

	cache := job.Backend.String()
	info, err := job.Backend.Open(ctx)
	if err != nil {
		return plan, fmt.Errorf("opening %s: %w", cache, err)
	}
	plan.Compression = narstream.DefaultCompression
	if info.PreferredCompression != nil {
		plan.Compression = *info.PreferredCompression
	}
	if c := job.Target.Compression; c != nil {
		if c.Method != "" {
			plan.Compression.Method = c.Method
		}
		plan.Compression.Level = c.Level
	}
	if err := plan.Compression.Validate(); err != nil {
		return plan, err
	}

	sort.Strings(all)
	plan.Paths = all
	missingSet, err := job.Backend.Missing(ctx, all)
	if err != nil {
		return plan, fmt.Errorf("asking %s which paths it has: %w", cache, err)
	}
	var missing []string
	for _, p := range all {
		if missingSet[p] {
			missing = append(missing, p)
		}
	}
	if plan.Missing, err = job.Store.Query(ctx, missing); err != nil {
		return plan, err
	}
	for _, pi := range plan.Missing {
		plan.NarSize += pi.NarSize
	}
	plan.Order = store.TopoSort(plan.Missing)
	return plan, nil
}

// closureHasAny reports whether any path of root's closure is in set.
// Present paths end the walk: the cache holds them with their closures.
func (p *Plan) closureHasAny(root string, set map[string]bool) bool {
	if len(set) == 0 {
		return false
	}
	seen := map[string]bool{}
	stack := []string{root}
	for len(stack) > 0 {
		path := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[path] {
			continue
		}
		seen[path] = true
		if set[path] {
			return true
		}
		if pi, ok := p.Missing[path]; ok {
			stack = append(stack, pi.References...)
		}
	}
	return false
}
