// Package omci reads the results file that `om ci run` (juspay/omnix)
// writes and turns it into the store paths to push and the Cachix pins to
// create, the way the juspay/cachix-push flake app does, but for several
// systems and sub-flakes at once and with name filters.
//
// The file (omnix RunResult) looks like this:
//
//	{
//	  "systems": ["x86_64-linux"],
//	  "flake": "github:srid/haskell-multi-nix/…",
//	  "result": {
//	    "ROOT": {
//	      "build": {
//	        "outPaths": ["/nix/store/…-foo-0.1.0.0", "/nix/store/…-bar-0.1.0.0/bin/bar"],
//	        "byName": {"foo": "/nix/store/…-foo-0.1.0.0", "bar": "/nix/store/…-bar-0.1.0.0"},
//	        "allDeps": ["…"]
//	      }
//	    }
//	  }
//	}
//
// Read are systems, flake and, for each sub-flake, build.byName (what is
// pushed and pinned), build.outPaths (every output built, also those
// byName does not name; pushed, not pinned) and build.allDeps (written by
// `om ci run --include-all-dependencies`: every build and runtime
// dependency of the outputs, derivations included; pushed when valid in
// the local store). "build" is null when the sub-flake's build step is
// disabled.
//
// Which system built which name: omnix's byName is one flat map even when
// several systems were built (devour-flake, as pinned by omnix, folds all
// systems into it and a later system overwrites an earlier one's entry of
// the same name). With one system in "systems" every name belongs to it.
// With several, the file does not say, so Select needs the answer from the
// caller (Selection.SystemOf, which SystemsFromDerivers computes from the
// local store) and otherwise fails with ErrUnknownSystem rather than
// guess. Names lost to the overwrite cannot be recovered from the file;
// run om ci once per system to pin every system's outputs. The newer
// devour-flake layout, which indexes the build result by system
// (build.<system>.byName), is also accepted and needs no help.
//
// Typical use:
//
//	res, err := omci.Parse(f, "om.json")
//	sel := omci.Selection{Subflakes: []string{"ROOT"}, Prefix: branch}
//	paths, err := res.UnknownSystemPaths(sel)
//	if len(paths) > 0 {
//		sel.SystemOf, err = omci.SystemsFromDerivers(ctx, store.New(), paths)
//	}
//	items, err := res.Select(sel) // push every StorePath, pin it as PinName
//	outPaths, allDeps, err := res.Unnamed(sel) // push these too (allDeps: those valid)
package omci

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/jsonfield"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// ErrMalformed marks a results file that is not what `om ci run` writes.
var ErrMalformed = fault.BadInput("malformed om ci results")

// ErrBadSelection marks a selection that does not fit the results (an
// unknown sub-flake or system, a bad pattern, two pins with one name).
var ErrBadSelection = fault.BadInput("selection does not match the om ci results")

// ErrUnknownSystem marks outputs whose system the results file does not
// record (several systems, flat byName) and that Selection.SystemOf does
// not cover either.
var ErrUnknownSystem = fault.BadInput("system of an output is unknown")

// FormatError says where in the results file the unexpected JSON is and
// what was expected there.
type FormatError struct {
	// Source names the file ("om.json", "<stdin>").
	Source string
	// Path is the JSON path, e.g. result.ROOT.build.byName ("" for the top).
	Path string
	// Expected describes what should be there.
	Expected string
	// Got describes what is there ("a string", "nothing", "invalid JSON: …").
	Got string
}

// Error renders "om.json: result.ROOT.build.byName: expected …, got …".
func (e *FormatError) Error() string {
	where := e.Source
	if e.Path != "" {
		where += ": " + e.Path
	}
	msg := fmt.Sprintf("%s: expected %s", where, e.Expected)
	if e.Got != "" {
		msg += ", got " + e.Got
	}
	return msg
}

// Unwrap lets errors.Is(err, ErrMalformed) match.
func (e *FormatError) Unwrap() error { return ErrMalformed }

// Results is a parsed om ci results file.
type Results struct {
	// Source names the file in messages.
	Source string
	// Flake is the flake URL that was built ("" if absent).
	Flake string
	// Systems are the systems om ci built for, in file order.
	Systems []string
	// Subflakes maps each sub-flake name (e.g. "ROOT") to its build result.
	Subflakes map[string]Subflake
}

