package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// The tests of this file are the cases where cachix-select gave a wrong
// result with exit 0, and the `cachix push` / `cachix pin` forms it takes
// as a drop-in. Each asserts the exit code and the line that matters.

// oneLine fails unless s is exactly one line containing want.
func oneLine(t *testing.T, what, s, want string) {
	t.Helper()
	s = strings.TrimSpace(s)
	if strings.Contains(s, "\n") || !strings.Contains(s, want) {
		t.Errorf("%s: printed %q, want one line with %q", what, s, want)
	}
}

// hasLine fails unless some line of s contains want.
func hasLine(t *testing.T, what, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Errorf("%s: printed %q, want a line with %q", what, s, want)
	}
}

// publicKeyFile writes the public half of a Nix key (name:base64) as a
// file, in both forms a user might hand over.
func publicKeyFile(t *testing.T, pk string, bare bool) string {
	t.Helper()
	if bare {
		pk = pk[strings.IndexByte(pk, ':')+1:]
	}
	f := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(f, []byte(pk+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPublicKeyAsSigningKeyIsRefused: a public key given as the signing
// key is refused before anything is written; a cache whose present paths
// carry no signature of the push's key says so, and real Nix requiring
// the key refuses those paths, as the warning says.
func TestPublicKeyAsSigningKeyIsRefused(t *testing.T) {
	requireNix(t)
	t.Parallel()
	lib := nixBuild(t, "lib", t.Name())
	sk, pk := keypair(t, "dropin-right-1")
	otherSK, _ := keypair(t, "dropin-right-1") // the same name, another key
	dir := filepath.Join(t.TempDir(), "cache")
	cacheURL := "file://" + dir
	for _, bare := range []bool{false, true} {
		r := cli(t, "", nil, "push", "--to", cacheURL, "--signing-key-file", publicKeyFile(t, pk, bare), "--signing-key-name", "dropin-right-1", lib)
		if r.code != 2 {
			t.Errorf("public key (bare %v): exit %d, want 2", bare, r.code)
		}
		oneLine(t, "public key", r.stderr, "this is a public key")
		if _, err := os.Stat(filepath.Join(dir, "nix-cache-info")); err == nil {
			t.Fatal("the refused push wrote the cache")
		}
	}

	// Pushed with another key of the same name: a push with the right key
	// has nothing to push, and says that the cache's paths are not signed by it.
	if r := cli(t, "", nil, "push", "-q", "--to", cacheURL, "--signing-key-file", otherSK, lib); r.code != 0 {
		t.Fatalf("push with the other key: %d %s", r.code, r.stderr)
	}
	r := cli(t, "", nil, "push", "--to", cacheURL, "--signing-key-file", sk, lib)
	if r.code != 0 {
		t.Fatalf("push with the right key: %d %s", r.code, r.stderr)
	}
	hasLine(t, "re-push", r.stderr, "3 of the 3 paths already in "+cacheURL+" that were checked carry no valid signature of key dropin-right-1")
	if _, err := substitute(t, cacheURL, pk, lib); err == nil {
		t.Fatal("real Nix accepted paths the push's key never signed")
	}
	// Removing the narinfos, as the warning says, and pushing again: Nix accepts them.
	narinfos, _ := filepath.Glob(filepath.Join(dir, "*.narinfo"))
	for _, f := range narinfos {
		os.Remove(f)
	}
	if r := cli(t, "", nil, "push", "--to", cacheURL, "--signing-key-file", sk, lib); r.code != 0 || strings.Contains(r.stderr, "no valid signature") {
		t.Fatalf("push after removing the narinfos: %d %s", r.code, r.stderr)
	}
	if _, err := substitute(t, cacheURL, pk, lib); err != nil {
		t.Fatal(err)
	}
}

// TestManifestCheckRefusesWhatPushRefuses: one set of rules; the line is
// the same.
func TestManifestCheckRefusesWhatPushRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, push := range []map[string]any{
		{"compression": "xz", "compressionLevel": 12},
		{"compressionLevel": 12},                // a Cachix cache may prefer xz
		{"chunkSize": 1024},                     // below 5 MiB
		{"numConcurrentChunks": 0},              // at least 1
		{"compression": "zstd", "jobs": 100000}, // too many
	} {
		m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"name": "some-cache"},
			"push": push, "paths": []any{}})
		check := cli(t, "", nil, "manifest", "check", m)
		r := cli(t, "", nil, "push", "--dry-run", m)
		if check.code != 2 || r.code != 2 {
			t.Errorf("%v: manifest check exit %d, push exit %d; want 2 and 2", push, check.code, r.code)
		}
		oneLine(t, "manifest check", check.stderr, "push.")
		if strings.TrimSpace(check.stderr) != strings.TrimSpace(r.stderr) {
			t.Errorf("%v: manifest check says %q, push says %q", push, check.stderr, r.stderr)
		}
	}
}

