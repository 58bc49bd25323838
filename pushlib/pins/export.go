package pins

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// ExportOptions controls Export.
type ExportOptions struct {
	// CacheURL is the binary cache the pinned paths are substituted from,
	// e.g. https://NAME.cachix.org. The flake fetches from it with
	// builtins.fetchClosure when it is an http(s) URL; otherwise (or when
	// empty) the flake always uses builtins.storePath.
	CacheURL string
	// Include and Exclude filter pins by name (see Filter).
	Include, Exclude []string
	// Systems keeps only pins of these systems plus pins without one (see
	// Filter), and becomes the generated flake's system list. Empty means
	// all pins and DefaultSystems.
	Systems []string
}

// The files Export generates.
const (
	StoreFile   = "store.nix"
	PinsFile    = "pins.nix"
	DefaultFile = "default.nix"
	FlakeFile   = "flake.nix"
)

// Export generates the pins tree: file name → content, for StoreFile,
// PinsFile, DefaultFile and FlakeFile. The same pins and options always
// give the same bytes (pins sorted by name, nothing time-dependent).
// Errors wrap ErrInvalidPin, naming the pins at fault. See the package
// documentation for how names become attributes.
func Export(pins []PinInfo, opts ExportOptions) (map[string][]byte, error) {
	files, _, err := export(pins, opts)
	return files, err
}

// ExportWarnings is Export with the warnings: pins left out, names some
// way of selecting cannot reach.
func ExportWarnings(pins []PinInfo, opts ExportOptions) (map[string][]byte, []string, error) {
	return export(pins, opts)
}

// export is Export, with the warnings about names that some way of
// selecting cannot reach.
func export(pins []PinInfo, opts ExportOptions) (map[string][]byte, []string, error) {
	selected, err := Filter(pins, opts.Include, opts.Exclude, opts.Systems)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidPin, err)
	}
	known := knownSystems(opts.Systems)
	selected, skipped := representable(selected)
	root, err := buildTree(selected)
	if err != nil {
		return nil, nil, err
	}
	warnings := append(root.markIndexed(), skipped...)
	aliases := aliasesOf(selected, known)
	for i := range aliases {
		root.addAlias(&aliases[i], known)
	}
	fetchFrom, err := fetchClosureStore(opts.CacheURL)
	if err != nil {
		return nil, nil, err
	}
	if opts.CacheURL != "" && fetchFrom == "" {
		warnings = append(warnings, fmt.Sprintf("builtins.fetchClosure fetches only from http and https caches, not %s: "+
			"store.nix is null, so the flake lets Nix substitute pinned paths from its own substituters", oneLine(opts.CacheURL)))
	}
	flakeSystems := DefaultSystems()
	if len(opts.Systems) > 0 {
		flakeSystems = append([]string(nil), opts.Systems...)
		sort.Strings(flakeSystems)
		flakeSystems = slices.Compact(flakeSystems)
	}
	description := "Store paths pinned in a binary cache"
	if opts.CacheURL != "" {
		description = "Store paths pinned in " + opts.CacheURL
	}

	var pinsNix strings.Builder
	pinsNix.WriteString(generatedHeader)
	pinsNix.WriteString(pinsHeader)
	pinsNix.WriteString("{ storePath, indexed ? (name: set: set) }:\n")
	root.render(&pinsNix, "", "")
	pinsNix.WriteString("\n")

	return map[string][]byte{
		StoreFile: []byte(renderStore(opts.CacheURL, fetchFrom)),
		PinsFile:  []byte(pinsNix.String()),
		DefaultFile: []byte(strings.NewReplacer(
			"@SYSTEMS@", nixList(known, "    "),
		).Replace(defaultTemplate)),
		FlakeFile: []byte(strings.NewReplacer(
			"@DESCRIPTION@", nixString(description),
			"@SYSTEMS@", nixList(flakeSystems, "        "),
			"@KNOWN@", nixList(known, "        "),
			"@PROGRAMS@", renderPrograms(selected, aliases, known, root),
		).Replace(flakeTemplate)),
	}, warnings, nil
}

// program is the pin's first artifact under bin/, or "".
func program(p PinInfo) string {
	for _, a := range p.Artifacts {
		clean := path.Clean(a)
		if strings.HasPrefix(clean, "bin/") && clean == a && !strings.ContainsAny(a, "\x00\n") {
			return a
		}
	}
	return ""
}

