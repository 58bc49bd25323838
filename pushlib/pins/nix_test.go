package pins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/pins"
)

// testNixConfig lets the tests build as root in a single-user store with
// no substituters, unless the caller already configured Nix.
const testNixConfig = "build-users-group =\nsubstituters =\nexperimental-features = nix-command flakes\nsandbox = false"

// requireNix skips the test when Nix is not installed, except in CI
// (CI=true), where a missing Nix is a failure.
func requireNix(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"nix", "nix-instantiate", "nix-build"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found but CI=true: Nix is required here: %v", tool, err)
			}
			t.Skipf("skipping: %s not found (%v); set CI=true to make this a failure", tool, err)
		}
	}
}

// nix runs a Nix tool and returns its stdout; on failure, stderr is in the
// error. The caller's NIX_CONFIG is kept (or testNixConfig used), but the
// experimental features are always exactly nix-command and flakes, plus
// those given: a caller that enabled fetch-closure must not change what
// the flake does.
func nix(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	return nixWith(t, "", name, args...)
}

// nixWith is nix with more experimental features enabled.
func nixWith(t *testing.T, features, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), name, args...)
	conf := os.Getenv("NIX_CONFIG")
	if conf == "" {
		conf = testNixConfig
	}
	conf += "\nexperimental-features = nix-command flakes " + features
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+conf, "XDG_CACHE_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &nixErr{cmd: name + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