// TestManifestUnknownFieldWarned: a field manifest version 1 does not
// have is ignored (forward compatible) but warned about, by manifest
// check and push alike, so that a misspelt one does not silently do
// nothing; --quiet drops the warning.
func TestManifestUnknownFieldWarned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + filepath.Join(dir, "cache")},
		"push": map[string]any{"compresion": "xz"}, "paths": []any{}})
	want := "warning: " + m + ": push.compresion is not a field of manifest version 1; it is ignored (misspelt?)"
	check := cli(t, "", nil, "manifest", "check", m)
	if check.code != 0 || strings.TrimSpace(check.stderr) != want || !strings.Contains(check.stdout, "ok (0 paths") {
		t.Errorf("manifest check: exit %d, stderr %q, stdout %q; want exit 0 and %q", check.code, check.stderr, check.stdout, want)
	}
	r := cli(t, "", nil, "push", "--dry-run", m)
	if r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("push --dry-run: exit %d, %q; want exit 0 and %q", r.code, r.stderr, want)
	}
	if q := cli(t, "", nil, "manifest", "check", "-q", m); q.code != 0 || q.stderr != "" {
		t.Errorf("manifest check -q: exit %d, %q", q.code, q.stderr)
	}
}

// TestOnePathTwoPins: a store path listed twice with two pins is an
// error naming both, and nothing is pushed.
func TestOnePathTwoPins(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "two-pins-token"
	srv := pinServer(t, token)
	lib := nixBuild(t, "lib", t.Name())
	dir := t.TempDir()
	cache := map[string]any{"name": "pins", "host": srv.URL()}
	a := writeManifest(t, dir, map[string]any{"version": 1, "cache": cache,
		"paths": []any{map[string]any{"storePath": lib, "pin": map[string]any{"name": "first"}}}})
	b := filepath.Join(t.TempDir(), "b.json")
	raw, _ := json.Marshal(map[string]any{"version": 1, "cache": cache,
		"paths": []any{map[string]any{"storePath": lib, "pin": map[string]any{"name": "second"}}}})
	os.WriteFile(b, raw, 0o644)
	r := cli(t, "", []string{"CACHIX_AUTH_TOKEN=" + token}, "push", a, b)
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	oneLine(t, "two pins", r.stderr, lib+` is given two pins, "first" (`+a+`) and "second" (`+b+`)`)
	if st := srv.Stats(); st.UploadsStarted != 0 || st.PinsCreated != 0 {
		t.Errorf("something was pushed: %+v", st)
	}
}

// TestPinsExportCountsWhatItExports: the line counts the pins exported,
// and --output into a directory that does not exist yet works.
func TestPinsExportCountsWhatItExports(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "export-count-token"
	srv := pinServer(t, token)
	exe := nixBuild(t, "exe", t.Name())
	env := []string{"CACHIX_AUTH_TOKEN=" + token}
	if r := cli(t, "", env, "push", "-q", "--host", srv.URL(), "pins", exe); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, name := range []string{"keep-me", "drop-a", "drop-b"} {
		if r := cli(t, "", env, "pin", "--host", srv.URL(), "pins", name, exe); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	out := filepath.Join(t.TempDir(), "not", "yet", "pins.tar.gz")
	r := cli(t, "", nil, "pins", "export", "--host", srv.URL(), "--cache", "pins", "--include", "keep-*", "--output", out)
	if r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	hasLine(t, "export", r.stderr, "Exported 1 pin of Cachix cache pins")
	hasLine(t, "export", r.stderr, "(2 of its 3 pins left out by --include, --exclude or --system)")
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("the tarball: %v", err)
	}
	// What was exported is the pin kept, and only it.
	x := t.TempDir()
	mustRun(t, "tar", "-xzf", out, "-C", x, "--strip-components=1")
	got := strings.TrimSpace(mustRun(t, "nix-instantiate", "--eval", "--json", "-E",
		`builtins.attrNames (import `+filepath.Join(x, "default.nix")+` { storePath = p: p; })`))
	if got != `["keep-me"]` {
		t.Errorf("exported pins: %s", got)
	}
}

