package pins_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/pins"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Store paths for the fixtures (valid nix-base32 hashes; not in any store).
const (
	helloLinux  = "/nix/store/dzhf0i3wi69568m5nvyckck8bbs9yrfd-hello-2.12.1"
	helloDarwin = "/nix/store/0mxdz4ik1jc2j8wb8lg2rcw1hhyp0kaq-hello-2.12.1"
	jq          = "/nix/store/hsj8mwn9vzlyaxzmwyf111scisnjhlkb-jq-1.7.1-bin"
	omnixCLI    = "/nix/store/3x2kpymc1qmd05da20wnmdyam38jkl7s-omnix-cli-1.0.0"
	deepLinux   = "/nix/store/wc1a2s9v3bqg0zkd7lf4m8x5n6r0y1hj-deep-0.1"
	odd         = "/nix/store/1a5rd0lhmsdbwfbmcyy6p2s7m4g9kx0v-odd-1.0"
	omnixDarwin = "/nix/store/7pq4rz0w1ylx9dj6b0m3c5f2g8h1k4sa-omnix-cli-1.0.0"
)

// oddNames are pin names that need quoting or escaping in Nix.
var oddNames = []string{
	"1password",
	"with",
	"or",
	`quote"d`,
	"dollar${builtins.abort \"pwned\"}",
	"x${abort \"pwned\"}y",
	"double$${y}",
	"trailing$",
	`back\slash`,
	`back\${z}`,
	"spa ce",
	"unicodé",
	"it's",
}

// basicPins is a cache's pins in no particular order.
func basicPins() []pins.PinInfo {
	ps := []pins.PinInfo{
		{Name: "tools.jq", StorePath: jq, Artifacts: []string{"bin/jq"}}, // nested: no app
		{Name: "hello.x86_64-linux", StorePath: helloLinux, Artifacts: []string{"share/doc", "bin/hello"}},
		{Name: "main-x86_64-linux-omnix-cli", StorePath: omnixCLI, Artifacts: []string{"bin/om"}},
		{Name: "hello.aarch64-darwin", StorePath: helloDarwin, Artifacts: []string{"bin/hello"}},
		{Name: "deep.a.x86_64-linux", StorePath: deepLinux},
		{Name: "main-aarch64-darwin-omnix-cli", StorePath: omnixDarwin}, // no artifacts: a guessed app
		{Name: "release-1.0", StorePath: jq},                            // a list index
	}
	for _, n := range oddNames {
		ps = append(ps, pins.PinInfo{Name: n, StorePath: odd})
	}
	return ps
}

// goldenCases are the Export inputs whose output is checked in.
var goldenCases = []struct {
	name string
	pins []pins.PinInfo
	opts pins.ExportOptions
}{
	{"basic", basicPins(), pins.ExportOptions{CacheURL: "https://example.cachix.org"}},
	{"filtered", basicPins(), pins.ExportOptions{
		CacheURL: "file:///srv/cache",
		Include:  []string{"hello.*", "main-*", "tools.*", "deep.*"},
		Exclude:  []string{"tools.jq"},
		Systems:  []string{"x86_64-linux", "x86_64-linux"},
	}},
	{"empty", nil, pins.ExportOptions{}},
}

// TestExportGolden compares Export with the checked-in files (-update rewrites them).
func TestExportGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files, err := pins.Export(tc.pins, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sortedKeys(files), []string{"default.nix", "flake.nix", "pins.nix", "store.nix"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("files = %q, want %q", got, want)
			}
			dir := filepath.Join("testdata", "golden", tc.name)
			if *update {
				if err := pins.WriteDir(dir, files); err != nil {
					t.Fatal(err)
				}
			}
			for name, got := range files {
				want, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s/%s differs from the golden file (run with -update if intended):\n%s", tc.name, name, got)
				}
			}
			// Same input, same bytes, whatever the input order.
			rev := append([]pins.PinInfo(nil), tc.pins...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			again, err := pins.Export(rev, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(files, again) {
				t.Error("Export is not deterministic under input reordering")
			}
		})
	}
}

