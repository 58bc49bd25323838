package omci_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/omci"
)

const (
	fooLinux    = "/nix/store/dzhf0i3wi69568m5nvyckck8bbs9yrfd-foo-0.1.0.0"
	barLinux    = "/nix/store/hsj8mwn9vzlyaxzmwyf111scisnjhlkb-bar-0.1.0.0"
	shellLinux  = "/nix/store/3x2kpymc1qmd05da20wnmdyam38jkl7s-ghc-shell-for-packages-0"
	fooDarwin   = "/nix/store/0mxdz4ik1jc2j8wb8lg2rcw1hhyp0kaq-foo-0.1.0.0"
	barDarwin   = "/nix/store/1a5rd0lhmsdbwfbmcyy6p2s7m4g9kx0v-bar-0.1.0.0"
	linuxTool   = "/nix/store/wc1a2s9v3bqg0zkd7lf4m8x5n6r0y1hj-linux-tool-1.0"
	nixShell    = "/nix/store/pj2l11lc4kai6av32hgfsrsvmga7vkhf-nix-shell"
	docs        = "/nix/store/0g3b4bmy8yppmvf2ksr25rkwzwnsvn1q-services-flake-docs"
	defaultOut  = "/nix/store/l9c8y2xx2iffk8l1ipp4mkval8wl8paa-default"
	defaultTest = "/nix/store/ib83flb2pqjb416qrjbs4pqhifa3hhs4-default-test"
	bash        = "/nix/store/9q0rfz2yfwc8l0v4a9ba1v0ivy1kl2ix-bash-5.2p37"
	fooDrv      = "/nix/store/2q0rfz2yfwc8l0v4a9ba1v0ivy1kl2ix-foo-0.1.0.0.drv"
)

// parseFile parses a fixture under testdata, failing the test on error.
func parseFile(t *testing.T, name string) *omci.Results {
	t.Helper()
	r, err := parseFixture(name)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return r
}

// parseFixture opens and parses a fixture, naming it by its base name.
func parseFixture(name string) (*omci.Results, error) {
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return omci.Parse(f, filepath.Base(name))
}

