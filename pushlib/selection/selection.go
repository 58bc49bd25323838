// Package selection says which paths of the roots' closures a push leaves
// out, and what becomes of the paths that depend on them (design.md §5.9):
// exclusion rules (a glob on the store path's name, a regular expression
// on the whole path, a NAR-size cap), the upstream filter (paths signed by
// an upstream cache's key count as present there), and which closure a
// root is pushed with (runtime, or build). The rules are settings like the
// compression: the command line's and a manifest's are merged (Merge), and
// the cache's kind decides the filter's default (Effective). Applying them
// to a closure is the Plan's work (package pushlib).
package selection

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Mode says what happens to the paths that depend on an excluded path.
type Mode string

// The modes.
const (
	// Prune: an excluded path and every path that depends on it are not
	// pushed, so the cache never holds a closure with a hole in it.
	Prune Mode = "prune"
	// Upstream: the excluded paths are expected from another cache the
	// users also substitute from; the paths that depend on them are
	// pushed, and the report names the references left to that cache.
	Upstream Mode = "upstream"
)

// ParseMode checks a mode's name ("" is Prune, the default).
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", Prune:
		return Prune, nil
	case Upstream:
		return Upstream, nil
	}
	return "", fault.BadInputf("%q is not an exclude mode (want prune or upstream)", s)
}

// Closure is the closure a root is pushed with.
type Closure string

// The closures.
const (
	// Runtime is the root's references, transitively (the default, as
	// with cachix push).
	Runtime Closure = "runtime"
	// Build is what building the root needs: the runtime closure of its
	// derivation's inputs, plus its outputs (store.BuildClosure).
	Build Closure = "build"
)

// ParseClosure checks a closure's name ("" is Runtime).
func ParseClosure(s string) (Closure, error) {
	switch Closure(s) {
	case "", Runtime:
		return Runtime, nil
	case Build:
		return Build, nil
	}
	return "", fault.BadInputf("%q is not a closure (want runtime or build)", s)
}

// DefaultUpstreamKey is the key name the upstream filter trusts unless
// told otherwise: cache.nixos.org's.
const DefaultUpstreamKey = "cache.nixos.org-1"

// Rules are one layer's selection settings (the command line's, a
// manifest's), or, once merged and made effective, one push's.
type Rules struct {
	// Names are path.Match globs on a store path's name (what follows
	// "<hash>-"): "*-doc", "source".
	Names []string `json:"names,omitempty"`
	// Regex are regular expressions (RE2) matched against the whole store
	// path.
	Regex []string `json:"regex,omitempty"`
	// MaxNarSize excludes paths whose NAR is larger (0: no cap).
	MaxNarSize uint64 `json:"maxNarSize,omitempty"`
	// Mode is what happens to dependents ("" before Effective: not set).
	Mode Mode `json:"mode,omitempty"`
	// UpstreamFilter turns the upstream filter on or off (nil: the
	// cache's default, see Effective).
	UpstreamFilter *bool `json:"upstreamFilter,omitempty"`
	// UpstreamKeys are the key names whose signatures mark a path as
	// present upstream (empty: DefaultUpstreamKey).
	UpstreamKeys []string `json:"upstreamKeys,omitempty"`
}

// Excludes reports whether any exclusion rule is set.
func (r Rules) Excludes() bool {
	return len(r.Names) > 0 || len(r.Regex) > 0 || r.MaxNarSize > 0
}

// Check compiles the patterns, so that a typo is an error before
// anything is pushed. Errors name the pattern.
func (r Rules) Check() error {
	_, err := r.Compile()
	return err
}

// Merge puts a higher layer (the command line) over a lower one (a
// manifest): the exclusion lists and upstream keys add up, since each
// layer names more to leave out; a cap, a mode or a filter setting of the
// higher layer wins.
func Merge(high, low Rules) Rules {
	out := Rules{
		Names:          union(low.Names, high.Names),
		Regex:          union(low.Regex, high.Regex),
		UpstreamKeys:   union(low.UpstreamKeys, high.UpstreamKeys),
		MaxNarSize:     low.MaxNarSize,
		Mode:           low.Mode,
		UpstreamFilter: low.UpstreamFilter,
	}
	if high.MaxNarSize > 0 {
		out.MaxNarSize = high.MaxNarSize
	}
	if high.Mode != "" {
		out.Mode = high.Mode
	}
	if high.UpstreamFilter != nil {
		out.UpstreamFilter = high.UpstreamFilter
	}
	return out
}

