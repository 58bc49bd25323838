package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/nix-community/go-nix/pkg/derivation"
)

// BuildClosure is what the build closure of one root is made of: the
// derivation's inputs (its sources and the outputs of its input
// derivations that it uses: what nixpkgs' inputDerivation captures, what
// a machine must have to build it) and its own outputs. The closure
// itself is the runtime closure of Seeds.
type BuildClosure struct {
	// Derivation is the .drv the inputs were read from: the root itself,
	// or the deriver of an output; "" when there is none to read (then
	// Problem says why and Seeds is the root alone, its runtime closure).
	Derivation string
	// Seeds are the valid paths whose runtime closures make up the build
	// closure, sorted. Derivations themselves are not among them.
	Seeds []string
	// NotRealised are inputs and outputs that are not valid in the local
	// store: they are skipped, never built. An output whose path the
	// derivation does not say (a floating content-addressed one) is
	// listed as DRV^OUTPUT.
	NotRealised []string
	// Problem says why the derivation could not be used, or is "".
	Problem string
}

// BuildClosures reads, for each root (a .drv, or an output whose deriver
// is in the store), the inputs of its derivation. It reads the .drv files
// directly (ATerm, with go-nix), so its cost does not grow with Nix
// processes: one `nix path-info` for the roots (their validity, and the
// derivers of outputs) and one validity query for every input and output
// together, however many inputs there are.
// A root that is not a valid path is an *InvalidPathError; a root whose
// derivation is gone or unreadable falls back to its runtime closure,
// with BuildClosure.Problem saying why.
func (s *Store) BuildClosures(ctx context.Context, roots []string) (map[string]*BuildClosure, error) {
	out := make(map[string]*BuildClosure, len(roots))
	// One query checks every root and names the derivers of outputs.
	infos, err := s.Query(ctx, roots)
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		bc := &BuildClosure{Derivation: r}
		if !strings.HasSuffix(r, ".drv") {
			bc.Derivation = infos[r].Deriver
			if bc.Derivation == "" {
				bc.Problem = fmt.Sprintf("the Nix database records no derivation for %s", r)
				bc.Seeds = []string{r}
			}
		}
		out[r] = bc
	}

	parsed := map[string]*derivation.Derivation{}
	read := func(drv string) (*derivation.Derivation, error) {
		if d, ok := parsed[drv]; ok {
			return d, nil
		}
		d, err := readDerivation(drv)
		if err != nil {
			return nil, err
		}
		parsed[drv] = d
		return d, nil
	}

	candidates := map[string]bool{}
	for _, r := range roots {
		bc := out[r]
		if bc.Derivation == "" {
			continue
		}
		d, err := read(bc.Derivation)
		if err != nil {
			bc.Problem = err.Error()
			bc.Derivation = ""
			if strings.HasSuffix(r, ".drv") {
				bc.Seeds = nil // a derivation is not pushed itself
			} else {
				bc.Seeds = []string{r}
			}
			continue
		}
		want := map[string]bool{}
		add := func(p string) { want[p] = true }
		for _, src := range d.InputSources {
			add(src)
		}
		for inDrv, names := range d.InputDerivations {
			in, err := read(inDrv)
			if err != nil {
				return nil, fmt.Errorf("reading the inputs of %s: %w", bc.Derivation, err)
			}
			for _, name := range names {
				o, ok := in.Outputs[name]
				if !ok || o.Path == "" {
					bc.NotRealised = append(bc.NotRealised, inDrv+"^"+name)
					continue
				}
				add(o.Path)
			}
		}
		for name, o := range d.Outputs {
			if o.Path == "" {
				bc.NotRealised = append(bc.NotRealised, bc.Derivation+"^"+name)
				continue
			}
			add(o.Path)
		}
		for p := range want {
			candidates[p] = true
		}
		bc.Seeds = keysOf(want)
	}

	invalid, err := s.Invalid(ctx, keysOf(candidates))
	if err != nil {
		return nil, err
	}
	gone := make(map[string]bool, len(invalid))
	for _, p := range invalid {
		gone[p] = true
	}
	for _, bc := range out {
		if bc.Derivation == "" {
			continue
		}
		valid := bc.Seeds[:0]
		for _, p := range bc.Seeds {
			if gone[p] {
				bc.NotRealised = append(bc.NotRealised, p)
			} else {
				valid = append(valid, p)
			}
		}
		bc.Seeds = valid
		sort.Strings(bc.NotRealised)
	}
	return out, nil
}

// readDerivation parses a .drv file. go-nix's validation refuses outputs
// without a path (floating content-addressed ones), which are handled
// here as not realised, so only a file that does not parse is an error.
func readDerivation(drv string) (*derivation.Derivation, error) {
	f, err := os.Open(drv)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("its derivation %s is not in the store (garbage-collected?)", drv)
	}
	if err != nil {
		return nil, fmt.Errorf("reading derivation %s: %w", drv, err)
	}
	defer f.Close()
	d, err := derivation.ReadDerivation(f)
	if d == nil {
		return nil, fmt.Errorf("reading derivation %s: %v", drv, err)
	}
	return d, nil
}

// keysOf returns a set's keys, sorted.
func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