// TestExportOfToolCreatedPins: pins this tool creates — from om ci
// results (<prefix>-<system>-<name>) and `pin CACHE release-1.0 PATH`
// — are selected by name from an export: nix-instantiate -A and nix eval
// -f by the names pinned, and, on Nix that builds and runs a plain store
// path (2.9 and later), nix build -f EXPORT <prefix>-<name> and nix run
// EXPORT#<prefix>-<name> with this system picked.
func TestExportOfToolCreatedPins(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "export-tool-token"
	srv := pinServer(t, token)
	env := []string{"CACHIX_AUTH_TOKEN=" + token}
	salt := t.Name()
	greet := strings.TrimSpace(mustRun(t, "nix-build", "--no-out-link", "--argstr", "salt", salt, "-E", `{ salt }: builtins.derivation {
	  name = "greet-1.2"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; inherit salt;
	  args = [ "-c" "mkdir -p $out/bin && printf '#!/bin/sh\necho greetings from the export\n' > $out/bin/greet && chmod +x $out/bin/greet" ];
	}`))
	lib := nixBuild(t, "lib", salt)
	sys := strings.TrimSpace(strings.Trim(mustRun(t, "nix-instantiate", "--eval", "--expr", "builtins.currentSystem"), "\"\n"))
	om := omResults(t, map[string]any{"systems": []string{sys},
		// One output under two names, as om ci reports a flake's default package: two pins.
		"result": map[string]any{"ROOT": map[string]any{"build": map[string]any{"byName": map[string]any{"greet": greet, "default": greet}}}}})
	if r := cli(t, "", env, "push", "--host", srv.URL(), "pins", "--om-results", om, "--prefix", "main"); r.code != 0 {
		t.Fatalf("push --om-results: %d %s", r.code, r.stderr)
	}
	if r := cli(t, "", env, "push", "-q", "--host", srv.URL(), "pins", lib); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := cli(t, "", env, "pin", "pins", "release-1.0", lib, "--host", srv.URL(), "--keep-revisions", "2")
	if r.code != 0 {
		t.Fatalf("pin with flags after the arguments: %d %s", r.code, r.stderr)
	}
	oneLine(t, "pin", r.stderr, `as "release-1.0"`)
	for _, name := range []string{"main-" + sys + "-greet", "main-" + sys + "-default"} {
		if lastPath(serverPins(srv)[name]) != greet {
			t.Fatalf("pin %s: %v", name, serverPins(srv))
		}
	}
	dir := filepath.Join(t.TempDir(), "export")
	if r := cli(t, "", nil, "pins", "export", "--host", srv.URL(), "--cache", "pins", "--output", dir); r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	// An --output that can only fail or surprise is refused before
	// anything is fetched: an existing file, or an archive name other
	// than .tar.gz (which would be made a directory).
	file := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(file, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	zip := filepath.Join(t.TempDir(), "pins.zip")
	for out, want := range map[string]string{file: "exists and is not a directory", zip: "only a gzip tarball is written"} {
		r := cli(t, "", nil, "pins", "export", "--host", srv.URL(), "--cache", "pins", "--output", out)
		if r.code != 2 {
			t.Errorf("export --output %s: exit %d, want 2", out, r.code)
		}
		oneLine(t, "export --output "+out, r.stderr, want)
	}
	if data, _ := os.ReadFile(file); string(data) != "mine" {
		t.Errorf("export overwrote %s", file)
	}
	if _, err := os.Stat(zip); err == nil {
		t.Errorf("export made %s", zip)
	}
	nixEnv := append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	run := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = nixEnv
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: []byte(stderr.String())}
		}
		return string(out), nil
	}
	for name, want := range map[string]string{"release-1.0": lib, "main-" + sys + "-greet": greet, "main-greet": greet, "main-default": greet} {
		got, err := run("nix-instantiate", "--eval", "--read-write-mode", "--json", filepath.Join(dir, "default.nix"), "-A", name)
		if err != nil || strings.TrimSpace(got) != `"`+want+`"` {
			t.Errorf("nix-instantiate -A %s: %q %v", name, got, err)
		}
		got, err = run("nix", "eval", "--raw", "-f", dir, name)
		if err != nil || got != want {
			t.Errorf("nix eval -f EXPORT %s: %q %v", name, got, err)
		}
	}
	newer := strings.TrimSpace(mustRun(t, "nix-instantiate", "--eval", "-E", `builtins.compareVersions builtins.nixVersion "2.9"`)) != "-1"
	if !newer {
		t.Log("Nix 2.8 neither builds nor runs a store path that is not a derivation (README, Limitations): nix build -f and nix run are checked under newer Nix")
		return
	}
	got, err := run("nix", "build", "--no-link", "--print-out-paths", "-f", dir, "main-greet")
	if err != nil || strings.TrimSpace(got) != greet {
		t.Errorf("nix build -f EXPORT main-greet: %q %v", got, err)
	}
	got, err = run("nix", "run", "path:"+dir+"#main-greet")
	if err != nil || got != "greetings from the export\n" {
		t.Errorf("nix run EXPORT#main-greet: %q %v", got, err)
	}
}

// keep the import used when a test above changes.
var _ = cachixserver.EndpointCacheInfo

