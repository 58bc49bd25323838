package pushlib

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Plan is what a push will do, decided before anything is uploaded: a dry
// run is a Plan and its report. It is where a selection (which closure
// each root takes, which paths of the closures to leave out) is applied
// (design.md §5.9).
type Plan struct {
	// Job is the job planned (with its defaults filled in).
	Job Job
	// Closure is the number of paths in the union of the roots' closures.
	Closure int
	// PresentPaths are the paths of the closure the cache already has,
	// sorted.
	PresentPaths []string
	// Missing is the metadata of the paths the cache lacks and the push
	// uploads (neither excluded nor pruned); Order lists them, references
	// first.
	Missing map[string]*store.PathInfo
	Order   []string
	// NarSize totals the missing paths' NARs.
	NarSize uint64
	// Compression is what the NARs will be compressed with.
	Compression narstream.Compression

	// Excluded are the paths the cache lacks that a rule or the upstream
	// filter leaves out, each with the rule; Pruned, the paths left out
	// because they depend on a path excluded with prune semantics.
	Excluded map[string]Exclusion
	Pruned   map[string]Pruning
	// LeftToUpstream are the excluded paths that pushed paths refer to,
	// sorted: the other cache must have them.
	LeftToUpstream []string
	// Skipped are paths of build closures (and optional roots) that are
	// not valid in the local store, sorted: skipped, never built.
	Skipped []string
	// NotPushed are the roots the selection keeps out of the cache, each
	// with why; they are neither failed nor confirmed.
	NotPushed map[string]string

	present int
	// seeds are, per root, the paths whose runtime closures make up its
	// closure (the root itself for a runtime closure).
	seeds map[string][]string
}

// Exclusion says why a path is left out.
type Exclusion struct {
	// Rule is the rule in words: `name "*-doc"`, `regex "…"`,
	// `max-nar-size 1.0 GiB (its NAR is 2.0 GiB)`, or `signed by
	// cache.nixos.org-1` for the upstream filter.
	Rule string
	// Upstream: the path is left to an upstream cache and the paths that
	// depend on it are pushed; otherwise they are pruned.
	Upstream bool
	// NarSize is the path's NAR size.
	NarSize uint64
}

// Pruning says why a path depending on an excluded one is left out.
type Pruning struct {
	// Excluded is the excluded path it depends on (one of them).
	Excluded string
	// Rule is the rule that excluded it.
	Rule string
}

// Present is how many paths of the closure the cache already has.
func (p *Plan) Present() int { return p.present }

// BuildSource computes build closures; *store.Store is one.
type BuildSource interface {
	BuildClosures(ctx context.Context, roots []string) (map[string]*store.BuildClosure, error)
}

// WithinSource reads the metadata of paths inside the closure of given
// roots in a number of Nix processes that does not grow with the paths;
// *store.Store is one.
type WithinSource interface {
	QueryWithin(ctx context.Context, paths, roots []string) (map[string]*store.PathInfo, error)
}

// ValiditySource says which paths are not valid; *store.Store is one.
type ValiditySource interface {
	Invalid(ctx context.Context, paths []string) ([]string, error)
}