// Subflake is the build result of one om ci sub-flake.
type Subflake struct {
	// Built is false when the build step did not run ("build": null).
	Built bool
	// Outputs are the entries of byName, sorted by system then name.
	Outputs []Output
	// OutPaths are the store paths of outPaths (a path inside a store
	// path, such as …-bar/bin/bar, becomes that store path), and AllDeps
	// those of allDeps (nil when absent), each sorted, without duplicates.
	OutPaths, AllDeps []string
}

// Output is one named build output.
type Output struct {
	// System is the system that built it, or "" when the file does not say
	// (several systems and a flat byName).
	System string
	// Name is the byName key: the derivation's pname, or its name.
	Name string
	// StorePath is the absolute store path.
	StorePath string
}

// Parse reads an om ci results file. source names it in error messages.
func Parse(r io.Reader, source string) (*Results, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fault.BadInputf("reading %s: %w", source, err)
	}
	p := parser{source: source}
	return p.results(data)
}

// parser carries the source name into every error.
type parser struct{ source string }

// fail builds a FormatError for the value v: what was expected there.
func (p parser) fail(v jsonfield.Value, expected string) error {
	return p.failGot(v.Path, expected, v.Describe())
}

// failGot builds a FormatError with a ready-made description of what is there.
func (p parser) failGot(jpath, expected, got string) error {
	return &FormatError{Source: p.source, Path: jpath, Expected: expected, Got: got}
}

// results parses the top-level object.
func (p parser) results(data []byte) (*Results, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, &FormatError{Source: p.source, Expected: "the JSON written by `om ci run --results`",
			Got: "invalid JSON (" + strings.TrimPrefix(err.Error(), "json: ") + ")"}
	}
	root := jsonfield.Root(data)
	top, ok := root.Object()
	if !ok {
		return nil, p.fail(root, "a JSON object (the output of `om ci run --results`)")
	}
	res := &Results{Source: p.source, Subflakes: map[string]Subflake{}}

	rawSystems := top.Get("systems")
	if rawSystems.Absent() {
		return nil, p.fail(rawSystems, `an array of systems such as ["x86_64-linux"] (written by omnix since late 2024; upgrade omnix)`)
	}
	var systems []string
	if err := rawSystems.Decode(&systems); err != nil || len(systems) == 0 {
		return nil, p.fail(rawSystems, `a non-empty array of system strings such as ["x86_64-linux"]`)
	}
	seen := map[string]bool{}
	for i, s := range systems {
		at := fmt.Sprintf("systems[%d]", i)
		if !systemPattern.MatchString(s) {
			return nil, p.failGot(at, `a system string such as "x86_64-linux"`, jsonfield.Of(s).Describe())
		}
		if seen[s] {
			return nil, p.failGot(at, "each system once", jsonfield.Of(s).Describe()+" twice")
		}
		seen[s] = true
	}
	res.Systems = systems

	if flake := top.Get("flake"); !flake.Null() {
		var ok bool
		if res.Flake, ok = flake.Text(); !ok {
			return nil, p.fail(flake, "a flake URL string")
		}
	}

	const wantResult = "an object mapping sub-flake names to their results"
	result := top.Get("result")
	subs, ok := result.Object()
	if !ok {
		return nil, p.fail(result, wantResult)
	}
	for _, name := range subs.Keys() {
		sf, err := p.subflake(subs.Get(name), systems)
		if err != nil {
			return nil, err
		}
		res.Subflakes[name] = sf
	}
	return res, nil
}