// dhallFile writes a cachix.dhall with a token and a hostname.
func dhallFile(t *testing.T, token, host string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cachix.dhall")
	dh := "{ authToken = \"" + token + "\"\n, hostname = \"" + host + "\"\n, binaryCaches = [] : List { name : Text, secretKey : Text }\n}\n"
	if err := os.WriteFile(f, []byte(dh), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// heldBy lists the store paths a test server's cache holds.
func heldBy(srv *cachixserver.Server, cache string) map[string]bool {
	held := map[string]bool{}
	for _, ni := range srv.StorePaths(cache) {
		held[ni.StorePath] = true
	}
	return held
}

// TestPushAsCachixTakesIt: `push CACHE PATH...` with flags after the
// arguments and cachix's global flags in front of the command; an invalid
// path is warned about and skipped while the rest is pushed; empty stdin
// is "Nothing to push"; a .drv pushes; a store path named *.json is a
// store path; real Nix substitutes what was pushed.
func TestPushAsCachixTakesIt(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "dropin-push-token"
	srv := pinServer(t, token)
	cfg := dhallFile(t, token, srv.URL())
	salt := t.Name()
	lib := nixBuild(t, "lib", salt)
	single := nixBuild(t, "single", salt+"-stdin") // not in lib's closure
	drv := strings.TrimSpace(mustRun(t, "nix-instantiate", filepath.Join(repoRoot(), "tests/fixtures/closure.nix"), "-A", "exe", "--argstr", "salt", salt))
	results := strings.Trim(strings.TrimSpace(mustRun(t, "nix-instantiate", "--read-write-mode", "--eval", "-E",
		`builtins.toFile "results.json" ''{"salt":"`+salt+`"}''`)), `"`)
	if !strings.HasSuffix(drv, ".drv") || !strings.HasSuffix(results, "-results.json") {
		t.Fatalf("fixtures: %s %s", drv, results)
	}

	// cachix -c FILE push CACHE PATH... --flag; a missing path is skipped.
	r := cli(t, "", nil, "-c", cfg, "push", "pins", lib, "/nix/store/00000000000000000000000000000000-gone", drv, results, "-j", "2")
	if r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	hasLine(t, "invalid path", r.stderr, "warning: /nix/store/00000000000000000000000000000000-gone is not a valid path in the Nix store")
	hasLine(t, "invalid path", r.stderr, "skipping it")
	held := heldBy(srv, "pins")
	for _, p := range append(closureOf(t, lib), drv, results) {
		if !held[p] {
			t.Errorf("%s was not pushed", p)
		}
	}
	// Empty stdin: nothing to push, exit 0.
	r = cli(t, "", nil, "push", "--config", cfg, "pins")
	if r.code != 0 {
		t.Errorf("empty stdin: exit %d", r.code)
	}
	oneLine(t, "empty stdin", r.stderr, "Nothing to push to Cachix cache pins: no store paths on stdin.")
	// A manifest not named *.json is read as the cache's name: with empty
	// stdin that is an error naming the file, not a silent success.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m1.manifest"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = cliIn(t, dir, "", nil, "push", "--config", cfg, "m1.manifest")
	if r.code != 2 {
		t.Errorf("push m1.manifest with empty stdin: exit %d, want 2: %s", r.code, r.stderr)
	}
	oneLine(t, "push m1.manifest", r.stderr, `"m1.manifest" was read as the Cachix cache's name`)
	hasLine(t, "push m1.manifest", r.stderr, "./m1.manifest")
	// Paths on stdin, --hostname as cachix spells it, the token from the environment.
	r = cli(t, single+"\n", []string{"CACHIX_AUTH_TOKEN=" + token, "XDG_CONFIG_HOME=" + t.TempDir()}, "push", "pins", "--hostname", srv.URL())
	if r.code != 0 || !heldBy(srv, "pins")[single] {
		t.Fatalf("stdin push: %d %s", r.code, r.stderr)
	}
	hasLine(t, "stdin push", r.stderr, "Pushed 1 path ")
	// Only invalid paths: nothing to push, exit 2, one line.
	r = cli(t, "", nil, "push", "-c", cfg, "pins", "/nix/store/00000000000000000000000000000000-gone")
	if r.code != 2 {
		t.Errorf("only invalid paths: exit %d, want 2", r.code)
	}
	oneLine(t, "only invalid paths", r.stderr, "nothing to push to Cachix cache pins")

	// Real Nix substitutes the pushed closure and the .drv, signatures required.
	if _, err := substitute(t, srv.BinaryCacheURL("pins"), srv.ManagedPublicKey("pins"), lib); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	cmd := exec.Command("nix", "copy", "--derivation", "--from", srv.BinaryCacheURL("pins"), "--to", fresh,
		"--option", "require-sigs", "true", "--option", "trusted-public-keys", srv.ManagedPublicKey("pins"), drv)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nix copy --derivation %s: %v\n%s", drv, err, out)
	}
}

// TestCommandLineAsCachix: help [COMMAND], an unknown command, flags that
// apply only with --om-results, a --config that does not exist, the
// message naming $XDG_CONFIG_HOME, a dry run on a public cache without a
// token.
func TestCommandLineAsCachix(t *testing.T) {
	requireNix(t)
	t.Parallel()
	srv := pinServer(t, "dropin-cli-token")
	single := nixBuild(t, "single", t.Name())
	cfgHome := t.TempDir()
	noCreds := []string{"XDG_CONFIG_HOME=" + cfgHome}

	for _, args := range [][]string{{"help", "push"}, {"help", "pins", "export"}, {"help"}} {
		r := cli(t, "", nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "cachix-select "+strings.Join(args[1:], " ")) {
			t.Errorf("%v: exit %d, %q", args, r.code, r.stdout)
		}
	}
	r := cli(t, "", nil, "frobnicate", "x")
	if r.code != 2 {
		t.Errorf("unknown command: exit %d, want 2", r.code)
	}
	oneLine(t, "unknown command", r.stderr, `unknown command "frobnicate"`)

	r = cli(t, "", noCreds, "push", "--dry-run", "--host", srv.URL(), "pins", single, "--prefix", "main")
	if r.code != 0 {
		t.Errorf("dry run without a token: exit %d: %s", r.code, r.stderr)
	}
	hasLine(t, "--prefix without --om-results", r.stderr, "warning: --prefix applies only with --om-results; ignoring it")
	hasLine(t, "dry run without a token", r.stderr, "Would push 1 path ")
	if st := srv.Stats(); st.UploadsStarted != 0 {
		t.Errorf("the dry run uploaded: %+v", st)
	}
	// --exclude reads like a path selection: without --om-results it
	// stops, rather than push what it was meant to leave out.
	r = cli(t, "", noCreds, "push", "--dry-run", "--host", srv.URL(), "pins", single, "--exclude", "*-doc")
	if r.code != 2 {
		t.Errorf("--exclude without --om-results: exit %d, want 2", r.code)
	}
	oneLine(t, "--exclude without --om-results", r.stderr, "use --exclude-path GLOB")
	// A misspelt flag is named as typed, with the one meant; a bad
	// duration says what one looks like.
	r = cli(t, "", noCreds, "push", "--dryrun", "pins", single)
	if r.code != 2 {
		t.Errorf("--dryrun: exit %d, want 2", r.code)
	}
	oneLine(t, "--dryrun", r.stderr, "unknown flag --dryrun (did you mean --dry-run?)")
	r = cli(t, "", noCreds, "push", "--connect-timeout", "5", "pins", single)
	if r.code != 2 {
		t.Errorf("--connect-timeout 5: exit %d, want 2", r.code)
	}
	oneLine(t, "--connect-timeout 5", r.stderr, `invalid value "5" for --connect-timeout: want a duration such as 30s`)
	// Arguments in the wrong order are said to be, before anything is asked.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"push", "file:///srv/cache", single}, "file:///srv/cache is a cache URL: give it with --to"},
		{[]string{"pin", single, "pins", "name"}, "pin takes CACHE PIN-NAME STORE-PATH, the store path last; " + single + " is given as the cache"},
		{[]string{"pin", "pins", single, "name"}, single + " is given as the pin name"},
		{[]string{"pin", "pins", "name"}, "got pins and name, so the store path is missing"},
		{[]string{"push", single, "pins"}, "push takes the cache first: push pins PATH..."},
		{[]string{"push", "--to", "/srv/cache", single}, "/srv/cache is a path, not a URL: a file cache is given as file:///srv/cache"},
		{[]string{"pin", "pins", "a..b", single}, "pin name a..b has an empty component between dots"},
		{[]string{"pin", "pins", ".dot", single}, "pin name .dot has an empty component between dots"},
		{[]string{"pin", "pins", "", single}, `pin name "" is empty`},
	} {
		r = cli(t, "", noCreds, tc.args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, r.code)
		}
		oneLine(t, strings.Join(tc.args, " "), r.stderr, tc.want)
	}

	r = cli(t, "", noCreds, "push", "--config", filepath.Join(cfgHome, "nope.dhall"), "pins", single)
	if r.code != 2 {
		t.Errorf("missing --config: exit %d, want 2", r.code)
	}
	oneLine(t, "missing --config", r.stderr, "cannot read the cachix config "+filepath.Join(cfgHome, "nope.dhall")+" given with --config")

	r = cli(t, "", noCreds, "push", "--host", srv.URL(), "pins", single)
	if r.code != 2 {
		t.Errorf("no token: exit %d, want 2 (for the user to fix, as S3 without keys)", r.code)
	}
	oneLine(t, "no token", r.stderr, "authToken in $XDG_CONFIG_HOME/cachix/cachix.dhall ("+filepath.Join(cfgHome, "cachix", "cachix.dhall")+")")
}