// guessedProgram is the program `nix run` would guess for a package
// without meta.mainProgram: bin/ and the name of the store path without
// its version (hello-2.12.1 → bin/hello). The pins om ci results make
// (<prefix>-<system>-<name>) name no artifacts, and this is what running
// their package means.
func guessedProgram(storePath string) string {
	name := store.NameOf(storePath)
	for i := 0; i+1 < len(name); i++ {
		if name[i] == '-' && name[i+1] >= '0' && name[i+1] <= '9' {
			name = name[:i]
			break
		}
	}
	if name == "" || strings.ContainsAny(name, "/\x00\n") {
		return ""
	}
	return "bin/" + name
}

// renderPrograms writes the flake's programs set: for each pin that names
// a program and whose name (less a trailing system) has no dots, name →
// program, or name → { system → program } for per-system pins; and the
// same for each alias whose pin names a program, or, having no artifacts
// at all, gets the one nix run would guess. Apps are flat
// (apps.<system>.<name>), so nested pins get none. Only names the tree
// holds are offered.
func renderPrograms(selected []PinInfo, aliases []alias, systems []string, root *node) string {
	type entry struct {
		plain    string
		bySystem map[string]string
	}
	entries := map[string]*entry{}
	add := func(name, system, prog string) {
		if strings.Contains(name, ".") || prog == "" {
			return
		}
		e := entries[name]
		if e == nil {
			e = &entry{bySystem: map[string]string{}}
			entries[name] = e
		}
		if system == "" {
			e.plain = prog
		} else {
			e.bySystem[system] = prog
		}
	}
	for _, p := range selected {
		name, system := p.Name, ""
		if i := strings.LastIndexByte(p.Name, '.'); i >= 0 && slices.Contains(systems, p.Name[i+1:]) {
			name, system = p.Name[:i], p.Name[i+1:]
		}
		add(name, system, program(p))
	}
	for _, a := range aliases {
		if !a.added {
			continue
		}
		prog := program(a.pin)
		if prog == "" && len(a.pin.Artifacts) == 0 {
			prog = guessedProgram(a.pin.StorePath)
		}
		add(a.name, a.system, prog)
	}
	if len(entries) == 0 {
		return "{ }"
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{\n")
	for _, n := range names {
		e := entries[n]
		b.WriteString("        " + nixAttrName(n) + " = ")
		// A pin "x" and pins "x.<system>" cannot both exist (they clash
		// in the tree), so an entry is one or the other.
		if len(e.bySystem) == 0 {
			b.WriteString(nixString(e.plain))
		} else {
			systemsOf := make([]string, 0, len(e.bySystem))
			for s := range e.bySystem {
				systemsOf = append(systemsOf, s)
			}
			sort.Strings(systemsOf)
			b.WriteString("{ ")
			for _, s := range systemsOf {
				b.WriteString(nixAttrName(s) + " = " + nixString(e.bySystem[s]) + "; ")
			}
			b.WriteString("}")
		}
		b.WriteString(";\n")
	}
	b.WriteString("      }")
	return b.String()
}

// fetchClosureStore returns the URL builtins.fetchClosure may fetch from,
// or "" when it cannot use this cache (fetchClosure only talks to http(s)).
func fetchClosureStore(cacheURL string) (string, error) {
	if cacheURL == "" {
		return "", nil
	}
	u, err := url.Parse(cacheURL)
	if err != nil || u.Scheme == "" {
		return "", fault.BadInputf("cache URL %q: expected a URL such as https://NAME.cachix.org", cacheURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", nil
	}
	return cacheURL, nil
}

// renderStore writes store.nix: the URL flake.nix hands to fetchClosure,
// or null when there is none.
func renderStore(cacheURL, fetchFrom string) string {
	var b strings.Builder
	b.WriteString(generatedHeader)
	switch {
	case fetchFrom != "":
		b.WriteString("# The binary cache flake.nix fetches pinned closures from.\n")
		b.WriteString(nixString(fetchFrom) + "\n")
	case cacheURL != "":
		b.WriteString("# builtins.fetchClosure cannot fetch from " + oneLine(cacheURL) + " (not http or https).\n")
		b.WriteString("null\n")
	default:
		b.WriteString("# No cache URL was given: flake.nix uses builtins.storePath.\n")
		b.WriteString("null\n")
	}
	return b.String()
}

// oneLine keeps a value from breaking out of a Nix comment.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// node is one attribute of pins.nix: a leaf (a store path) or a set.
type node struct {
	// storePath is set for leaves.
	storePath string
	// pin is the full pin name of a leaf, or of the first pin that made
	// this set (for messages).
	pin      string
	children map[string]*node
	// alias marks nodes that only aliases made: a pin's own node never is.
	alias bool
	// indexed marks a set whose names are all list indices (see markIndexed).
	indexed bool
}

// buildTree nests pins by the dots in their names. pins must be sorted by
// name, which makes the messages deterministic.
func buildTree(pins []PinInfo) (*node, error) {
	root := &node{children: map[string]*node{}}
	for _, p := range pins {
		if err := validatePin(p); err != nil {
			return nil, err
		}
		comps := strings.Split(p.Name, ".")
		n := root
		for i, c := range comps {
			child, ok := n.children[c]
			last := i == len(comps)-1
			switch {
			case !ok && last:
				n.children[c] = &node{storePath: p.StorePath, pin: p.Name}
			case !ok:
				child = &node{pin: p.Name, children: map[string]*node{}}
				n.children[c] = child
				n = child
			case child.children == nil && last:
				if child.storePath != p.StorePath {
					return nil, fmt.Errorf("%w: pin %q is listed twice, with %s and %s",
						ErrInvalidPin, p.Name, child.storePath, p.StorePath)
				}
			case child.children == nil:
				return nil, conflict(child.pin, p.Name)
			case last:
				return nil, conflict(p.Name, child.pin)
			default:
				n = child
			}
		}
	}
	return root, nil
}

// alias is one more name for a pin of the form <prefix>-<system>-<rest>
// (what om ci results and the modules make): <prefix>-<rest> on system,
// so that the export offers it with the system picked, as it does for a
// pin <name>.<system>.
type alias struct {
	name, system string
	pin          PinInfo
	// added says whether the tree took it (see addAlias).
	added bool
}

// aliasesOf finds the aliases of pins, in their order: for each pin
// whose name holds -<system>- (or starts with <system>-) for one of
// systems, and has no system as a dot component, <prefix>-<rest> (or
// <rest>) on that system.
func aliasesOf(pins []PinInfo, systems []string) []alias {
	var out []alias
	seen := map[[2]string]bool{}
	for _, p := range pins {
		if slices.ContainsFunc(strings.Split(p.Name, "."), func(c string) bool { return slices.Contains(systems, c) }) {
			continue
		}
		name, system := dashAlias(p.Name, systems)
		if name == "" || seen[[2]string{name, system}] {
			continue
		}
		seen[[2]string{name, system}] = true
		out = append(out, alias{name: name, system: system, pin: p})
	}
	return out
}

// dashAlias splits <prefix>-<system>-<rest> into <prefix>-<rest> and the
// system ("" when the name has no such system); <system>-<rest> gives
// <rest>.
func dashAlias(name string, systems []string) (string, string) {
	padded := "-" + name + "-"
	for _, sys := range systems {
		i := strings.Index(padded, "-"+sys+"-")
		if i < 0 {
			continue
		}
		prefix := padded[1:max(i, 1)]
		rest := padded[i+len(sys)+2 : len(padded)-1]
		if i == 0 {
			prefix = ""
		}
		if rest == "" || strings.HasPrefix(rest, ".") || strings.HasSuffix(prefix, ".") {
			return "", ""
		}
		if prefix == "" {
			return rest, sys
		}
		return prefix + "-" + rest, sys
	}
	return "", ""
}

// addAlias adds an alias as <name>.<system> where the pins' own names
// leave room, after markIndexed: an alias never displaces a pin, enters a
// list of numbered pins, or changes what a pin's name selects; the alias
// says whether the tree took it.
func (n *node) addAlias(a *alias, systems []string) {
	comps := append(strings.Split(a.name, "."), a.system)
	for _, c := range comps {
		if c == "" {
			return
		}
	}
	for i, c := range comps {
		child, ok := n.children[c]
		last := i == len(comps)-1
		switch {
		case !ok && last:
			n.children[c] = &node{storePath: a.pin.StorePath, pin: a.pin.Name, alias: true}
			a.added = true
			return
		case !ok:
			child = &node{pin: a.pin.Name, children: map[string]*node{}, alias: true}
			n.children[c] = child
		case child.children == nil || child.indexed || last:
			return // a store path, or a list: taken
		case i == len(comps)-2 && !child.alias && !child.perSystem(systems):
			return // a set of pins: <name>.<system> there is no system's
		}
		n = child
	}
}

// perSystem reports whether every name of the set n is a system.
func (n *node) perSystem(systems []string) bool {
	for k := range n.children {
		if !slices.Contains(systems, k) {
			return false
		}
	}
	return true
}

// maxIndex bounds a list index in a pin name: Nix holds a list that long
// in memory to select one element.
const maxIndex = 9999

// markIndexed marks the sets below the top whose names are all numbers
// (up to maxIndex, no two the same number): Nix reads a number in an
// attribute path (nix-instantiate -A release-1.0, nix eval -f … release-1.0)
// as a list index, so default.nix presents such a set as a list. It
// returns a warning for each pin that a number in its name keeps from
// being selected that way (the flake, which reads every name as an
// attribute, still selects it).
func (n *node) markIndexed() []string {
	var warnings []string
	var walk func(n *node, top bool)
	walk = func(n *node, top bool) {
		if n.children == nil {
			return
		}
		numeric, all := map[int]bool{}, len(n.children) > 0
		var numbered []string
		for name := range n.children {
			i, ok := listIndex(name)
			if !ok {
				all = false
				continue
			}
			numbered = append(numbered, name)
			if numeric[i] || i > maxIndex {
				all = false
			}
			numeric[i] = true
		}
		n.indexed = all && !top
		if !n.indexed {
			sort.Strings(numbered)
			for _, name := range numbered {
				for _, pin := range n.children[name].pins() {
					warnings = append(warnings, fmt.Sprintf("pin %q cannot be selected with -A or nix eval -f: Nix reads %q in it as a list index%s; "+
						"nix build EXPORT#%s selects it", pin, name, whyNotIndexed(top, name), pin))
				}
			}
		}
		for _, name := range sortedKeys(n.children) {
			walk(n.children[name], false)
		}
	}
	walk(n, true)
	sort.Strings(warnings)
	return slices.Compact(warnings)
}

// whyNotIndexed says why a numbered name's set is not a list.
func whyNotIndexed(top bool, name string) string {
	if top {
		return ", and the top level is an attribute set"
	}
	if i, _ := listIndex(name); i > maxIndex {
		return fmt.Sprintf(" larger than %d", maxIndex)
	}
	return " beside other names at its level"
}

// pins lists the pins below n (their own names, not aliases).
func (n *node) pins() []string {
	if n.children == nil {
		if n.alias {
			return nil
		}
		return []string{n.pin}
	}
	var out []string
	for _, name := range sortedKeys(n.children) {
		out = append(out, n.children[name].pins()...)
	}
	return out
}

// listIndex reads a name Nix takes for a list index in an attribute
// path: all ASCII digits, a number that fits an unsigned 32-bit integer
// (a longer one is an attribute name to Nix).
func listIndex(name string) (int, bool) {
	if name == "" || strings.TrimLeft(name, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.ParseUint(name, 10, 32)
	return int(i), err == nil
}

// sortedKeys returns a node map's keys in order.
func sortedKeys(m map[string]*node) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// conflict reports a pin whose name is a prefix of another's.
func conflict(short, long string) error {
	return fmt.Errorf("%w: pins %q and %q clash: dots nest, so %q would have to be both a store path and an attribute set; exclude one of them",
		ErrInvalidPin, short, long, short)
}

// representable keeps the pins the tree can hold and warns about each of
// the others: made by another client (pin refuses such names), they are
// left out rather than failing the whole export.
func representable(pins []PinInfo) ([]PinInfo, []string) {
	var warnings []string
	kept := slices.DeleteFunc(slices.Clone(pins), func(p PinInfo) bool {
		err := validatePin(p)
		if err != nil {
			warnings = append(warnings, strings.TrimPrefix(err.Error(), ErrInvalidPin.Error()+": ")+": left out")
		}
		return err != nil
	})
	return kept, warnings
}

// validatePin refuses names and paths the tree cannot represent.
func validatePin(p PinInfo) error {
	if p.Name == "" {
		return fmt.Errorf("%w: a pin has an empty name (store path %s)", ErrInvalidPin, p.StorePath)
	}
	if err := CheckName(p.Name); err != nil {
		return fmt.Errorf("%w: pin name %q %v", ErrInvalidPin, p.Name, err)
	}
	if _, err := store.ParseAbsolute(p.StorePath); err != nil {
		return fmt.Errorf("%w: pin %q: %q is not a store path", ErrInvalidPin, p.Name, p.StorePath)
	}
	return nil
}

// maxName bounds a pin name: pins are named after packages and systems,
// and a name is sent to Cachix and shown in messages.
const maxName = 256

// CheckName refuses a pin name that cannot be meant or that an export
// cannot hold as attributes: empty, longer than 256 bytes, not UTF-8,
// with control characters, or with an empty component between dots
// (".a", "a..b", "a."). The error completes "pin name NAME …".
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case len(name) > maxName:
		return fmt.Errorf("is %d bytes long; a pin name may be at most %d", len(name), maxName)
	case !utf8.ValidString(name):
		return errors.New("is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("contains the control character %q", r)
		}
	}
	for _, c := range strings.Split(name, ".") {
		if c == "" {
			return errors.New("has an empty component between dots (dots nest attributes: a.b is b in a)")
		}
	}
	return nil
}

// render writes a set as Nix, attributes sorted, nested sets indented; an
// indexed set goes through pins.nix's indexed function with its dotted
// name (name), for default.nix to make it a list.
func (n *node) render(b *strings.Builder, indent, name string) {
	if n.indexed {
		b.WriteString("indexed " + nixString(name) + " ")
	}
	b.WriteString("{\n")
	for _, key := range sortedKeys(n.children) {
		child := n.children[key]
		b.WriteString(indent + "  " + nixAttrName(key) + " = ")
		if child.children == nil {
			b.WriteString("storePath " + nixString(child.storePath))
		} else {
			full := key
			if name != "" {
				full = name + "." + key
			}
			child.render(b, indent+"  ", full)
		}
		b.WriteString(";\n")
	}
	b.WriteString(indent + "}")
}

// pinsHeader explains pins.nix.
const pinsHeader = `#
# Pin name -> store path. Dots in a name nest ("tools.jq" is tools.jq); a
# pin <prefix>-<system>-<name> also appears as <prefix>-<name>.<system>.
# A set whose names are all numbers ("release-1.0": release-1."0") goes
# through indexed, which default.nix turns into a list: Nix reads numbers
# in an attribute path (-A release-1.0) as list indices.
`

// generatedHeader opens every generated file.
const generatedHeader = "# Generated by `cachix-select pins export`. Do not edit: regenerate instead.\n"

// defaultTemplate is default.nix. @SYSTEMS@ is the list of system names
// that mark a set as per-system.
const defaultTemplate = generatedHeader + `#
# Each attribute is a store path pinned in the cache; evaluating one reads
# nothing but these files, and builtins.storePath substitutes the path:
#
#   nix build -f <this directory, or the URL of its tarball> <pin name>
#   nix-instantiate --eval --read-write-mode <…> -A <pin name>
#
# Every pin is selected by its own name: dots nest, and a number between
# dots is a list index, as Nix reads -A release-1.0. A pin named
# "<name>.<system>" is also offered as <name>, and one named
# "<prefix>-<system>-<name>" as <prefix>-<name>, on <system>.
{ system ? builtins.currentSystem, storePath ? builtins.storePath }:
let
  # A set of pins numbered by a list index (release-1."0") as the list Nix
  # selects it from; a number no pin has is an error when selected.
  indexed = name: set:
    let
      keys = builtins.attrNames set;
      index = k: builtins.fromJSON (builtins.head (builtins.match "0*([0-9]+)" k));
      size = 1 + builtins.foldl' (m: k: if index k > m then index k else m) 0 keys;
      at = i:
        let found = builtins.filter (k: index k == i) keys; in
        if found == [ ] then throw "there is no pin ${name}.${toString i}" else set.${builtins.head found};
    in
    builtins.genList at size;

  pins = import ./pins.nix { inherit storePath indexed; };

  # Attribute names that are systems: a set with only these is per-system.
  systems = @SYSTEMS@;

  isPerSystem = set: builtins.all (n: builtins.elem n systems) (builtins.attrNames set);

  # Take this system's child of a per-system set, at any depth. Nothing
  # else is forced, so only the requested pin is ever substituted.
  pick = name: value:
    if builtins.isList value then
      builtins.genList (i: pick "${name}.${toString i}" (builtins.elemAt value i)) (builtins.length value)
    else if !(builtins.isAttrs value) then value
    else if value ? ${system} then value.${system}
    else if isPerSystem value then
      throw "pin ${name} has no store path for ${system} (only for ${builtins.concatStringsSep ", " (builtins.attrNames value)})"
    else builtins.mapAttrs (n: pick "${name}.${n}") value;
in
builtins.mapAttrs pick pins
`

// flakeTemplate is flake.nix. It has no inputs so that it evaluates
// without fetching anything but itself, and `nix flake show` / `nix flake
// check` force no pinned path: the pins are legacyPackages (not
// derivations, so neither command looks inside), and apps exist only for
// pins whose artifacts name a program.
const flakeTemplate = generatedHeader + `#
#   nix build <URL>#<pin name>    nix run <URL>#<app name>
#
# legacyPackages.<system> holds the pins for that system, each under its
# own name (dots nest; every part is an attribute name here), a pin named
# "<name>.<system>" also as <name> and one named "<prefix>-<system>-<name>"
# also as <prefix>-<name>; a pin without a build for a system is left out
# there. Apps: pins whose artifacts name a program under bin/, and the
# <prefix>-<name> of pins without artifacts (running bin/<name>, as nix run
# guesses for a package). builtins.fetchClosure is used when Nix offers it for
# input-addressed paths (Nix >= 2.17 with the fetch-closure experimental
# feature) and store.nix names an http(s) cache; the cache's signing key
# must be trusted, and the whole closure must be in that one cache.
# Otherwise Nix substitutes the path from its configured substituters when
# it is evaluated (builtins.appendContext, which pure evaluation allows,
# unlike builtins.storePath).
{
  description = @DESCRIPTION@;

  outputs = { self }:
    let
      systems = @SYSTEMS@;

      # Attribute names that are systems: a set with only these is per-system.
      systemNames = @KNOWN@;

      # Pins that run a program: their name (without the system) and the
      # program inside the pinned path.
      programs = @PROGRAMS@;

      genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);

      cache = import ./store.nix;

      useFetchClosure = cache != null && builtins ? fetchClosure
        && builtins.compareVersions builtins.nixVersion "2.17" >= 0;

      # The pinned path, substituted when it is evaluated.
      storePath = path:
        if useFetchClosure
        then builtins.fetchClosure { fromStore = cache; fromPath = path; inputAddressed = true; }
        else builtins.appendContext path { ${path} = { path = true; }; };

      # The same tree with plain strings: its shape, read without forcing
      # a single pinned path.
      shape = import ./pins.nix { storePath = path: path; };
      pins = import ./pins.nix { inherit storePath; };

      isPerSystem = set: builtins.all (n: builtins.elem n systemNames) (builtins.attrNames set);

      # The pins for one system, at any depth: a per-system set becomes its
      # child for that system, or is left out when it has none.
      forSystem = system: shape: pins:
        builtins.listToAttrs (builtins.concatMap (name:
          let s = shape.${name}; in
          if !(builtins.isAttrs s) then [ { inherit name; value = pins.${name}; } ]
          else if s ? ${system} then [ { inherit name; value = pins.${name}.${system}; } ]
          else if isPerSystem s then [ ]
          else [ { inherit name; value = forSystem system s pins.${name}; } ])
          (builtins.attrNames shape));

      appsFor = system:
        builtins.listToAttrs (builtins.concatMap (name:
          let
            p = programs.${name};
            program = if builtins.isString p then p else p.${system} or null;
          in
          if program == null || !(self.legacyPackages.${system} ? ${name}) then [ ]
          else [ {
            inherit name;
            value = {
              type = "app";
              program = "${self.legacyPackages.${system}.${name}}/${program}";
              meta.description = "${program} of the pin ${name}";
            };
          } ])
          (builtins.attrNames programs));
    in
    {
      legacyPackages = genAttrs systems (system: forSystem system shape pins);
      apps = genAttrs systems appsFor;
    };
}
`