// subflake parses result.<name>: {"build": null | {…}}.
func (p parser) subflake(v jsonfield.Value, systems []string) (Subflake, error) {
	fields, ok := v.Object()
	if !ok {
		return Subflake{}, p.fail(v, `an object with a "build" field`)
	}
	rawBuild := fields.Get("build")
	if rawBuild.Null() {
		return Subflake{}, nil
	}
	const wantBuild = "an object with byName (name → store path)"
	build, ok := rawBuild.Object()
	if !ok {
		return Subflake{}, p.fail(rawBuild, wantBuild+", or null")
	}
	sf := Subflake{Built: true}
	if deps := build.Get("allDeps"); !deps.Null() {
		paths, err := p.storePaths(deps, "allDeps")
		if err != nil {
			return Subflake{}, err
		}
		sf.AllDeps = paths
	}
	if byName := build.Get("byName"); !byName.Absent() {
		// omnix's layout: one byName for all systems.
		sys := ""
		if len(systems) == 1 {
			sys = systems[0]
		}
		outs, err := p.byName(byName, sys)
		if err != nil {
			return Subflake{}, err
		}
		sf.Outputs = outs
		if v := build.Get("outPaths"); !v.Null() {
			if sf.OutPaths, err = p.storePaths(v, "outPaths"); err != nil {
				return Subflake{}, err
			}
		}
	} else {
		// devour-flake's newer layout: build.<system>.byName.
		if build.Len() == 0 || (build.Len() == 1 && sf.AllDeps != nil) {
			return Subflake{}, p.fail(rawBuild, wantBuild)
		}
		for _, sys := range build.Keys() {
			if sys == "allDeps" {
				continue // om's own field, beside devour-flake's systems
			}
			perSys, ok := build.Get(sys).Object()
			if !ok || !systemPattern.MatchString(sys) {
				return Subflake{}, p.failGot(rawBuild.Path, wantBuild, "an object without byName")
			}
			byName := perSys.Get("byName")
			if byName.Absent() {
				return Subflake{}, p.fail(byName, "an object mapping names to store paths")
			}
			outs, err := p.byName(byName, sys)
			if err != nil {
				return Subflake{}, err
			}
			sf.Outputs = append(sf.Outputs, outs...)
			if v := perSys.Get("outPaths"); !v.Null() {
				paths, err := p.storePaths(v, "outPaths")
				if err != nil {
					return Subflake{}, err
				}
				sf.OutPaths = append(sf.OutPaths, paths...)
			}
		}
		slices.Sort(sf.OutPaths)
		sf.OutPaths = slices.Compact(sf.OutPaths)
	}
	sortOutputs(sf.Outputs)
	return sf, nil
}

// storePaths parses outPaths or allDeps: an array of absolute paths in
// the store (a path inside a store path counts as that store path),
// returned sorted, without duplicates.
func (p parser) storePaths(v jsonfield.Value, what string) ([]string, error) {
	items, ok := v.Array()
	if !ok {
		return nil, p.fail(v, "an array of store paths ("+what+")")
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.Text()
		if !ok {
			return nil, p.fail(it, "a store path string")
		}
		sp, ok := storePathOf(s)
		if !ok {
			return nil, p.failGot(it.Path, "an absolute store path such as /nix/store/<hash>-<name>", jsonfield.Of(s).Describe())
		}
		out = append(out, sp)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// storePathOf cuts an absolute path down to the store path it is in
// (/nix/store/<hash>-bar/bin/bar → /nix/store/<hash>-bar).
func storePathOf(s string) (string, bool) {
	if !path.IsAbs(s) || path.Clean(s) != s {
		return "", false
	}
	for q := s; q != "/" && q != "."; q = path.Dir(q) {
		if sp, err := store.ParseAbsolute(q); err == nil {
			return sp.String(), true
		}
	}
	return "", false
}

// byName parses one byName object; every entry gets system sys.
func (p parser) byName(v jsonfield.Value, sys string) ([]Output, error) {
	entries, ok := v.Object()
	if !ok {
		return nil, p.fail(v, "an object mapping names to store paths")
	}
	outs := make([]Output, 0, entries.Len())
	for _, name := range entries.Keys() {
		if name == "" || strings.ContainsFunc(name, isControl) {
			return nil, p.failGot(v.Path, "non-empty names without control characters", jsonfield.Of(name).Describe())
		}
		entry := entries.Get(name)
		sp, ok := entry.Text()
		if !ok {
			return nil, p.fail(entry, "a store path string")
		}
		if _, err := store.ParseAbsolute(sp); err != nil {
			return nil, p.failGot(entry.Path, "an absolute store path such as /nix/store/<hash>-<name>", jsonfield.Of(sp).Describe())
		}
		outs = append(outs, Output{System: sys, Name: name, StorePath: sp})
	}
	return outs, nil
}

// sortOutputs orders outputs by system, then name, then path.
func sortOutputs(outs []Output) {
	sort.Slice(outs, func(i, j int) bool {
		a, b := outs[i], outs[j]
		if a.System != b.System {
			return a.System < b.System
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.StorePath < b.StorePath
	})
}

// SubflakeNames returns the sub-flake names, sorted.
func (r *Results) SubflakeNames() []string { return slices.Sorted(maps.Keys(r.Subflakes)) }

// systemPattern accepts Nix system strings ("x86_64-linux", "aarch64-darwin",
// "armv7l-linux", "x86_64-freebsd", "riscv64-none-elf").
var systemPattern = regexp.MustCompile(`^[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)+$`)

// isControl reports characters that have no place in a pin name.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