// TestChunkFlagsReachTheUploader: -s/--chunk-size and
// -n/--num-concurrent-chunks, and the manifest's chunkSize and
// numConcurrentChunks, size the multipart upload the server sees.
func TestChunkFlagsReachTheUploader(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "dropin-chunk-token"
	env := []string{"CACHIX_AUTH_TOKEN=" + token}
	// One 12 MiB incompressible path (and its small root): 3 parts of 5 MiB.
	big := nixBuild(t, "big", t.Name(), "--arg", "bigCount", "1", "--arg", "bigSize", "12582912")
	for _, tt := range []struct {
		name      string
		args      func(srv *cachixserver.Server) []string
		maxInFly  int
		wantParts int
	}{
		{"flags", func(srv *cachixserver.Server) []string {
			return []string{"push", "pins", big, "--host", srv.URL(), "-j", "1", "-s", "5242880", "-n", "2"}
		}, 2, 4},
		{"manifest", func(srv *cachixserver.Server) []string {
			m := writeManifest(t, t.TempDir(), map[string]any{"version": 1, "cache": map[string]any{"name": "pins", "host": srv.URL()},
				"push":  map[string]any{"jobs": 1, "chunkSize": 5242880, "numConcurrentChunks": 1},
				"paths": []any{map[string]any{"storePath": big}}})
			return []string{"push", m}
		}, 1, 4},
		{"defaults", func(srv *cachixserver.Server) []string {
			return []string{"push", "pins", big, "--host", srv.URL()}
		}, 8, 2},
	} {
		srv := pinServer(t, token)
		r := cli(t, "", env, tt.args(srv)...)
		if r.code != 0 {
			t.Fatalf("%s: %d %s", tt.name, r.code, r.stderr)
		}
		st := srv.Stats()
		if st.PartsUploaded != tt.wantParts || st.MaxConcurrentPuts > tt.maxInFly || st.MaxConcurrentPuts < 1 {
			t.Errorf("%s: %d parts, %d PUTs at once; want %d parts, at most %d at once", tt.name, st.PartsUploaded, st.MaxConcurrentPuts, tt.wantParts, tt.maxInFly)
		}
	}
	r := cli(t, "", env, "push", "pins", big, "-s", "1024")
	if r.code != 2 {
		t.Errorf("-s 1024: exit %d, want 2", r.code)
	}
	oneLine(t, "-s 1024", r.stderr, "--chunk-size must be between 5242880 (5 MiB) and 5368709120 (5 GiB) bytes, not 1024")
}