// union keeps a's order, then what b adds.
func union(a, b []string) []string {
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Effective fills in the defaults for a cache of the given scheme
// ("cachix", "file", "s3"): the prune mode; the upstream filter, on for
// plain binary caches, where nothing filters on the server's side, and
// for Cachix only when asked (a filter setting or keys given), since
// Cachix leaves out what cache.nixos.org has by itself; and the default
// upstream key.
func (r Rules) Effective(scheme string) Rules {
	if r.Mode == "" {
		r.Mode = Prune
	}
	on := scheme != "cachix" || len(r.UpstreamKeys) > 0
	if r.UpstreamFilter != nil {
		on = *r.UpstreamFilter
	}
	r.UpstreamFilter = &on
	if on && len(r.UpstreamKeys) == 0 {
		r.UpstreamKeys = []string{DefaultUpstreamKey}
	}
	if !on {
		r.UpstreamKeys = nil
	}
	return r
}

// Filtering reports whether the upstream filter is on (after Effective).
func (r Rules) Filtering() bool { return r.UpstreamFilter != nil && *r.UpstreamFilter }

// Fingerprint identifies effective rules that can change what a push
// leaves out, for the hooks' records ("" when nothing is left out: no
// rule and no filter). Two pushes with the same fingerprint agree on what
// a complete closure is.
func (r Rules) Fingerprint() string {
	if !r.Excludes() && !r.Filtering() {
		return ""
	}
	c := r
	c.Names, c.Regex, c.UpstreamKeys = sorted(r.Names), sorted(r.Regex), sorted(r.UpstreamKeys)
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// sorted returns a sorted copy.
func sorted(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

// Matcher applies compiled rules to paths.
type Matcher struct {
	rules Rules
	regex []*regexp.Regexp
}

// Compile checks and compiles the rules.
func (r Rules) Compile() (*Matcher, error) {
	m := &Matcher{rules: r}
	for _, g := range r.Names {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fault.BadInputf("exclude pattern %q: %w", g, err)
		}
	}
	for _, s := range r.Regex {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fault.BadInputf("exclude regex %q: %v", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		m.regex = append(m.regex, re)
	}
	return m, nil
}

// Upstream returns the name of the upstream key that signed the path, if
// the filter is on and one did.
func (m *Matcher) Upstream(pi *store.PathInfo) (string, bool) {
	if !m.rules.Filtering() {
		return "", false
	}
	return pi.SignedBy(m.rules.UpstreamKeys)
}

// Exclude returns the first rule that excludes the path, in words
// (`name "*-doc"`, `regex "…"`, `max-nar-size 1.0 GiB (its NAR is 2.0 GiB)`), or "".
func (m *Matcher) Exclude(pi *store.PathInfo) string {
	name := store.NameOf(pi.Path)
	for _, g := range m.rules.Names {
		if ok, _ := path.Match(g, name); ok {
			return fmt.Sprintf("name %q", g)
		}
	}
	for i, re := range m.regex {
		if re.MatchString(pi.Path) {
			return fmt.Sprintf("regex %q", m.rules.Regex[i])
		}
	}
	if c := m.rules.MaxNarSize; c > 0 && pi.NarSize > c {
		return fmt.Sprintf("max-nar-size %s (its NAR is %s)", FormatSize(c), FormatSize(pi.NarSize))
	}
	return ""
}

// ParseSize reads a size the way nix.conf does: bytes, or a number with a
// K, M, G or T suffix (powers of 1024): "100M", "1G", "512".
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M', 'm':
			mult = 1 << 20
		case 'G', 'g':
			mult = 1 << 30
		case 'T', 't':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || v == 0 || v > (1<<63)/mult {
		return 0, fault.BadInputf("%q is not a size (want bytes, or a number with K, M, G or T: 100M)", s)
	}
	return v * mult, nil
}

// FormatSize renders bytes in binary units.
func FormatSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