// TestExportErrors checks pins the tree cannot hold are refused with a clear message.
func TestExportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pins   []pins.PinInfo
		opts   pins.ExportOptions
		errHas string
	}{
		{
			name:   "leaf then set",
			pins:   []pins.PinInfo{{Name: "a.b", StorePath: jq}, {Name: "a", StorePath: odd}},
			errHas: `pins "a" and "a.b" clash: dots nest, so "a" would have to be both a store path and an attribute set; exclude one of them`,
		},
		{
			name:   "set then deeper leaf",
			pins:   []pins.PinInfo{{Name: "x.y.z", StorePath: jq}, {Name: "x.y", StorePath: odd}},
			errHas: `pins "x.y" and "x.y.z" clash`,
		},
		{
			name:   "same name, two paths",
			pins:   []pins.PinInfo{{Name: "a", StorePath: jq}, {Name: "a", StorePath: odd}},
			errHas: `pin "a" is listed twice, with ` + jq + " and " + odd,
		},
		{
			name:   "bad pattern",
			pins:   []pins.PinInfo{{Name: "a", StorePath: jq}},
			opts:   pins.ExportOptions{Include: []string{"["}},
			errHas: `pin name pattern "[": syntax error in pattern`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files, err := pins.Export(tt.pins, tt.opts)
			if !errors.Is(err, pins.ErrInvalidPin) {
				t.Fatalf("Export = %d files, %v; want ErrInvalidPin", len(files), err)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error\n%s\ndoes not contain\n%s", err, tt.errHas)
			}
		})
	}
}

// TestExportIdenticalDuplicate checks a repeated identical pin is written once.
func TestExportIdenticalDuplicate(t *testing.T) {
	t.Parallel()
	files, err := pins.Export([]pins.PinInfo{{Name: "a", StorePath: jq}, {Name: "a", StorePath: jq}}, pins.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(files[pins.PinsFile]), jq); n != 1 {
		t.Errorf("pins.nix names %s %d times, want 1:\n%s", jq, n, files[pins.PinsFile])
	}
}

// TestExportCacheURL checks which cache URLs reach fetchClosure through store.nix.
func TestExportCacheURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, storeNix, errHas string
	}{
		{url: "https://mycache.cachix.org", storeNix: `"https://mycache.cachix.org"`},
		{url: "http://localhost:8080/cache", storeNix: `"http://localhost:8080/cache"`},
		{url: "file:///srv/cache", storeNix: "null"},
		{url: "", storeNix: "null"},
		{url: "mycache", errHas: `cache URL "mycache": expected a URL such as https://NAME.cachix.org`},
	}
	for _, tt := range tests {
		files, err := pins.Export(nil, pins.ExportOptions{CacheURL: tt.url})
		if tt.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("CacheURL %q: err = %v, want %q", tt.url, err, tt.errHas)
			}
			continue
		}
		if err != nil {
			t.Fatalf("CacheURL %q: %v", tt.url, err)
		}
		lines := strings.Split(strings.TrimSpace(string(files[pins.StoreFile])), "\n")
		if last := lines[len(lines)-1]; last != tt.storeNix {
			t.Errorf("CacheURL %q: store.nix ends with %s, want %s", tt.url, last, tt.storeNix)
		}
	}
}

// TestFilter covers name patterns and the system filter.
func TestFilter(t *testing.T) {
	t.Parallel()
	all := []pins.PinInfo{
		{Name: "hello.x86_64-linux"}, {Name: "hello.aarch64-darwin"},
		{Name: "main-x86_64-linux-cli"}, {Name: "main-aarch64-darwin-cli"},
		{Name: "docs"}, {Name: "feature/x-x86_64-linux-cli"},
	}
	tests := []struct {
		name                      string
		include, exclude, systems []string
		want                      []string
	}{
		{name: "everything, sorted", want: []string{"docs", "feature/x-x86_64-linux-cli", "hello.aarch64-darwin", "hello.x86_64-linux", "main-aarch64-darwin-cli", "main-x86_64-linux-cli"}},
		{name: "system keeps system-less pins", systems: []string{"x86_64-linux"}, want: []string{"docs", "feature/x-x86_64-linux-cli", "hello.x86_64-linux", "main-x86_64-linux-cli"}},
		{name: "include", include: []string{"main-*", "hello.*"}, systems: []string{"aarch64-darwin"}, want: []string{"hello.aarch64-darwin", "main-aarch64-darwin-cli"}},
		{name: "star does not cross a slash", include: []string{"*cli"}, want: []string{"main-aarch64-darwin-cli", "main-x86_64-linux-cli"}},
		{name: "exclude wins", include: []string{"*"}, exclude: []string{"hello.*", "docs"}, want: []string{"main-aarch64-darwin-cli", "main-x86_64-linux-cli"}},
		{name: "unknown extra system", systems: []string{"riscv64-none-elf"}, want: []string{"docs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pins.Filter(all, tt.include, tt.exclude, tt.systems)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range got {
				names = append(names, p.Name)
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Errorf("Filter = %q, want %q", names, tt.want)
			}
		})
	}
}