// TestRetriesAsTheREADMESays: a 400 from creating the upload, a 400 or
// 404 from presigning a part, a 4xx from the storage PUT or from
// completing the upload are sent once, not again per path; a Retry-After
// longer than what is left of the --retry-for budget is honoured.
func TestRetriesAsTheREADMESays(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "dropin-retry-token"
	env := []string{"CACHIX_AUTH_TOKEN=" + token}
	single := nixBuild(t, "single", t.Name())
	for _, tt := range []struct {
		ep   cachixserver.Endpoint
		kind cachixserver.FaultKind
		want string
	}{
		{cachixserver.EndpointMultipartCreate, cachixserver.Fault400, "(starting the upload): HTTP 400 Bad Request"},
		{cachixserver.EndpointMultipartPresign, cachixserver.Fault400, "(getting an upload URL for part 1): HTTP 400 Bad Request"},
		{cachixserver.EndpointMultipartPresign, cachixserver.Fault404, "(getting an upload URL for part 1): HTTP 404 Not Found"},
		{cachixserver.EndpointStoragePut, cachixserver.Fault400, ": uploading part 1 of " + single + " to 127.0.0.1"},
		{cachixserver.EndpointMultipartComplete, cachixserver.Fault404, "(completing the upload): HTTP 404 Not Found"},
	} {
		srv := pinServer(t, token)
		srv.FailNext(tt.ep, tt.kind, 1)
		r := cli(t, "", env, "push", "--host", srv.URL(), "pins", single)
		if r.code != 1 {
			t.Errorf("%s %s: exit %d, want 1", tt.ep, tt.kind, r.code)
		}
		want := "cache pins rejected " + single + " " + tt.want
		if tt.ep == cachixserver.EndpointStoragePut {
			want = "the storage of cache pins rejected " + single + tt.want
		}
		hasLine(t, string(tt.ep)+" "+string(tt.kind), r.stderr, want)
		if n := srv.Stats().Requests[tt.ep]; n != 1 {
			t.Errorf("%s %s: sent %d times, want once", tt.ep, tt.kind, n)
		}
		if strings.Contains(r.stderr, "retry") {
			t.Errorf("%s %s: retried: %s", tt.ep, tt.kind, r.stderr)
		}
	}
	// A 2 s Retry-After under a 1 s budget is waited for, and the push succeeds.
	srv := pinServer(t, token)
	srv.SetRetryAfter(2)
	srv.FailNext(cachixserver.EndpointMultipartCreate, cachixserver.Fault429, 1)
	r := cli(t, "", env, "push", "--host", srv.URL(), "--retry-for", "1s", "pins", single)
	if r.code != 0 {
		t.Fatalf("Retry-After past the budget: exit %d: %s", r.code, r.stderr)
	}
	hasLine(t, "Retry-After past the budget", r.stderr, "Pushed 1 path ")
	if n := srv.Stats().Requests[cachixserver.EndpointMultipartCreate]; n != 2 {
		t.Errorf("create sent %d times, want 2", n)
	}
	if _, err := substitute(t, srv.BinaryCacheURL("pins"), srv.ManagedPublicKey("pins"), single); err != nil {
		t.Fatal(err)
	}
}

// TestFileCacheFullOrReadOnly: a file cache on a full or a read-only file
// system fails the push at once, with one line saying what to do, instead
// of retrying every path. The file systems are tmpfs mounted in a mount
// namespace of the push's own (unshare), which needs root and a kernel
// that allows it; elsewhere the test says why it skips.
func TestFileCacheFullOrReadOnly(t *testing.T) {
	requireNix(t)
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small or a read-only file system needs root")
	}
	if err := exec.Command("unshare", "--mount", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("cannot make a mount namespace here (%v)", err)
	}
	// Two paths whose NARs do not fit into 64 KiB, and a small one.
	big := nixBuild(t, "big", t.Name(), "--arg", "bigCount", "2", "--arg", "bigSize", "200000")
	small := nixBuild(t, "single", t.Name())
	for _, tt := range []struct {
		name, want, setup string
	}{
		{"full", "no space left on device", `mount -t tmpfs -o size=64k tmpfs "$dir"`},
		// A cache that exists, then turns read-only.
		{"read-only", "read-only file system", `mount -t tmpfs -o size=1m tmpfs "$dir" &&
			"$bin" push -q --to "file://$dir" "$small" && mount -o remount,ro "$dir"`},
	} {
		dir := t.TempDir()
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			tt.setup+` || exit 99; exec "$bin" push --to "file://$dir" "$big"`)
		cmd.Env = append(cleanEnv(), "dir="+dir, "bin="+binary, "small="+small, "big="+big)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code == 99 {
			t.Skipf("cannot mount a tmpfs here: %s", stderr.String())
		}
		if code != 1 {
			t.Errorf("%s: exit %d, want 1: %s", tt.name, code, stderr.String())
		}
		hasLine(t, tt.name, stderr.String(), tt.want)
		hasLine(t, tt.name, stderr.String(), "(free space in "+dir+", or make it writable, and push again)")
		// Once per path in upload at the time (two, with the default jobs) and in the summary.
		if n := strings.Count(stderr.String(), tt.want); n > 3 || strings.Contains(stderr.String(), "retry") {
			t.Errorf("%s: retried, or reported %d times: %s", tt.name, n, stderr.String())
		}
	}
}