// TestParseValid parses realistic results: one system, sub-flakes, several systems, per-system layout.
func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		systems   []string
		flake     string
		subflakes map[string]omci.Subflake
	}{
		{
			file:    "one-system.json",
			systems: []string{"x86_64-linux"},
			flake:   "github:srid/haskell-multi-nix/c85563721c388629fa9e538a1d97274861bc8321",
			subflakes: map[string]omci.Subflake{"ROOT": {Built: true, Outputs: []omci.Output{
				{System: "x86_64-linux", Name: "bar", StorePath: barLinux},
				{System: "x86_64-linux", Name: "foo", StorePath: fooLinux},
				{System: "x86_64-linux", Name: "ghc-shell-for-packages-0", StorePath: shellLinux},
			},
				// bar/bin/bar is inside bar: one store path.
				OutPaths: []string{shellLinux, fooLinux, barLinux}}},
		},
		{
			file:    "several-subflakes.json",
			systems: []string{"x86_64-linux"},
			flake:   "github:juspay/services-flake/23cf162387af041035072ee4a9de20f8408907cb",
			subflakes: map[string]omci.Subflake{
				"ROOT": {Built: true, Outputs: []omci.Output{
					{System: "x86_64-linux", Name: "nix-shell", StorePath: nixShell},
					{System: "x86_64-linux", Name: "services-flake-docs", StorePath: docs},
				}, OutPaths: []string{docs, nixShell}},
				"simple-example": {Built: true, Outputs: []omci.Output{
					{System: "x86_64-linux", Name: "default", StorePath: defaultOut},
					{System: "x86_64-linux", Name: "default-test", StorePath: defaultTest},
					{System: "x86_64-linux", Name: "nix-shell", StorePath: nixShell},
				}, OutPaths: []string{defaultTest, defaultOut, nixShell},
					AllDeps: []string{bash, defaultTest, defaultOut, nixShell}},
				"doc": {Built: false},
			},
		},
		{
			// omnix today: one byName for both systems, systems unknown.
			file:    "several-systems.json",
			systems: []string{"x86_64-linux", "aarch64-darwin"},
			flake:   "github:srid/haskell-multi-nix/c85563721c388629fa9e538a1d97274861bc8321",
			subflakes: map[string]omci.Subflake{"ROOT": {Built: true, Outputs: []omci.Output{
				{Name: "bar", StorePath: barDarwin},
				{Name: "foo", StorePath: fooDarwin},
				{Name: "linux-tool", StorePath: linuxTool},
			}, OutPaths: []string{fooDarwin, barDarwin, fooLinux, barLinux, linuxTool}}},
		},
		{
			file:    "per-system.json",
			systems: []string{"x86_64-linux", "aarch64-darwin"},
			flake:   "github:srid/haskell-multi-nix/c85563721c388629fa9e538a1d97274861bc8321",
			subflakes: map[string]omci.Subflake{"ROOT": {Built: true, Outputs: []omci.Output{
				{System: "aarch64-darwin", Name: "bar", StorePath: barDarwin},
				{System: "aarch64-darwin", Name: "foo", StorePath: fooDarwin},
				{System: "x86_64-linux", Name: "bar", StorePath: barLinux},
				{System: "x86_64-linux", Name: "foo", StorePath: fooLinux},
				{System: "x86_64-linux", Name: "linux-tool", StorePath: linuxTool},
			}, OutPaths: []string{fooDarwin, barDarwin, fooLinux, barLinux, linuxTool}}},
		},
		{
			// The per-system layout with om's allDeps beside the systems.
			file:    "per-system-alldeps.json",
			systems: []string{"x86_64-linux"},
			flake:   "github:srid/haskell-multi-nix/c85563721c388629fa9e538a1d97274861bc8321",
			subflakes: map[string]omci.Subflake{"ROOT": {Built: true, Outputs: []omci.Output{
				{System: "x86_64-linux", Name: "foo", StorePath: fooLinux},
			}, OutPaths: []string{fooLinux, linuxTool}, AllDeps: []string{fooDrv, bash, fooLinux}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			r := parseFile(t, tt.file)
			if r.Source != tt.file {
				t.Errorf("Source = %q, want %q", r.Source, tt.file)
			}
			if !reflect.DeepEqual(r.Systems, tt.systems) {
				t.Errorf("Systems = %q, want %q", r.Systems, tt.systems)
			}
			if r.Flake != tt.flake {
				t.Errorf("Flake = %q, want %q", r.Flake, tt.flake)
			}
			if !reflect.DeepEqual(r.Subflakes, tt.subflakes) {
				t.Errorf("Subflakes =\n%+v\nwant\n%+v", r.Subflakes, tt.subflakes)
			}
		})
	}
}