// mustNix is nix that fails the test on error.
func mustNix(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := nix(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// nixErr keeps a failed command's stderr for assertions and messages.
type nixErr struct {
	cmd, stderr string
	err         error
}

// Error names the command and carries its stderr.
func (e *nixErr) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + e.stderr }

// exportTo writes an export into a new temporary directory.
func exportTo(t *testing.T, ps []pins.PinInfo, opts pins.ExportOptions) string {
	t.Helper()
	files, err := pins.Export(ps, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pins.WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGoldenParses checks every golden file is valid Nix syntax.
func TestGoldenParses(t *testing.T) {
	t.Parallel()
	requireNix(t)
	matches, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "*.nix"))
	if err != nil || len(matches) != 4*len(goldenCases) {
		t.Fatalf("golden files: %d, %v; want %d", len(matches), err, 4*len(goldenCases))
	}
	for _, f := range matches {
		if _, err := nix(t, "nix-instantiate", "--parse", f); err != nil {
			t.Errorf("%s does not parse: %v", f, err)
		}
	}
}

// TestDefaultNixStub evaluates default.nix with a stub storePath and checks
// the exact result: the system's child picked at any depth, system-less
// pins passed through, odd names round-tripped, dotted names nested.
func TestDefaultNixStub(t *testing.T) {
	t.Parallel()
	requireNix(t)
	dir := exportTo(t, basicPins(), pins.ExportOptions{CacheURL: "https://example.cachix.org"})
	def := filepath.Join(dir, "default.nix")

	out := mustNix(t, "nix-instantiate", "--eval", "--strict", "--json", def,
		"--argstr", "system", "x86_64-linux", "--arg", "storePath", "p: p")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	want := map[string]any{
		"hello":                         helloLinux,
		"main-x86_64-linux-omnix-cli":   omnixCLI,
		"main-aarch64-darwin-omnix-cli": omnixDarwin,
		"main-omnix-cli":                omnixCLI, // the alias, this system's
		"release-1":                     []any{jq},
		"tools":                         map[string]any{"jq": jq},
		"deep":                          map[string]any{"a": deepLinux},
		"dollar${builtins":              map[string]any{`abort "pwned"}`: odd},
	}
	for _, n := range oddNames {
		if !strings.Contains(n, ".") {
			want[n] = odd
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default.nix (x86_64-linux) =\n%v\nwant\n%v", got, want)
	}

	// On darwin, hello is darwin's; deep.a has no darwin build: a clear
	// error when asked for, and nothing else is affected.
	out = mustNix(t, "nix-instantiate", "--eval", "--json", def, "--argstr", "system", "aarch64-darwin",
		"--arg", "storePath", "p: p", "-A", "hello")
	if strings.TrimSpace(out) != `"`+helloDarwin+`"` {
		t.Errorf("hello on aarch64-darwin = %s, want %q", out, helloDarwin)
	}
	_, err := nix(t, "nix-instantiate", "--eval", "--strict", "--json", def, "--argstr", "system", "aarch64-darwin",
		"--arg", "storePath", "p: p", "-A", "deep")
	if err == nil || !strings.Contains(err.(*nixErr).stderr, "pin deep.a has no store path for aarch64-darwin (only for x86_64-linux)") {
		t.Errorf("deep on aarch64-darwin: err = %v, want the missing-system message", err)
	}
}

// TestDefaultNixIsLazy checks that asking for one pin forces no other
// pin's store path (with the real builtins.storePath, forcing means
// substituting).
func TestDefaultNixIsLazy(t *testing.T) {
	t.Parallel()
	requireNix(t)
	dir := exportTo(t, basicPins(), pins.ExportOptions{})
	stub := `p: if p == "` + jq + `" then p else throw "forced ${p}"`
	for _, attr := range []string{"tools.jq", "tools"} {
		out, err := nix(t, "nix-instantiate", "--eval", "--strict", "--json", filepath.Join(dir, "default.nix"),
			"--argstr", "system", "x86_64-linux", "--arg", "storePath", stub, "-A", attr)
		if err != nil {
			t.Fatalf("-A %s forced another pin: %v", attr, err)
		}
		if !strings.Contains(out, jq) {
			t.Errorf("-A %s = %s, want %s", attr, out, jq)
		}
	}
}

// TestRealStore builds a real store path, pins it, and reads it back
// through default.nix (nix-instantiate and nix eval -f, the real
// builtins.storePath), the tarball (nix eval -f file://…) and the flake
// (legacyPackages and apps, nix flake show and check).
func TestRealStore(t *testing.T) {
	t.Parallel()
	requireNix(t)
	built := strings.TrimSpace(mustNix(t, "nix-build", "--no-out-link", "-E",
		`builtins.derivation {
		  name = "pins-export-test";
		  system = builtins.currentSystem;
		  builder = "/bin/sh";
		  PATH = "/usr/bin:/bin";
		  args = [ "-c" "mkdir -p $out/bin && printf '#!/bin/sh\necho pinned tool\n' > $out/bin/tool && chmod +x $out/bin/tool" ];
		}`))
	system := strings.Trim(strings.TrimSpace(mustNix(t, "nix-instantiate", "--eval", "--json", "-E", "builtins.currentSystem")), `"`)
	const ghost = "/nix/store/00000000000000000000000000000000-not-in-this-store"
	ps := []pins.PinInfo{
		{Name: "tool." + system, StorePath: built, Artifacts: []string{"bin/tool"}},
		{Name: "plain", StorePath: built},
		{Name: "ghost", StorePath: ghost},
	}
	files, err := pins.Export(ps, pins.ExportOptions{CacheURL: "https://example.cachix.org", Systems: []string{system}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pins.WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
	def := filepath.Join(dir, "default.nix")
	quoted := `"` + built + `"`

	// nix-instantiate --eval is read-only unless told otherwise; in
	// read-write mode builtins.storePath checks the path is really there.
	for _, attr := range []string{"tool", "plain"} {
		out := mustNix(t, "nix-instantiate", "--eval", "--read-write-mode", "--json", def, "-A", attr)
		if strings.TrimSpace(out) != quoted {
			t.Errorf("nix-instantiate -A %s = %s, want %s", attr, out, quoted)
		}
	}
	_, err = nix(t, "nix-instantiate", "--eval", "--read-write-mode", "--json", def, "-A", "ghost")
	if err == nil || !strings.Contains(err.(*nixErr).stderr, ghost) {
		t.Errorf("a pin not in the store evaluated (so storePath was not the real one): %v", err)
	}

	if out := mustNix(t, "nix", "eval", "--raw", "-f", dir, "tool"); out != built {
		t.Errorf("nix eval -f DIR tool = %q, want %q", out, built)
	}

	var tgz bytes.Buffer
	if err := pins.WriteTarGz(&tgz, files); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "pins.tar.gz")
	if err := os.WriteFile(tarball, tgz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustNix(t, "nix", "eval", "--raw", "-f", "file://"+tarball, "tool"); out != built {
		t.Errorf("nix eval -f file://…/pins.tar.gz tool = %q, want %q", out, built)
	}

	// The flake, without the fetch-closure feature: the pins as they are
	// (with their store path as context), in pure evaluation.
	flake := "path:" + dir
	if out := mustNix(t, "nix", "eval", "--raw", flake+"#legacyPackages."+system+".tool"); out != built {
		t.Errorf("flake legacyPackages.%s.tool = %q, want %q", system, out, built)
	}
	if out := mustNix(t, "nix", "eval", "--raw", flake+"#tool"); out != built {
		t.Errorf("flake #tool = %q, want %q", out, built)
	}
	program := mustNix(t, "nix", "eval", "--raw", flake+"#apps."+system+".tool.program")
	if program != built+"/bin/tool" {
		t.Errorf("flake apps.%s.tool.program = %q, want %q", system, program, built+"/bin/tool")
	}
	if out, err := exec.Command(program).Output(); err != nil || string(out) != "pinned tool\n" {
		t.Errorf("running %s: %q, %v", program, out, err)
	}
	if out := mustNix(t, "nix", "eval", "--json", flake+"#apps."+system+".tool.type"); strings.TrimSpace(out) != `"app"` {
		t.Errorf("app type = %s", out)
	}
	// plain has no artifact: no app.
	if out := mustNix(t, "nix", "eval", "--json", flake+"#apps."+system, "--apply", "builtins.attrNames"); strings.TrimSpace(out) != `["tool"]` {
		t.Errorf("apps.%s = %s, want only tool", system, out)
	}
	// show and check pass, although ghost is in no store: neither forced it.
	mustNix(t, "nix", "flake", "show", flake)
	mustNix(t, "nix", "flake", "check", flake)
}

// TestFlakeShowCheckFetchNothing runs nix flake show and nix flake check
// on an export with per-system pins (and apps, for show) in no store,
// whose cache cannot be reached, with and without fetch-closure: both
// must pass without fetching (any fetch would fail), a system's missing
// pin being left out, not thrown.
func TestFlakeShowCheckFetchNothing(t *testing.T) {
	t.Parallel()
	requireNix(t)
	system := strings.Trim(strings.TrimSpace(mustNix(t, "nix-instantiate", "--eval", "--json", "-E", "builtins.currentSystem")), `"`)
	other := "aarch64-darwin"
	if system == other {
		other = "x86_64-linux"
	}
	ps := []pins.PinInfo{
		{Name: "hello." + system, StorePath: helloLinux, Artifacts: []string{"bin/hello"}},
		{Name: "hello." + other, StorePath: helloDarwin, Artifacts: []string{"bin/hello"}},
		{Name: "only-there." + other, StorePath: deepLinux},
		{Name: "tools.jq", StorePath: jq},
	}
	// Port 1 on loopback refuses connections: a fetch would fail at once.
	dir := exportTo(t, ps, pins.ExportOptions{CacheURL: "http://127.0.0.1:1", Systems: []string{system, other}})
	flake := "path:" + dir
	for _, features := range []string{"", "fetch-closure"} {
		if out, err := nixWith(t, features, "nix", "flake", "show", "--json", flake); err != nil {
			t.Errorf("nix flake show (features %q): %v", features, err)
		} else if !strings.Contains(out, `"apps"`) || !strings.Contains(out, `"legacyPackages"`) {
			t.Errorf("nix flake show (features %q) = %s", features, out)
		}
		// nix flake check evaluates each app's program (Nix 2.26 does),
		// which substitutes its pin: that is what an app is. So check runs
		// on the same export without apps here; TestRealStore checks one
		// whose app's pin is in the store.
		noApps := []pins.PinInfo{ps[1], ps[2], ps[3], {Name: "hello." + system, StorePath: helloLinux}}
		checked := "path:" + exportTo(t, noApps, pins.ExportOptions{CacheURL: "http://127.0.0.1:1", Systems: []string{system, other}})
		if _, err := nixWith(t, features, "nix", "flake", "check", checked); err != nil {
			t.Errorf("nix flake check (features %q): %v", features, err)
		}
	}
	// This system's view: hello is its own, only-there is left out, tools
	// is passed through; the other system's view has only-there.
	out := mustNix(t, "nix", "eval", "--json", flake+"#legacyPackages", "--apply",
		`lp: builtins.mapAttrs (_: builtins.attrNames) lp`)
	var names map[string][]string
	if err := json.Unmarshal([]byte(out), &names); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if want := []string{"hello", "tools"}; !reflect.DeepEqual(names[system], want) {
		t.Errorf("legacyPackages.%s = %q, want %q", system, names[system], want)
	}
	if want := []string{"hello", "only-there", "tools"}; !reflect.DeepEqual(names[other], want) {
		t.Errorf("legacyPackages.%s = %q, want %q", other, names[other], want)
	}
}

// TestNumberedAndAliasedNames builds real store paths, pins them under
// names with numbers between dots and under om ci's
// <prefix>-<system>-<name>, and selects each by the name it was pinned
// under, the way users type it: nix-instantiate -A, nix eval -f, nix
// build -f and the flake's #name; and the om ci pins by <prefix>-<name>,
// the system picked, with nix run. Nix reads a number in an -A path as a
// list index; a name no pin has is an error, not a value.
func TestNumberedAndAliasedNames(t *testing.T) {
	t.Parallel()
	requireNix(t)
	out := mustNix(t, "nix-build", "--no-out-link", "-E", `
	  let mk = name: builtins.derivation {
	    inherit name;
	    system = builtins.currentSystem;
	    builder = "/bin/sh";
	    PATH = "/usr/bin:/bin";
	    args = [ "-c" "mkdir -p $out/bin && printf '#!/bin/sh\necho I am ${name}\n' > $out/bin/hello && chmod +x $out/bin/hello" ];
	  };
	  in map mk [ "pins-numbered-a" "pins-numbered-b" "pins-numbered-c" "hello-2.12.1" "hello-1.0" ]`)
	built := strings.Fields(out)
	if len(built) != 5 {
		t.Fatalf("nix-build printed %q", out)
	}
	a, b, c, hello, helloOther := built[0], built[1], built[2], built[3], built[4]
	system := strings.Trim(strings.TrimSpace(mustNix(t, "nix-instantiate", "--eval", "--json", "-E", "builtins.currentSystem")), `"`)
	other := "aarch64-darwin"
	if system == other {
		other = "x86_64-linux"
	}
	ps := []pins.PinInfo{
		{Name: "release-1.0", StorePath: a},
		{Name: "release-1.1", StorePath: b},
		{Name: "release-1.10", StorePath: c},
		{Name: "v2.3.1", StorePath: b},
		{Name: "tool-2.0." + system, StorePath: c},
		{Name: "tool-2.0." + other, StorePath: a},
		{Name: "main-" + system + "-hello", StorePath: hello},
		{Name: "main-" + other + "-hello", StorePath: helloOther},
	}
	dir := exportTo(t, ps, pins.ExportOptions{Systems: []string{system, other}})
	def := filepath.Join(dir, "default.nix")
	flake := "path:" + dir
	want := map[string]string{
		"release-1.0": a, "release-1.1": b, "release-1.10": c, "v2.3.1": b, "tool-2.0": c,
		"main-" + system + "-hello": hello, "main-" + other + "-hello": helloOther, "main-hello": hello,
	}
	newer := strings.TrimSpace(mustNix(t, "nix-instantiate", "--eval", "-E", `builtins.compareVersions builtins.nixVersion "2.9"`)) != "-1"
	for name, path := range want {
		if got := strings.TrimSpace(mustNix(t, "nix-instantiate", "--eval", "--read-write-mode", "--json", def, "-A", name)); got != `"`+path+`"` {
			t.Errorf("nix-instantiate -A %s = %s, want %s", name, got, path)
		}
		if got := mustNix(t, "nix", "eval", "--raw", "-f", dir, name); got != path {
			t.Errorf("nix eval -f EXPORT %s = %s, want %s", name, got, path)
		}
		if got := mustNix(t, "nix", "eval", "--raw", flake+"#"+name); got != path {
			t.Errorf("nix eval EXPORT#%s = %s, want %s", name, got, path)
		}
		if !newer {
			continue // Nix 2.8 builds no store path that is not a derivation (README, Limitations)
		}
		for _, installable := range [][]string{{"-f", dir, name}, {flake + "#" + name}} {
			args := append([]string{"build", "--no-link", "--print-out-paths"}, installable...)
			if got := strings.TrimSpace(mustNix(t, "nix", args...)); got != path {
				t.Errorf("nix build %s = %s, want %s", strings.Join(installable, " "), got, path)
			}
		}
	}
	// A number no pin has: an error naming it, not null or another pin.
	_, err := nix(t, "nix-instantiate", "--eval", "--read-write-mode", def, "-A", "release-1.5")
	if err == nil || !strings.Contains(err.(*nixErr).stderr, "there is no pin release-1.5") {
		t.Errorf("-A release-1.5: %v; want \"there is no pin release-1.5\"", err)
	}
	// nix run of the alias runs this system's build (a guessed bin/hello:
	// om ci pins name no artifacts). Nix 2.8's nix run aborts on an app
	// whose program is a plain store path (README, Limitations).
	if program := mustNix(t, "nix", "eval", "--raw", flake+"#apps."+system+".main-hello.program"); program != hello+"/bin/hello" {
		t.Errorf("apps.%s.main-hello.program = %q, want %s/bin/hello", system, program, hello)
	}
	if !newer {
		return
	}
	if got := mustNix(t, "nix", "run", flake+"#main-hello"); got != "I am hello-2.12.1\n" {
		t.Errorf("nix run EXPORT#main-hello printed %q", got)
	}
}