// TestPinsExportCacheURLFollowsHost: the export's store.nix names the
// binary cache that the --host's API says; when that cannot be asked, it
// names none (and says so) rather than guessing NAME.cachix.org for a
// cache on another host.
func TestPinsExportCacheURLFollowsHost(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "export-host-token"
	srv := pinServer(t, token)
	exe := nixBuild(t, "exe", t.Name())
	env := []string{"CACHIX_AUTH_TOKEN=" + token}
	if r := cli(t, "", env, "push", "-q", "--host", srv.URL(), "pins", exe); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := cli(t, "", env, "pin", "--host", srv.URL(), "pins", "tool", exe); r.code != 0 {
		t.Fatal(r.stderr)
	}
	storeNix := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, "store.nix"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(mustRun(t, "nix-instantiate", "--eval", "--json", filepath.Join(dir, "store.nix"))) + " " + string(b)
	}
	dir := filepath.Join(t.TempDir(), "export")
	r := cli(t, "", nil, "pins", "export", "--host", srv.URL(), "pins", "--output", dir)
	if r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	oneLine(t, "export", r.stderr, "Exported 1 pin of Cachix cache pins to "+dir)
	if got := storeNix(dir); !strings.HasPrefix(got, `"`+srv.BinaryCacheURL("pins")+`"`) {
		t.Errorf("store.nix: %s; want %s", got, srv.BinaryCacheURL("pins"))
	}
	// The cache's settings cannot be read: no URL, and a warning.
	srv.FailNext(cachixserver.EndpointCacheInfo, cachixserver.Fault400, 10)
	dir = filepath.Join(t.TempDir(), "export")
	r = cli(t, "", nil, "pins", "export", "--host", srv.URL(), "pins", "--output", dir)
	if r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	hasLine(t, "export without the cache's settings", r.stderr, "warning: store.nix names no binary cache")
	if got := storeNix(dir); !strings.HasPrefix(got, "null") || strings.Contains(got, "cachix.org") {
		t.Errorf("store.nix: %s; want null", got)
	}
}

// TestQueueKeepsTheHostOfCachixDhall: a push queued by an activation that
// took the Cachix host from cachix.dhall's hostname is flushed to that
// host, and recorded under it, by a flush that cannot read cachix.dhall;
// the next activation then has nothing new, and real Nix substitutes
// the closure from that host.
func TestQueueKeepsTheHostOfCachixDhall(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "dropin-queue-host-token"
	srv := pinServer(t, token)
	cfgHome := t.TempDir()
	os.MkdirAll(filepath.Join(cfgHome, "cachix"), 0o700)
	dh, _ := os.ReadFile(dhallFile(t, token, srv.URL()))
	os.WriteFile(filepath.Join(cfgHome, "cachix", "cachix.dhall"), dh, 0o600)
	withDhall := []string{"XDG_CONFIG_HOME=" + cfgHome}
	lib := nixBuild(t, "lib", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"name": "pins"},
		"paths": []any{map[string]any{"storePath": lib}}})

	// The host answers 400 to the first request: the push is queued.
	srv.FailNext("", cachixserver.Fault400, 1)
	r := cli(t, "", withDhall, "activate", "--mode", "foreground", "--state-dir", state, m)
	if r.code != 0 || queueLen(t, state) != 1 {
		t.Fatalf("activate: %d, %d queued: %s", r.code, queueLen(t, state), r.stderr)
	}
	// A flush without cachix.dhall (the token from the environment).
	r = cli(t, "", []string{"XDG_CONFIG_HOME=" + t.TempDir(), "CACHIX_AUTH_TOKEN=" + token}, "queue", "flush", "--state-dir", state)
	if r.code != 0 {
		t.Fatalf("flush: %d %s", r.code, r.stderr)
	}
	if n := queueLen(t, state); n != 0 {
		t.Fatalf("%d entries left after the flush: %s", n, r.stderr)
	}
	srv.ResetStats()
	r = cli(t, "", withDhall, "activate", "--state-dir", state, m)
	if r.code != 0 || r.stderr != "" {
		t.Errorf("second activate: %d %q", r.code, r.stderr)
	}
	if st := srv.Stats(); len(st.Requests) != 0 || queueLen(t, state) != 0 {
		t.Errorf("the second activation asked the host again or queued: %+v", st.Requests)
	}
	if _, err := substitute(t, srv.BinaryCacheURL("pins"), srv.ManagedPublicKey("pins"), lib); err != nil {
		t.Fatal(err)
	}
}

// readmeCachixTable returns the commands of the right-hand column of the
// README's cachix → cachix-select table, as written there.
func readmeCachixTable(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n## Coming from cachix\n")
	if i < 0 {
		t.Fatal("README.md has no section \"Coming from cachix\"")
	}
	var cmds []string
	inTable := false
	for _, line := range strings.Split(text[i+1:], "\n")[1:] {
		if strings.HasPrefix(line, "## ") {
			break
		}
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		// Cells are split on " | "; a "|" inside a command is written "\|".
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), " | ")
		if len(cells) < 2 {
			continue
		}
		cell := strings.ReplaceAll(strings.TrimSpace(cells[1]), "\x00", "|")
		if strings.HasPrefix(cell, "`") && strings.HasSuffix(cell, "`") && strings.Contains(cell, "cachix-select") {
			cmds = append(cmds, strings.Trim(cell, "`"))
		}
	}
	return cmds
}