// TestParseMalformed checks each malformed file gets an error naming the JSON path and what was expected.
func TestParseMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want string // the whole error message
	}{
		{"truncated.json", "truncated.json: expected the JSON written by `om ci run --results`, got invalid JSON (unexpected end of JSON input)"},
		{"top-array.json", "top-array.json: expected a JSON object (the output of `om ci run --results`), got an array"},
		{"no-systems.json", `no-systems.json: systems: expected an array of systems such as ["x86_64-linux"] (written by omnix since late 2024; upgrade omnix), got nothing`},
		{"systems-empty.json", `systems-empty.json: systems: expected a non-empty array of system strings such as ["x86_64-linux"], got an array`},
		{"systems-string.json", `systems-string.json: systems: expected a non-empty array of system strings such as ["x86_64-linux"], got the string "x86_64-linux"`},
		{"systems-bad-entry.json", `systems-bad-entry.json: systems[1]: expected a system string such as "x86_64-linux", got the string "linux"`},
		{"no-result.json", "no-result.json: result: expected an object mapping sub-flake names to their results, got nothing"},
		{"build-string.json", `build-string.json: result.ROOT.build: expected an object with byName (name → store path), or null, got the string "done"`},
		{"build-no-byname.json", "build-no-byname.json: result.ROOT.build: expected an object with byName (name → store path), got an object without byName"},
		{"byname-array.json", "byname-array.json: result.ROOT.build.byName: expected an object mapping names to store paths, got an array"},
		{"byname-value-array.json", "byname-value-array.json: result.ROOT.build.byName.foo: expected a store path string, got an array"},
		{"byname-value-number.json", "byname-value-number.json: result.ROOT.build.byName.foo: expected a store path string, got the number 42"},
		{"byname-relative.json", `byname-relative.json: result.ROOT.build.byName.foo: expected an absolute store path such as /nix/store/<hash>-<name>, got the string "result/bin/foo"`},
		{"byname-subpath.json", `byname-subpath.json: result.ROOT.build.byName.bar: expected an absolute store path such as /nix/store/<hash>-<name>, got the string "/nix/store/hsj8mwn9vzlyaxzmwyf111scisnjhlkb-bar-0.1.0.0/bin/bar"`},
		{"alldeps-string.json", `alldeps-string.json: result.ROOT.build.allDeps: expected an array of store paths (allDeps), got the string "/nix/store/dzhf0i3wi69568m5nvyckck8bbs9yrfd-foo-0.1.0.0"`},
		{"outpaths-relative.json", `outpaths-relative.json: result.ROOT.build.outPaths[0]: expected an absolute store path such as /nix/store/<hash>-<name>, got the string "result/bin/foo"`},
		{"byname-bad-hash.json", `byname-bad-hash.json: result["my sub.flake"].build.byName.foo: expected an absolute store path such as /nix/store/<hash>-<name>, got the string "/nix/store/short-foo"`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			r, err := parseFixture(filepath.Join("malformed", tt.file))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error %q", r, tt.want)
			}
			if !errors.Is(err, omci.ErrMalformed) {
				t.Errorf("errors.Is(err, ErrMalformed) = false for %v", err)
			}
			var fe *omci.FormatError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FormatError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

// TestParseLiberal checks what is accepted although omnix would not write
// it: unknown fields, a missing flake, a missing build, per-system layout
// mixed with nothing else.
func TestParseLiberal(t *testing.T) {
	t.Parallel()
	const doc = `{"version": 7, "systems": ["x86_64-linux"], "result": {
		"ROOT": {"build": {"byName": {"foo": "` + fooLinux + `"}, "futureField": 3, "extra": true}, "lockfile": {}},
		"nobuild": {}}}`
	r, err := omci.Parse(strings.NewReader(doc), "om.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]omci.Subflake{
		"ROOT":    {Built: true, Outputs: []omci.Output{{System: "x86_64-linux", Name: "foo", StorePath: fooLinux}}},
		"nobuild": {Built: false},
	}
	if !reflect.DeepEqual(r.Subflakes, want) {
		t.Errorf("Subflakes = %+v, want %+v", r.Subflakes, want)
	}
	if r.Flake != "" {
		t.Errorf("Flake = %q, want empty", r.Flake)
	}
}

// TestParseReadError checks a failing reader is reported, not mistaken for bad JSON.
func TestParseReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	_, err := omci.Parse(failingReader{boom}, "om.json")
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "reading om.json: ") {
		t.Errorf("err = %v, want reading om.json: … wrapping %v", err, boom)
	}
}

// failingReader fails every read.
type failingReader struct{ err error }

// Read fails with the configured error.
func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestUnknownSystemPaths lists only the selected outputs whose system the file omits.
func TestUnknownSystemPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		sel     omci.Selection
		want    []string
		wantErr error
	}{
		{file: "one-system.json", want: nil},
		{file: "per-system.json", want: nil},
		{file: "several-systems.json", want: []string{fooDarwin, barDarwin, linuxTool}},
		{file: "several-systems.json", sel: omci.Selection{Exclude: []string{"bar"}}, want: []string{fooDarwin, linuxTool}},
		{file: "several-systems.json", sel: omci.Selection{Subflakes: []string{"nope"}}, wantErr: omci.ErrBadSelection},
		{file: "several-systems.json", sel: omci.Selection{Include: []string{"["}}, wantErr: omci.ErrBadSelection},
	}
	for _, tt := range tests {
		got, err := parseFile(t, tt.file).UnknownSystemPaths(tt.sel)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s %+v: err = %v, want %v", tt.file, tt.sel, err, tt.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %+v: %q, want %q", tt.file, tt.sel, got, tt.want)
		}
	}
}
