package omci

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/glob"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Selection says which outputs of a results file to push and pin, and how
// to name the pins.
type Selection struct {
	// Subflakes to read (e.g. "ROOT"); empty means all of them.
	Subflakes []string
	// Prefix starts every pin name: <prefix>-<system>-<name>, or
	// <system>-<name> when empty. Usually the git branch.
	Prefix string
	// Include keeps only names matching one of these path.Match patterns
	// (empty keeps all); Exclude drops names matching any of them and wins
	// over Include. Patterns apply to the byName key, not the pin name.
	Include, Exclude []string
	// Systems keeps only outputs of these systems; empty means all.
	Systems []string
	// SystemOf maps store paths to the system that built them. It is
	// consulted only for outputs whose system the file does not record
	// (see Results.UnknownSystemPaths and SystemsFromDerivers).
	SystemOf map[string]string
}

// names is the name filter of Include and Exclude.
func (sel Selection) names() (*glob.Filter, error) {
	f, err := glob.New(sel.Include, sel.Exclude)
	if err != nil {
		return nil, fmt.Errorf("%w: name %w", ErrBadSelection, err)
	}
	return f, nil
}

// Item is one store path to push and the pin to create for it.
type Item struct {
	Subflake  string
	System    string
	Name      string
	StorePath string
	PinName   string
}

// Select applies sel to the results. Items come sorted by sub-flake,
// system and name. The same pin from two sub-flakes (same name, same
// path) is listed once; the same pin name for two different paths is an
// error, as is a requested sub-flake or system the results do not have.
func (r *Results) Select(sel Selection) ([]Item, error) {
	candidates, err := r.candidates(sel)
	if err != nil {
		return nil, err
	}
	wantSystem, err := r.pickSystems(sel.Systems)
	if err != nil {
		return nil, err
	}

	var items []Item
	var unknown []string
	for _, c := range candidates {
		o := c.Output
		sys := o.System
		if sys == "" {
			sys = sel.SystemOf[o.StorePath]
			if sys == "" {
				unknown = append(unknown, o.Name)
				continue
			}
			if !slices.Contains(r.Systems, sys) {
				return nil, fmt.Errorf("%w: %s: %s (%s) was built for %s, which is not among the file's systems (%s)",
					ErrBadSelection, r.Source, o.Name, o.StorePath, sys, strings.Join(r.Systems, ", "))
			}
		}
		if wantSystem != nil && !wantSystem[sys] {
			continue
		}
		items = append(items, Item{
			Subflake:  c.subflake,
			System:    sys,
			Name:      o.Name,
			StorePath: o.StorePath,
			PinName:   PinName(sel.Prefix, sys, o.Name),
		})
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		unknown = slices.Compact(unknown)
		return nil, fmt.Errorf("%w: %s: the results cover %d systems (%s) but byName does not say which one built %s; "+
			"resolve the systems from the store (SystemsFromDerivers) or run om ci once per system",
			ErrUnknownSystem, r.Source, len(r.Systems), strings.Join(r.Systems, ", "), listNames(unknown))
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Subflake != b.Subflake {
			return a.Subflake < b.Subflake
		}
		if a.System != b.System {
			return a.System < b.System
		}
		return a.Name < b.Name
	})
	return dedupe(r.Source, items)
}