// Plan computes the roots' closures, opens the cache, picks the
// compression, asks the cache what it lacks and applies the selection:
// the exclusion rules and the upstream filter to the paths the cache
// lacks, pruning what depends on a pruned path. Only the missing paths'
// metadata is read (cheap when the cache has everything, the common case
// of an activation). On error the plan holds what was known (the
// closure's size).
func (job Job) Plan(ctx context.Context) (*Plan, error) {
	job = job.withDefaults()
	plan := &Plan{Job: job, Excluded: map[string]Exclusion{}, Pruned: map[string]Pruning{}, NotPushed: map[string]string{},
		seeds: map[string][]string{}}
	matcher, err := job.Select.Compile()
	if err != nil {
		return plan, err
	}
	seeds, err := plan.seedRoots(ctx)
	if err != nil {
		return plan, err
	}
	// The cache is opened (a request to Cachix, a directory and a file for
	// a file cache) while Nix computes the closure.
	cache := job.Backend.String()
	openDone := make(chan openResult, 1)
	go func() {
		info, err := job.Backend.Open(ctx)
		openDone <- openResult{info, err}
	}()
	all, known, allPresent, err := plan.closure(ctx, seeds)
	o := <-openDone
	if err != nil {
		return plan, err
	}
	plan.Closure = len(all)
	info := o.info
	if o.err != nil {
		return plan, fmt.Errorf("opening %s: %w", cache, o.err)
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
	missingSet := map[string]bool{}
	if !allPresent {
		if missingSet, err = job.Backend.Missing(ctx, all); err != nil {
			return plan, fmt.Errorf("asking %s which paths it has: %w", cache, err)
		}
	}
	var missing []string
	for _, p := range all {
		if missingSet[p] {
			missing = append(missing, p)
		} else {
			plan.PresentPaths = append(plan.PresentPaths, p)
		}
	}
	plan.present = len(all) - len(missing)
	var infos map[string]*store.PathInfo
	switch ws, ok := job.Store.(WithinSource); {
	case known != nil:
		infos = make(map[string]*store.PathInfo, len(missing))
		for _, p := range missing {
			infos[p] = known[p]
		}
	case ok:
		infos, err = ws.QueryWithin(ctx, missing, seeds)
	default:
		infos, err = job.Store.Query(ctx, missing)
	}
	if err != nil {
		return plan, err
	}
	plan.select_(matcher, infos)
	if err := plan.excludePresentPinned(ctx, matcher, infos); err != nil {
		return plan, err
	}
	for _, pi := range plan.Missing {
		plan.NarSize += pi.NarSize
	}
	plan.Order = store.TopoSort(plan.Missing)
	return plan, nil
}

// ClosureInfoSource reads the closure of roots with every path's metadata
// in one Nix process; *store.Store is one.
type ClosureInfoSource interface {
	ClosureInfos(ctx context.Context, roots []string) (map[string]*store.PathInfo, error)
}

// openResult is the outcome of opening the cache.
type openResult struct {
	info backend.Info
	err  error
}

// RememberSource is a store that remembers closures it computed and can
// tell cheaply whether paths are on disk; *store.Store is one.
type RememberSource interface {
	Remembered(roots []string) ([]string, bool)
	OnDisk(paths []string) bool
}

// closure lists the closure of seeds. Usually that is the cheap query
// (paths only: when the cache has everything, no metadata is needed). But
// when the cache answers from local files (backend.LocalPresence) that it
// lacks a seed, the metadata will be needed, and one Nix process gives
// both: then known holds every path's metadata. When it has every seed,
// the store does not remember their closure and the cache can walk it
// from its own narinfos (backend.CacheClosure) to the end, the cache has
// the whole closure (allPresent) and no Nix process is needed.
func (p *Plan) closure(ctx context.Context, seeds []string) (all []string, known map[string]*store.PathInfo, allPresent bool, err error) {
	job := p.Job
	lp, local := job.Backend.(backend.LocalPresence)
	cs, both := job.Store.(ClosureInfoSource)
	if local && lp.LocalPresence() && both && len(seeds) > 0 && !slices.ContainsFunc(seeds, isDerivation) {
		// (While the cache is being opened: see backend.LocalPresence.)
		missing, err := job.Backend.Missing(ctx, seeds)
		if err == nil && len(missing) > 0 {
			infos, err := cs.ClosureInfos(ctx, seeds)
			if err != nil {
				return nil, nil, false, err
			}
			for q := range infos {
				all = append(all, q)
			}
			return all, infos, false, nil
		}
		rs, remembers := job.Store.(RememberSource)
		cc, walks := job.Backend.(backend.CacheClosure)
		if err == nil && remembers && walks {
			if all, ok := rs.Remembered(seeds); ok {
				return all, nil, false, nil
			}
			if rs.OnDisk(seeds) {
				if all, ok := cc.CachedClosure(ctx, seeds); ok {
					return all, nil, true, nil
				}
			}
		}
	}
	all, err = job.Store.ClosurePaths(ctx, seeds)
	return all, nil, false, err
}

func isDerivation(p string) bool { return strings.HasSuffix(p, ".drv") }

// seedRoots works out each root's seeds: itself for a runtime closure,
// its derivation's inputs and outputs for a build closure (with what is
// not realised skipped), nothing for an optional root that is not valid.
// It returns the union of the seeds.
func (p *Plan) seedRoots(ctx context.Context) ([]string, error) {
	job := p.Job
	var build, optional []string
	for _, r := range job.Roots {
		switch {
		case r.Closure == selection.Build:
			build = append(build, r.Path)
		case r.IfValid:
			optional = append(optional, r.Path)
		}
	}
	skipped := map[string]bool{}
	if len(optional) > 0 {
		vs, ok := job.Store.(ValiditySource)
		if !ok {
			return nil, fmt.Errorf("this store cannot tell which paths are valid")
		}
		invalid, err := vs.Invalid(ctx, optional)
		if err != nil {
			return nil, err
		}
		for _, q := range invalid {
			skipped[q] = true
		}
	}
	var closures map[string]*store.BuildClosure
	if len(build) > 0 {
		bs, ok := job.Store.(BuildSource)
		if !ok {
			return nil, fmt.Errorf("this store cannot compute build closures")
		}
		var err error
		if closures, err = bs.BuildClosures(ctx, build); err != nil {
			return nil, err
		}
	}
	var union []string
	seen := map[string]bool{}
	for _, r := range job.Roots {
		var s []string
		switch {
		case r.Closure == selection.Build:
			bc := closures[r.Path]
			if bc.Problem != "" {
				job.Events.Emit(eventWarning(job, r.Path, fmt.Sprintf("the build closure of %s cannot be computed: %s; %s",
					r.Path, bc.Problem, map[bool]string{true: "nothing is pushed for it", false: "pushing its runtime closure"}[len(bc.Seeds) == 0])))
			}
			s = bc.Seeds
			if len(s) == 0 && bc.Problem != "" {
				p.NotPushed[r.Path] = "its build closure cannot be computed: " + bc.Problem
			}
			for _, q := range bc.NotRealised {
				skipped[q] = true
			}
		case skipped[r.Path]:
			p.NotPushed[r.Path] = "not a valid path in the local store: skipped"
		default:
			s = []string{r.Path}
		}
		p.seeds[r.Path] = s
		for _, q := range s {
			if !seen[q] {
				seen[q] = true
				union = append(union, q)
			}
		}
	}
	for q := range skipped {
		p.Skipped = append(p.Skipped, q)
	}
	sort.Strings(p.Skipped)
	return union, nil
}

// select_ applies the rules to the missing paths (infos): the upstream
// filter first (a path upstream has counts as present there, whatever the
// rules say), then the exclusion rules; then it prunes every path that
// depends on a path excluded with prune semantics. What is left is
// Missing.
func (p *Plan) select_(m interface {
	Upstream(*store.PathInfo) (string, bool)
	Exclude(*store.PathInfo) string
}, infos map[string]*store.PathInfo) {
	upstreamMode := p.Job.Select.Mode == selection.Upstream
	for path, pi := range infos {
		if key, ok := m.Upstream(pi); ok {
			p.Excluded[path] = Exclusion{Rule: "signed by " + key + " (the upstream filter)", Upstream: true, NarSize: pi.NarSize}
		} else if rule := m.Exclude(pi); rule != "" {
			p.Excluded[path] = Exclusion{Rule: rule, Upstream: upstreamMode, NarSize: pi.NarSize}
		}
	}
	// References first, so a path's references are decided before it.
	for _, path := range store.TopoSort(infos) {
		if _, ok := p.Excluded[path]; ok {
			continue
		}
		for _, ref := range infos[path].References {
			if ref == path {
				continue
			}
			if e, ok := p.Excluded[ref]; ok && !e.Upstream {
				p.Pruned[path] = Pruning{Excluded: ref, Rule: e.Rule}
				break
			}
			if pr, ok := p.Pruned[ref]; ok {
				p.Pruned[path] = pr
				break
			}
		}
	}
	p.Missing = make(map[string]*store.PathInfo, len(infos))
	left := map[string]bool{}
	for path, pi := range infos {
		if _, ok := p.Excluded[path]; ok {
			continue
		}
		if _, ok := p.Pruned[path]; ok {
			continue
		}
		p.Missing[path] = pi
		for _, ref := range pi.References {
			if p.Excluded[ref].Upstream {
				left[ref] = true
			}
		}
	}
	for q := range left {
		p.LeftToUpstream = append(p.LeftToUpstream, q)
	}
	sort.Strings(p.LeftToUpstream)

	// The roots the selection keeps out.
	for _, r := range p.Job.Roots {
		if _, ok := p.NotPushed[r.Path]; ok {
			continue
		}
		if why := p.rootBlocked(r); why != "" {
			p.NotPushed[r.Path] = why
		}
	}
}

// excludePresentPinned applies the exclusion rules to the pinned roots
// the cache reports present, which select_ does not see: a root a rule
// excludes is not this push's to pin. With Cachix, "present" may mean
// that cache.nixos.org (the upstream) has it, and Cachix refuses to pin
// a path the cache itself lacks. Costs one query, only with rules and
// pins.
func (p *Plan) excludePresentPinned(ctx context.Context, m *selection.Matcher, infos map[string]*store.PathInfo) error {
	if !p.Job.Select.Excludes() {
		return nil
	}
	var present []string
	for _, r := range p.Job.Roots {
		if _, out := p.NotPushed[r.Path]; r.Pin == nil || out || r.Closure == selection.Build || infos[r.Path] != nil {
			continue
		}
		present = append(present, r.Path)
	}
	if len(present) == 0 {
		return nil
	}
	pis, err := p.Job.Store.Query(ctx, present)
	if err != nil {
		return err
	}
	for _, q := range present {
		if pi := pis[q]; pi != nil {
			if rule := m.Exclude(pi); rule != "" {
				p.NotPushed[q] = "excluded by " + rule + " (the cache or its upstream has it; not pinned)"
			}
		}
	}
	return nil
}

// rootBlocked says why a root is not pushed ("" when it is): it, or a
// path of its closure, is excluded (without an upstream to cover it) or
// pruned; or it is itself left to the upstream cache.
func (p *Plan) rootBlocked(r Root) string {
	if r.Closure != selection.Build {
		if e, ok := p.Excluded[r.Path]; ok {
			if e.Upstream {
				return "left to the upstream cache: " + e.Rule
			}
			return "excluded by " + e.Rule
		}
	}
	for _, s := range p.seeds[r.Path] {
		if e, ok := p.Excluded[s]; ok && !e.Upstream {
			return fmt.Sprintf("its closure holds %s, excluded by %s", s, e.Rule)
		}
		if pr, ok := p.Pruned[s]; ok {
			if s == r.Path {
				return fmt.Sprintf("it depends on %s, excluded by %s", pr.Excluded, pr.Rule)
			}
			return fmt.Sprintf("its closure holds %s, which depends on %s, excluded by %s", s, pr.Excluded, pr.Rule)
		}
	}
	return ""
}

// closureHasAny reports whether any path of root's closure is in set.
// Present paths end the walk: the cache holds them with their closures.
func (p *Plan) closureHasAny(root string, set map[string]bool) bool {
	if len(set) == 0 {
		return false
	}
	seen := map[string]bool{}
	stack := append([]string(nil), p.seeds[root]...)
	if _, ok := p.seeds[root]; !ok {
		stack = []string{root}
	}
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

// excludedSorted lists the excluded paths, sorted.
func (p *Plan) excludedSorted() []string {
	out := make([]string, 0, len(p.Excluded))
	for q := range p.Excluded {
		out = append(out, q)
	}
	sort.Strings(out)
	return out
}

// prunedSorted lists the pruned paths, sorted.
func (p *Plan) prunedSorted() []string {
	out := make([]string, 0, len(p.Pruned))
	for q := range p.Pruned {
		out = append(out, q)
	}
	sort.Strings(out)
	return out
}

// describeSelection is the plan's selection in a few words for the plan
// event, or "".
func (p *Plan) describeSelection() string {
	var parts []string
	if n := len(p.Excluded); n > 0 {
		up := 0
		for _, e := range p.Excluded {
			if e.Upstream {
				up++
			}
		}
		s := fmt.Sprintf("%d excluded", n)
		if up > 0 {
			s += fmt.Sprintf(" (%d left to the upstream cache)", up)
		}
		parts = append(parts, s)
	}
	if n := len(p.Pruned); n > 0 {
		parts = append(parts, fmt.Sprintf("%d pruned for depending on an excluded path", n))
	}
	if n := len(p.Skipped); n > 0 {
		parts = append(parts, fmt.Sprintf("%d not realised locally, skipped", n))
	}
	return strings.Join(parts, ", ")
}