// TestREADMECachixTable runs every command of the README's cachix →
// cachix-select table verbatim with sh, in a directory with a default.nix
// (for nix-build) and its ./result, against a test server that stands for
// https://cachix.example.org (the only substitution), the token and host
// coming from cachix.dhall as `cachix authtoken` would have written it.
// Each exits 0; then real Nix substitutes ./result's closure, and the pins
// the table creates are there.
func TestREADMECachixTable(t *testing.T) {
	requireNix(t)
	t.Parallel()
	cmds := readmeCachixTable(t)
	if len(cmds) < 10 {
		t.Fatalf("found %d commands in the README's table: %q", len(cmds), cmds)
	}
	const token = "readme-table-token"
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "mycache", Public: true, WriteTokens: []string{token}},
	}})
	work := t.TempDir()
	fixture := filepath.Join(repoRoot(), "tests/fixtures/closure.nix")
	os.WriteFile(filepath.Join(work, "default.nix"), []byte(`(import `+fixture+` { salt = "`+t.Name()+`"; }).app`+"\n"), 0o644)
	cfgHome := t.TempDir()
	os.MkdirAll(filepath.Join(cfgHome, "cachix"), 0o700)
	dh, _ := os.ReadFile(dhallFile(t, token, srv.URL()))
	os.WriteFile(filepath.Join(cfgHome, "cachix", "cachix.dhall"), dh, 0o600)
	os.WriteFile(filepath.Join(work, "cachix.dhall"), dh, 0o600)
	bin := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "cachix-select")); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "nix-build", "-o", filepath.Join(work, "result"), filepath.Join(work, "default.nix"))
	app, _ := filepath.EvalSymlinks(filepath.Join(work, "result"))
	for _, c := range cmds {
		script := strings.ReplaceAll(c, "https://cachix.example.org", srv.URL())
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = work
		cmd.Env = append(cleanEnv(), "PATH="+bin+":"+os.Getenv("PATH"), "XDG_CONFIG_HOME="+cfgHome)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", c, err, out)
			continue
		}
		t.Logf("%s:\n%s", c, out)
	}
	if _, err := substitute(t, srv.BinaryCacheURL("mycache"), srv.ManagedPublicKey("mycache"), app); err != nil {
		t.Fatal(err)
	}
	pins := map[string]string{}
	for _, p := range srv.Pins("mycache") {
		pins[p.Name] = lastPath(p)
	}
	if pins["release-1.0"] != app || pins["tool"] != app {
		t.Errorf("pins after the table: %v", pins)
	}
}

// TestS3PresentPathsSignedByAnotherKey: an s3:// cache whose paths were
// signed by another key says so on a push with the right key (from one of
// its narinfos), as a file cache does.
func TestS3PresentPathsSignedByAnotherKey(t *testing.T) {
	srv := startS3(t)
	t.Parallel()
	bucket, err := srv.Bucket(t.Context(), "otherkey", true)
	if err != nil {
		t.Fatal(err)
	}
	lib := nixBuild(t, "lib", t.Name())
	sk, _ := keypair(t, "dropin-s3-1")
	otherSK, _ := keypair(t, "dropin-s3-1")
	env := s3Env(t, srv)
	url := srv.URL(bucket, s3PartSize)
	if r := s3cli(t, env, "push", "-q", "--to", url, "--signing-key-file", otherSK, lib); r.code != 0 {
		t.Fatalf("push with the other key: %d %s", r.code, r.stderr)
	}
	r := s3cli(t, env, "push", "--to", url, "--signing-key-file", sk, lib)
	if r.code != 0 {
		t.Fatalf("push with the right key: %d %s", r.code, r.stderr)
	}
	hasLine(t, "re-push", r.stderr, "1 of the 1 paths already in s3://"+bucket)
	hasLine(t, "re-push", r.stderr, "that were checked carry no valid signature of key dropin-s3-1")
	r = s3cli(t, env, "push", "--to", url, "--signing-key-file", otherSK, lib)
	if r.code != 0 || strings.Contains(r.stderr, "no valid signature") {
		t.Errorf("push with the key that signed them: %d %s", r.code, r.stderr)
	}
}

// TestActivateQueuesWhileConfigIsMissing: --config must name a file that
// exists, but an activation whose config file is not there yet (a secret
// deployed later) still queues the push rather than lose it; once the
// file is there, the flush pushes it, and real Nix substitutes it.
func TestActivateQueuesWhileConfigIsMissing(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "dropin-config-later-token"
	srv := pinServer(t, token)
	single := nixBuild(t, "single", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "secrets", "cachix.dhall")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"name": "pins"},
		"paths": []any{map[string]any{"storePath": single}}})
	env := []string{"XDG_CONFIG_HOME=" + t.TempDir()}
	r := cli(t, "", env, "activate", "--mode", "foreground", "--config", cfg, "--state-dir", state, m)
	if r.code != 0 || queueLen(t, state) != 1 {
		t.Fatalf("activate: %d, %d queued: %s", r.code, queueLen(t, state), r.stderr)
	}
	hasLine(t, "activate", r.stderr, "cannot read the cachix config "+cfg+" given with --config")
	hasLine(t, "activate", r.stderr, "the push stays queued")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	dh, _ := os.ReadFile(dhallFile(t, token, srv.URL()))
	os.WriteFile(cfg, dh, 0o600)
	r = cli(t, "", env, "queue", "flush", "--config", cfg, "--state-dir", state)
	if r.code != 0 || queueLen(t, state) != 0 {
		t.Fatalf("flush: %d, %d left: %s", r.code, queueLen(t, state), r.stderr)
	}
	if _, err := substitute(t, srv.BinaryCacheURL("pins"), srv.ManagedPublicKey("pins"), single); err != nil {
		t.Fatal(err)
	}
}