// UnknownSystemPaths lists, sorted and without duplicates, the store paths
// that sel would select but whose system the file does not record. Pass
// them to SystemsFromDerivers (or any other source) and put the answer in
// sel.SystemOf before calling Select. The system filter is not applied:
// it needs the answer.
func (r *Results) UnknownSystemPaths(sel Selection) ([]string, error) {
	candidates, err := r.candidates(sel)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range candidates {
		if c.System == "" {
			out = append(out, c.StorePath)
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// candidate is an output of a selected sub-flake.
type candidate struct {
	subflake string
	Output
}

// candidates are the outputs of the sub-flakes sel picks whose names pass
// its name filter, by sub-flake.
func (r *Results) candidates(sel Selection) ([]candidate, error) {
	names, err := sel.names()
	if err != nil {
		return nil, err
	}
	subflakes, err := r.pickSubflakes(sel.Subflakes)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, sf := range subflakes {
		for _, o := range r.Subflakes[sf].Outputs {
			if names.Match(o.Name) {
				out = append(out, candidate{subflake: sf, Output: o})
			}
		}
	}
	return out, nil
}

// pickSubflakes resolves the requested sub-flakes (all when none is named),
// refusing unknown names and sub-flakes whose build step did not run.
func (r *Results) pickSubflakes(requested []string) ([]string, error) {
	all := r.SubflakeNames()
	if len(requested) == 0 {
		return all, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, name := range requested {
		sf, ok := r.Subflakes[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s has no sub-flake %q (it has: %s)",
				ErrBadSelection, r.Source, name, strings.Join(all, ", "))
		}
		if !sf.Built {
			return nil, fmt.Errorf("%w: %s: result.%s.build is null: the build step did not run for sub-flake %q",
				ErrBadSelection, r.Source, name, name)
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// pickSystems turns the requested systems into a set (nil means all),
// refusing systems the results do not cover.
func (r *Results) pickSystems(requested []string) (map[string]bool, error) {
	if len(requested) == 0 {
		return nil, nil
	}
	known := map[string]bool{}
	for _, s := range r.Systems {
		known[s] = true
	}
	for _, sf := range r.Subflakes {
		for _, o := range sf.Outputs {
			if o.System != "" {
				known[o.System] = true
			}
		}
	}
	want := map[string]bool{}
	for _, s := range requested {
		if !known[s] {
			return nil, fmt.Errorf("%w: %s has no results for system %q (it has: %s)",
				ErrBadSelection, r.Source, s, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		}
		want[s] = true
	}
	return want, nil
}

// dedupe drops repeated identical pins and refuses one pin name for two
// different store paths.
func dedupe(source string, items []Item) ([]Item, error) {
	byPin := map[string]Item{}
	out := items[:0]
	for _, it := range items {
		if prev, ok := byPin[it.PinName]; ok {
			if prev.StorePath == it.StorePath {
				continue
			}
			return nil, fmt.Errorf("%w: %s: pin name %q would point to both %s (sub-flake %s, %s) and %s (sub-flake %s, %s); "+
				"select one sub-flake or exclude one name",
				ErrBadSelection, source, it.PinName, prev.StorePath, prev.Subflake, prev.Name, it.StorePath, it.Subflake, it.Name)
		}
		byPin[it.PinName] = it
		out = append(out, it)
	}
	return out, nil
}

// PinName names a pin the way juspay/cachix-push does:
// <prefix>-<system>-<name>, without the leading dash when prefix is empty.
func PinName(prefix, system, name string) string {
	if prefix == "" {
		return system + "-" + name
	}
	return prefix + "-" + system + "-" + name
}

// listNames renders up to five names for a message.
func listNames(names []string) string {
	const max = 5
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}

// Roots reads the results file (file; "-" is stdin) and returns the roots
// to push: the selected byName outputs, each pinned as
// <prefix>-<system>-<name> with keep once its closure is in the cache;
// then, unless the selection filters names or systems (outPaths and
// allDeps carry neither), every outPaths entry of the selected sub-flakes,
// unpinned, and their allDeps (what `om ci run --include-all-dependencies`
// lists: derivations and outputs), unpinned and skipped, with a count,
// when not valid in the local store. With several systems in one file, om
// ci does not record which system built each output: it is read from the
// outputs' derivations in st.
func Roots(ctx context.Context, file string, stdin io.Reader, sel Selection, keep *backend.Keep, st *store.Store) ([]pushlib.Root, error) {
	r, source := stdin, "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fault.BadInputf("reading om ci results: %w", err)
		}
		defer f.Close()
		r, source = f, file
	}
	res, err := Parse(r, source)
	if err != nil {
		return nil, err
	}
	unknown, err := res.UnknownSystemPaths(sel)
	if err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		if sel.SystemOf, err = SystemsFromDerivers(ctx, st, unknown); err != nil {
			return nil, fault.BadInputf("%w", err)
		}
	}
	items, err := res.Select(sel)
	if err != nil {
		return nil, err
	}
	roots := []pushlib.Root{}
	for _, it := range items {
		roots = append(roots, pushlib.Root{Path: it.StorePath, Name: it.Name, Pin: &backend.Pin{Name: it.PinName, Keep: keep}})
	}
	if len(sel.Include) > 0 || len(sel.Exclude) > 0 || len(sel.Systems) > 0 {
		return roots, nil
	}
	outPaths, allDeps, err := res.Unnamed(sel)
	if err != nil {
		return nil, err
	}
	for _, p := range outPaths {
		roots = append(roots, pushlib.Root{Path: p})
	}
	for _, p := range allDeps {
		roots = append(roots, pushlib.Root{Path: p, IfValid: true})
	}
	return roots, nil
}

// Unnamed returns the outPaths and allDeps of the sub-flakes sel picks,
// each sorted and without duplicates (names and systems are not
// filtered: these paths have neither).
func (r *Results) Unnamed(sel Selection) (outPaths, allDeps []string, err error) {
	subflakes, err := r.pickSubflakes(sel.Subflakes)
	if err != nil {
		return nil, nil, err
	}
	for _, sf := range subflakes {
		outPaths = append(outPaths, r.Subflakes[sf].OutPaths...)
		allDeps = append(allDeps, r.Subflakes[sf].AllDeps...)
	}
	slices.Sort(outPaths)
	slices.Sort(allDeps)
	return slices.Compact(outPaths), slices.Compact(allDeps), nil
}