// TestPinSystem covers both naming conventions and near misses.
func TestPinSystem(t *testing.T) {
	t.Parallel()
	systems := pins.DefaultSystems()
	tests := []struct{ name, want string }{
		{"hello.x86_64-linux", "x86_64-linux"},
		{"deep.aarch64-darwin.debug", "aarch64-darwin"},
		{"main-x86_64-linux-omnix-cli", "x86_64-linux"},
		{"x86_64-linux-hello", "x86_64-linux"},
		{"hello-x86_64-linux", "x86_64-linux"},
		{"hello", ""},
		{"xx86_64-linux-hello", ""},
		{"i686-linuxish", ""},
	}
	for _, tt := range tests {
		if got := pins.PinSystem(tt.name, systems); got != tt.want {
			t.Errorf("PinSystem(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestDefaultSystemsIsACopy guards against shared mutable state.
func TestDefaultSystemsIsACopy(t *testing.T) {
	t.Parallel()
	a := pins.DefaultSystems()
	a[0] = "changed"
	if pins.DefaultSystems()[0] == "changed" {
		t.Error("DefaultSystems returns shared state")
	}
}

// sortedKeys lists a file map's names in order.
func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestExportLeavesOutInvalidPins: a pin the tree cannot hold (another
// client made it) is left out with a warning naming it; the other pins
// are exported.
func TestExportLeavesOutInvalidPins(t *testing.T) {
	t.Parallel()
	bad := []pins.PinInfo{
		{Name: "a..b", StorePath: jq}, {Name: "a.", StorePath: jq}, {Name: ".dot", StorePath: jq},
		{Name: "", StorePath: jq}, {Name: "a\x00b", StorePath: jq},
		{Name: "notstore", StorePath: jq + "/bin/jq"}, {Name: "relative", StorePath: "result"},
	}
	ps := append([]pins.PinInfo{{Name: "good", StorePath: odd}}, bad...)
	files, warnings, err := pins.ExportWarnings(ps, pins.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != len(bad) {
		t.Errorf("%d warnings for %d pins left out: %q", len(warnings), len(bad), warnings)
	}
	for _, want := range []string{`pin name "a..b" has an empty component between dots`, `pin name ".dot" has an empty component`,
		`a pin has an empty name (store path ` + jq + `)`, `pin name "a\x00b" contains the control character`,
		`pin "notstore": "` + jq + `/bin/jq" is not a store path`, `pin "relative": "result" is not a store path`} {
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, want) && strings.HasSuffix(w, "left out") }) {
			t.Errorf("no warning saying %q: %q", want, warnings)
		}
	}
	nix := string(files[pins.PinsFile])
	if !strings.Contains(nix, odd) || strings.Contains(nix, jq) {
		t.Errorf("pins.nix does not hold just the good pin:\n%s", nix)
	}
}

// A --cache-url fetchClosure cannot fetch from is said, not silently
// null; one that is no URL at all is bad input.
func TestExportCacheURLNotHTTP(t *testing.T) {
	t.Parallel()
	ps := []pins.PinInfo{{Name: "good", StorePath: odd}}
	for _, u := range []string{"s3://bucket?region=eu-west-1", "file:///srv/cache", "ftp://x"} {
		files, warnings, err := pins.ExportWarnings(ps, pins.ExportOptions{CacheURL: u})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "only from http and https caches, not "+u) }) {
			t.Errorf("%s: no warning in %q", u, warnings)
		}
		if !strings.Contains(string(files[pins.StoreFile]), "null") {
			t.Errorf("%s: store.nix is not null:\n%s", u, files[pins.StoreFile])
		}
	}
	_, _, err := pins.ExportWarnings(ps, pins.ExportOptions{CacheURL: "not a url"})
	if !errors.Is(err, fault.ErrBadInput) {
		t.Errorf("not a URL: %v, want bad input (exit 2)", err)
	}
}
