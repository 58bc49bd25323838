package pins

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
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
		).Replace(flakeTemplate)),
	}, nil
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
	if !isStorePath(p.StorePath) {
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
// without fetching anything but itself.
const flakeTemplate = generatedHeader + `#
#   nix build <URL>#<pin name>    nix run <URL>#<pin name>
#
# builtins.fetchClosure is used when Nix offers it for input-addressed
# paths (Nix >= 2.17 with the fetch-closure experimental feature) and
# store.nix names an http(s) cache; the cache's signing key must be
# trusted, and the whole closure must be in that one cache. Otherwise
# builtins.storePath is used, which needs --impure.
{
  description = @DESCRIPTION@;

  outputs = { self }:
    let
      systems = @SYSTEMS@;

      genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);

      cache = import ./store.nix;

      useFetchClosure = cache != null && builtins ? fetchClosure
        && builtins.compareVersions builtins.nixVersion "2.17" >= 0;

      storePath = path:
        if useFetchClosure
        then builtins.fetchClosure { fromStore = cache; fromPath = path; inputAddressed = true; }
        else builtins.storePath path;

      # An app runs bin/<last component of the pin name>.
      app = name: value:
        if builtins.isAttrs value
        then builtins.mapAttrs app value
        else { type = "app"; program = "${value}/bin/${name}"; };
    in
    {
      packages = genAttrs systems (system: import ./default.nix { inherit system storePath; });
      apps = genAttrs systems (system: builtins.mapAttrs app self.packages.${system});
    };
}
`
