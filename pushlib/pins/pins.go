// Package pins turns a cache's Cachix pins into a small tree of Nix files
// (store.nix, pins.nix, default.nix, flake.nix) that maps pin names to
// store paths, so that
//
//	nix build -f https://example.org/pins.tar.gz hello
//	nix run https://example.org/pins.tar.gz#hello
//
// substitute a pinned path without evaluating the expression that built
// it: a "pseudo evaluation cache", after kwbauson/create-pin-refs.
//
// Improvements over create-pin-refs: names and paths are always quoted
// and escaped (a pin name with a quote, a backslash or "${" cannot break
// or inject into the generated Nix); conflicting names ("a" and "a.b") are
// reported instead of producing an expression that fails to evaluate;
// per-system children are picked at any depth and a missing system is a
// clear error rather than the other systems' paths; the flake only uses
// builtins.fetchClosure where it accepts input-addressed paths (Nix ≥ 2.17)
// and the cache is an http(s) cache; the output is byte-for-byte stable.
//
// Naming: a dot in a pin name nests ("hello.x86_64-linux" becomes
// hello."x86_64-linux"); default.nix and flake.nix then present the
// current system's child as plain "hello". Pins without a system child
// (e.g. "main-x86_64-linux-hello" from om ci) are passed through as they
// are.
//
// Nix versions: every attribute is a store-path string with context, not a
// derivation. Current Nix accepts such strings as installables for
// `nix build`/`nix run`; Nix 2.8 does not ("expression does not evaluate
// to a derivation"), but there `nix eval --raw -f URL NAME` substitutes
// the path (builtins.storePath does outside read-only mode) and prints it.
// nix-instantiate --eval is read-only: it returns the path without
// checking it unless given --read-write-mode. The flake uses
// builtins.storePath, hence --impure, unless fetchClosure applies.
package pins

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/glob"
)

// ErrInvalidPin marks pins that cannot be exported: a malformed name or
// store path, or names that clash once dots become nesting.
var ErrInvalidPin = fault.BadInput("invalid pin")

// PinInfo is what the export needs to know about one pin.
type PinInfo struct {
	// Name is the pin name; dots separate nested attributes.
	Name string
	// StorePath is the store path of the pin's latest revision.
	StorePath string
	// Artifacts are paths inside StorePath that the pin names (cachix pin
	// --artifact). The first one under bin/ makes the exported flake
	// offer the pin as an app; none means no app.
	Artifacts []string
	// LastRevision is when that revision was created (zero if unknown).
	// It is informational; the export does not use it.
	LastRevision time.Time
}

// DefaultSystems is the system list of the generated flake when no
// systems are given: nixpkgs' lib.systems.flakeExposed (as create-pin-refs
// copied it), sorted. It returns a new slice on every call.
func DefaultSystems() []string {
	return []string{
		"aarch64-darwin",
		"aarch64-linux",
		"armv6l-linux",
		"armv7l-linux",
		"i686-linux",
		"powerpc64le-linux",
		"riscv64-linux",
		"x86_64-darwin",
		"x86_64-freebsd",
		"x86_64-linux",
	}
}

// Filter keeps the pins whose name matches one of include (all when
// include is empty) and none of exclude (exclude wins), and, when systems
// is not empty, whose system (see PinSystem) is one of systems or cannot
// be told. Patterns use path.Match syntax on the whole pin name, so "*"
// does not cross a "/". The result is sorted by name.
func Filter(pins []PinInfo, include, exclude, systems []string) ([]PinInfo, error) {
	names, err := glob.New(include, exclude)
	if err != nil {
		return nil, fmt.Errorf("pin name %w", err)
	}
	known := knownSystems(systems)
	var out []PinInfo
	for _, p := range pins {
		if !names.Match(p.Name) {
			continue
		}
		if len(systems) > 0 {
			if sys := PinSystem(p.Name, known); sys != "" && !slices.Contains(systems, sys) {
				continue
			}
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PinSystem tells which of systems a pin name is for, or "" if none:
// a dot-separated component equal to a system ("hello.x86_64-linux",
// create-pin-refs' convention; the last such component wins), else a
// dash-delimited occurrence ("main-x86_64-linux-hello", cachix-push's
// <prefix>-<system>-<name>; the first in systems' order wins).
func PinSystem(name string, systems []string) string {
	comps := strings.Split(name, ".")
	for i := len(comps) - 1; i >= 0; i-- {
		if slices.Contains(systems, comps[i]) {
			return comps[i]
		}
	}
	padded := "-" + name + "-"
	for _, sys := range systems {
		if strings.Contains(padded, "-"+sys+"-") {
			return sys
		}
	}
	return ""
}

// knownSystems is DefaultSystems plus extra, sorted, without duplicates.
func knownSystems(extra []string) []string {
	all := append(DefaultSystems(), extra...)
	sort.Strings(all)
	return slices.Compact(all)
}
