package pins

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"

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
// Errors wrap ErrInvalidPin, naming the pins at fault.
func Export(pins []PinInfo, opts ExportOptions) (map[string][]byte, error) {
	selected, err := Filter(pins, opts.Include, opts.Exclude, opts.Systems)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPin, err)
	}
	root, err := buildTree(selected)
	if err != nil {
		return nil, err
	}
	fetchFrom, err := fetchClosureStore(opts.CacheURL)
	if err != nil {
		return nil, err
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
	pinsNix.WriteString("{ storePath }:\n")
	root.render(&pinsNix, "")
	pinsNix.WriteString("\n")

	return map[string][]byte{
		StoreFile: []byte(renderStore(opts.CacheURL, fetchFrom)),
		PinsFile:  []byte(pinsNix.String()),
		DefaultFile: []byte(strings.NewReplacer(
			"@SYSTEMS@", nixList(knownSystems(opts.Systems), "    "),
		).Replace(defaultTemplate)),
		FlakeFile: []byte(strings.NewReplacer(
			"@DESCRIPTION@", nixString(description),
			"@SYSTEMS@", nixList(flakeSystems, "        "),
			"@KNOWN@", nixList(knownSystems(opts.Systems), "        "),
			"@PROGRAMS@", renderPrograms(selected, knownSystems(opts.Systems)),
		).Replace(flakeTemplate)),
	}, nil
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

// renderPrograms writes the flake's programs set: for each pin that names
// a program and whose name (less a trailing system) has no dots, name →
// program, or name → { system → program } for per-system pins. Apps are
// flat (apps.<system>.<name>), so nested pins get none.
func renderPrograms(selected []PinInfo, systems []string) string {
	type entry struct {
		plain    string
		bySystem map[string]string
	}
	entries := map[string]*entry{}
	for _, p := range selected {
		prog := program(p)
		if prog == "" {
			continue
		}
		name, system := p.Name, ""
		if i := strings.LastIndexByte(p.Name, '.'); i >= 0 && slices.Contains(systems, p.Name[i+1:]) {
			name, system = p.Name[:i], p.Name[i+1:]
		}
		if strings.Contains(name, ".") {
			continue
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
		return "", fmt.Errorf("cache URL %q: expected a URL such as https://NAME.cachix.org", cacheURL)
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

// conflict reports a pin whose name is a prefix of another's.
func conflict(short, long string) error {
	return fmt.Errorf("%w: pins %q and %q clash: dots nest, so %q would have to be both a store path and an attribute set; exclude one of them",
		ErrInvalidPin, short, long, short)
}

// validatePin refuses names and paths the tree cannot represent.
func validatePin(p PinInfo) error {
	if p.Name == "" {
		return fmt.Errorf("%w: a pin has an empty name (store path %s)", ErrInvalidPin, p.StorePath)
	}
	if strings.ContainsFunc(p.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: pin name %q contains control characters", ErrInvalidPin, p.Name)
	}
	for _, c := range strings.Split(p.Name, ".") {
		if c == "" {
			return fmt.Errorf("%w: pin name %q has an empty component between dots; exclude it", ErrInvalidPin, p.Name)
		}
	}
	if _, err := store.ParseAbsolute(p.StorePath); err != nil {
		return fmt.Errorf("%w: pin %q: %q is not a store path", ErrInvalidPin, p.Name, p.StorePath)
	}
	return nil
}

// render writes a set as Nix, attributes sorted, nested sets indented.
func (n *node) render(b *strings.Builder, indent string) {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	b.WriteString("{\n")
	for _, name := range names {
		child := n.children[name]
		b.WriteString(indent + "  " + nixAttrName(name) + " = ")
		if child.children == nil {
			b.WriteString("storePath " + nixString(child.storePath))
		} else {
			child.render(b, indent+"  ")
		}
		b.WriteString(";\n")
	}
	b.WriteString(indent + "}")
}

// generatedHeader opens every generated file.
const generatedHeader = "# Generated by `cachix-select pins export`. Do not edit: regenerate instead.\n"

// defaultTemplate is default.nix. @SYSTEMS@ is the list of system names
// that mark a set as per-system.
const defaultTemplate = generatedHeader + `#
# Each attribute is a store path pinned in the cache; evaluating one reads
# nothing but these files, and builtins.storePath substitutes the path:
#
#   nix build -f <this directory, or the URL of its tarball> <pin name>
#
# A pin named "<name>.<system>" is offered as <name> on <system>.
{ system ? builtins.currentSystem, storePath ? builtins.storePath }:
let
  pins = import ./pins.nix { inherit storePath; };

  # Attribute names that are systems: a set with only these is per-system.
  systems = @SYSTEMS@;

  isPerSystem = set: builtins.all (n: builtins.elem n systems) (builtins.attrNames set);

  # Take this system's child of a per-system set, at any depth. Nothing
  # else is forced, so only the requested pin is ever substituted.
  pick = name: value:
    if !(builtins.isAttrs value) then value
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
# legacyPackages.<system> holds the pins for that system (a pin named
# "<name>.<system>" appears as <name>; a pin without a build for a system
# is left out there). builtins.fetchClosure is used when Nix offers it for
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
